using System;
using System.IO;
using System.Runtime.InteropServices;
using System.Text;
using Xunit;

namespace MlPitfalls.Runtime.Tests
{
    /// <summary>
    /// The build step in src/MlPitfalls.Runtime/buildTransitive/MlPitfalls.Runtime.targets (imported by Directory.Build.targets): the shim in this test's output must have GLIBCXX_3.4.32 marked weak,
    /// and the file in the NuGet package cache must be left as shipped.
    /// </summary>
    public class NativeFixTests
    {
        private const string Version = "GLIBCXX_3.4.32";
        private const ushort VerFlgWeak = 0x2;

        [Fact]
        public void Output_shim_is_patched_and_package_cache_is_not()
        {
            if (!RuntimeInformation.IsOSPlatform(OSPlatform.Linux)) return;

            var output = Path.Combine(AppContext.BaseDirectory, "runtimes", "linux-x64", "native", "libLibTorchSharp.so");
            Assert.True(File.Exists(output), $"{output} is missing");
            var outputFlags = VernauxFlags(File.ReadAllBytes(output), Version);
            Assert.True(outputFlags.HasValue, $"{Version} version need not found in {output}");
            Assert.Equal(VerFlgWeak, (ushort)(outputFlags!.Value & VerFlgWeak));

            var packages = Environment.GetEnvironmentVariable("NUGET_PACKAGES") ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
            var cached = Path.Combine(packages, "torchsharp", "0.107.0", "runtimes", "linux-x64", "native", "libLibTorchSharp.so");
            if (!File.Exists(cached)) return; // a different cache layout: nothing to compare
            var cachedFlags = VernauxFlags(File.ReadAllBytes(cached), Version);
            Assert.True(cachedFlags.HasValue);
            Assert.Equal(0, cachedFlags!.Value & VerFlgWeak);
        }

        /// <summary>vna_flags of the Vernaux entry named <paramref name="name"/> in .gnu.version_r, or null.</summary>
        private static ushort? VernauxFlags(byte[] b, string name)
        {
            Assert.True(b[0] == 0x7f && b[1] == 'E' && b[2] == 'L' && b[3] == 'F' && b[4] == 2 && b[5] == 1, "not an ELF64 little-endian file");
            long shoff = (long)BitConverter.ToUInt64(b, 0x28);
            int shentsize = BitConverter.ToUInt16(b, 0x3A);
            int shnum = BitConverter.ToUInt16(b, 0x3C);
            for (int i = 0; i < shnum; i++)
            {
                long sh = shoff + (long)i * shentsize;
                if (BitConverter.ToUInt32(b, (int)sh + 4) != 0x6ffffffe) continue;
                long off = (long)BitConverter.ToUInt64(b, (int)sh + 0x18);
                uint link = BitConverter.ToUInt32(b, (int)sh + 0x28);
                uint count = BitConverter.ToUInt32(b, (int)sh + 0x2C);
                long str = (long)BitConverter.ToUInt64(b, (int)(shoff + link * shentsize + 0x18));
                long vn = off;
                for (uint n = 0; n < count; n++)
                {
                    int cnt = BitConverter.ToUInt16(b, (int)vn + 2);
                    long vna = vn + BitConverter.ToUInt32(b, (int)vn + 8);
                    for (int a = 0; a < cnt; a++)
                    {
                        long s = str + BitConverter.ToUInt32(b, (int)vna + 8);
                        int end = Array.IndexOf(b, (byte)0, (int)s);
                        if (Encoding.ASCII.GetString(b, (int)s, end - (int)s) == name) return BitConverter.ToUInt16(b, (int)vna + 4);
                        vna += BitConverter.ToUInt32(b, (int)vna + 12);
                    }
                    vn += BitConverter.ToUInt32(b, (int)vn + 12);
                }
            }
            return null;
        }
    }
}
