using System;
using System.Collections.Generic;
using System.IO;
using System.Text;

namespace MlPitfalls.Runtime.Internal
{
    /// <summary>One version need of an ELF shared library: <c>Version</c> (e.g. GLIBCXX_3.4.32) from <c>Library</c> (e.g. libstdc++.so.6).</summary>
    internal readonly record struct ElfVersionNeed(string Library, string Version, bool Weak);

    /// <summary>
    /// Reads the symbol versions an ELF64 little-endian shared library needs (<c>.gnu.version_r</c>) and defines
    /// (<c>.gnu.version_d</c>): what <c>readelf -V</c> shows, without the tool. Reads only the headers and the two sections;
    /// never writes. Returns null for a file that is not such a library or whose structure points outside the file.
    /// </summary>
    internal static class ElfVersions
    {
        private const uint ShtGnuVerdef = 0x6ffffffd;
        private const uint ShtGnuVerneed = 0x6ffffffe;
        private const ushort VerFlgWeak = 0x2;
        private const long MaxSectionBytes = 16 * 1024 * 1024;

        public static IReadOnlyList<ElfVersionNeed>? ReadNeeds(string path)
        {
            try
            {
                using var file = File.OpenRead(path);
                if (!IsElf64(file)) return null;
                if (!TryFindSection(file, ShtGnuVerneed, out var section, out var strings, out var count)) return Array.Empty<ElfVersionNeed>();
                var needs = new List<ElfVersionNeed>();
                long vn = 0;
                for (uint n = 0; n < count; n++)
                {
                    Check(section, vn, 16);
                    ushort cnt = U16(section, vn + 2);
                    string library = CString(strings, U32(section, vn + 4));
                    long vna = vn + U32(section, vn + 8);
                    for (int a = 0; a < cnt; a++)
                    {
                        Check(section, vna, 16);
                        ushort flags = U16(section, vna + 4);
                        needs.Add(new ElfVersionNeed(library, CString(strings, U32(section, vna + 8)), (flags & VerFlgWeak) != 0));
                        uint next = U32(section, vna + 12);
                        if (next == 0) break;
                        vna += next;
                    }
                    uint vnNext = U32(section, vn + 12);
                    if (vnNext == 0) break;
                    vn += vnNext;
                }
                return needs;
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or InvalidDataException)
            {
                return null;
            }
        }

        /// <summary>The version names the library defines (its own soname's entry included), or null.</summary>
        public static IReadOnlyList<string>? ReadDefinitions(string path)
        {
            try
            {
                using var file = File.OpenRead(path);
                if (!IsElf64(file)) return null;
                if (!TryFindSection(file, ShtGnuVerdef, out var section, out var strings, out var count)) return Array.Empty<string>();
                var names = new List<string>();
                long vd = 0;
                for (uint n = 0; n < count; n++)
                {
                    Check(section, vd, 20);
                    ushort cnt = U16(section, vd + 6);
                    if (cnt > 0)
                    {
                        long vda = vd + U32(section, vd + 12);
                        Check(section, vda, 8);
                        names.Add(CString(strings, U32(section, vda)));
                    }
                    uint next = U32(section, vd + 16);
                    if (next == 0) break;
                    vd += next;
                }
                return names;
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or InvalidDataException)
            {
                return null;
            }
        }

        private static bool IsElf64(FileStream file)
        {
            var ident = new byte[6];
            file.Position = 0;
            return file.Read(ident, 0, 6) == 6 && ident[0] == 0x7f && ident[1] == 'E' && ident[2] == 'L' && ident[3] == 'F' && ident[4] == 2 && ident[5] == 1;
        }

        /// <summary>The bytes of the first section of <paramref name="type"/>, of the string table it links to, and its sh_info (entry count).</summary>
        private static bool TryFindSection(FileStream file, uint type, out byte[] section, out byte[] strings, out uint count)
        {
            section = strings = Array.Empty<byte>();
            count = 0;
            var header = ReadAt(file, 0, 64);
            long shoff = (long)U64(header, 0x28);
            int shentsize = U16(header, 0x3A);
            int shnum = U16(header, 0x3C);
            if (shoff == 0 || shnum == 0 || shentsize < 64) return false;
            var table = ReadAt(file, shoff, (long)shentsize * shnum);
            for (int i = 0; i < shnum; i++)
            {
                long sh = (long)i * shentsize;
                if (U32(table, sh + 4) != type) continue;
                uint link = U32(table, sh + 0x28);
                if (link >= shnum) throw new InvalidDataException("sh_link out of range");
                long strSh = (long)link * shentsize;
                section = ReadAt(file, (long)U64(table, sh + 0x18), (long)U64(table, sh + 0x20));
                strings = ReadAt(file, (long)U64(table, strSh + 0x18), (long)U64(table, strSh + 0x20));
                count = U32(table, sh + 0x2C);
                return true;
            }
            return false;
        }

        private static byte[] ReadAt(FileStream file, long offset, long length)
        {
            if (offset < 0 || length < 0 || length > MaxSectionBytes || offset + length > file.Length) throw new InvalidDataException("ELF structure points outside the file");
            var bytes = new byte[length];
            file.Position = offset;
            int read = 0;
            while (read < length)
            {
                int n = file.Read(bytes, read, (int)length - read);
                if (n <= 0) throw new InvalidDataException("unexpected end of file");
                read += n;
            }
            return bytes;
        }

        private static void Check(byte[] b, long offset, long length)
        {
            if (offset < 0 || offset + length > b.LongLength) throw new InvalidDataException("ELF structure points outside the section");
        }

        private static string CString(byte[] table, uint index)
        {
            if (index >= table.Length) throw new InvalidDataException("string index outside the string table");
            int end = Array.IndexOf(table, (byte)0, (int)index);
            if (end < 0) end = table.Length;
            return Encoding.ASCII.GetString(table, (int)index, end - (int)index);
        }

        private static ushort U16(byte[] b, long o) { Check(b, o, 2); return (ushort)(b[o] | (b[o + 1] << 8)); }
        private static uint U32(byte[] b, long o) { Check(b, o, 4); return (uint)(b[o] | (b[o + 1] << 8) | (b[o + 2] << 16) | (b[o + 3] << 24)); }
        private static ulong U64(byte[] b, long o) => U32(b, o) | ((ulong)U32(b, o + 4) << 32);
    }
}
