using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text;
using TorchSharp;

namespace MlPitfalls.Runtime.Internal
{
    /// <summary>A symbol version that a native library needs and the system library it loads does not define.</summary>
    /// <param name="Library">The needed library as the shim names it, e.g. libstdc++.so.6.</param>
    /// <param name="Version">The missing version, e.g. GLIBCXX_3.4.32.</param>
    /// <param name="ProviderPath">The system file that would be loaded for <paramref name="Library"/>, or null when none was found.</param>
    /// <param name="ProviderNewest">The newest version of the same family (GLIBCXX_, GLIBC_, ...) that file defines, or null.</param>
    internal sealed record MissingVersion(string Library, string Version, string? ProviderPath, string? ProviderNewest);

    /// <summary>What was found on disk after TorchSharp failed to load.</summary>
    /// <param name="Analysed">False where no analysis is done (not Linux): only TorchSharp's message is reported.</param>
    /// <param name="TorchSharpDirectory">The folder TorchSharp.dll was loaded from.</param>
    /// <param name="ShimPath">TorchSharp's native shim, libLibTorchSharp.so, next to TorchSharp.dll or in runtimes/linux-x64/native; null when in neither.</param>
    /// <param name="BackendFound">Whether libtorch (libtorch_cpu.so) is next to the shim.</param>
    /// <param name="Missing">Non-weak version needs of the shim that the system libraries do not define.</param>
    /// <param name="LoaderError">What the system loader said when asked to load the shim, or null.</param>
    internal sealed record TorchLoadDiagnosis(
        bool Analysed,
        string? TorchSharpDirectory,
        string? ShimPath,
        bool BackendFound,
        IReadOnlyList<MissingVersion> Missing,
        string? LoaderError);

    /// <summary>
    /// Makes sure TorchSharp's native backend is loaded before a check touches a tensor, and when it cannot be, replaces
    /// TorchSharp's message (on Debian 12 a misleading "doesn't contain a reference to libtorch-cpu-linux-x64") with the
    /// real cause and its fix.
    /// </summary>
    internal static class TorchLoad
    {
        public const string DocsUrl = "https://github.com/mlpitfalls/mlpitfalls/blob/main/docs/torchsharp-on-debian.md";
        public const string ShimFileName = "libLibTorchSharp.so";
        /// <summary>The version need that the MlPitfalls.Runtime build step marks weak (MlPitfallsWeakGlibcxxVersion's default).</summary>
        public const string PatchedVersion = "GLIBCXX_3.4.32";

        private static volatile bool loaded;
        private static string? explanation;

        /// <summary>
        /// Returns at once when TorchSharp is loaded (one volatile read after the first success). Otherwise forces TorchSharp's
        /// native load and, if it fails, throws <see cref="TorchSharpLoadException"/> explaining why.
        /// </summary>
        public static void EnsureLoaded()
        {
            if (loaded) return;
            TypeInitializationException failure;
            try
            {
                // The type initializer of TorchSharp.torch loads the native backend; after a failure the runtime rethrows the same
                // TypeInitializationException on every later use, so this also catches a failure that happened before this call.
                RuntimeHelpers.RunClassConstructor(typeof(torch).TypeHandle);
                loaded = true;
                return;
            }
            catch (TypeInitializationException e)
            {
                failure = e;
            }
            throw new TorchSharpLoadException(explanation ??= Explain(failure, Diagnose(TorchSharpDirectory(), TryLoad)), failure);
        }

        private static string? TorchSharpDirectory()
        {
            var location = typeof(torch).Assembly.Location;
            return string.IsNullOrEmpty(location) ? AppContext.BaseDirectory : Path.GetDirectoryName(location);
        }

        /// <summary>Asks the system loader for the shim and returns its error, or null when it loads (it is then unloaded again).</summary>
        private static string? TryLoad(string path)
        {
            try
            {
                NativeLibrary.Free(NativeLibrary.Load(path));
                return null;
            }
            catch (DllNotFoundException e)
            {
                return LoaderText(e.Message);
            }
            catch (BadImageFormatException e)
            {
                return e.Message;
            }
        }

        /// <summary>.NET wraps dlerror() in advice about strace and LD_DEBUG; keep only what the loader said.</summary>
        internal static string LoaderText(string message)
        {
            const string marker = "environment variable:";
            int at = message.LastIndexOf(marker, StringComparison.Ordinal);
            var text = at >= 0 ? message.Substring(at + marker.Length) : message;
            return text.Trim();
        }

        /// <summary>
        /// Looks at the files TorchSharp would load: where the shim is, whether libtorch is next to it, which of the shim's
        /// version needs the system libraries do not define, and (through <paramref name="tryLoad"/>) what the loader says.
        /// Linux only; elsewhere returns a diagnosis with <see cref="TorchLoadDiagnosis.Analysed"/> false.
        /// </summary>
        internal static TorchLoadDiagnosis Diagnose(string? torchSharpDirectory, Func<string, string?>? tryLoad, IReadOnlyList<string>? libraryDirectories = null)
        {
            if (!OperatingSystem.IsLinux() || torchSharpDirectory is null)
                return new TorchLoadDiagnosis(false, torchSharpDirectory, null, false, Array.Empty<MissingVersion>(), null);

            var shim = new[]
            {
                Path.Combine(torchSharpDirectory, ShimFileName),
                Path.Combine(torchSharpDirectory, "runtimes", "linux-x64", "native", ShimFileName),
            }.FirstOrDefault(File.Exists);
            if (shim is null)
                return new TorchLoadDiagnosis(true, torchSharpDirectory, null, false, Array.Empty<MissingVersion>(), null);

            var shimDirectory = Path.GetDirectoryName(shim)!;
            bool backend = File.Exists(Path.Combine(shimDirectory, "libtorch_cpu.so"));
            var directories = libraryDirectories ?? SystemLibraryDirectories();
            var missing = new List<MissingVersion>();
            foreach (var library in (ElfVersions.ReadNeeds(shim) ?? Array.Empty<ElfVersionNeed>()).Where(n => !n.Weak).GroupBy(n => n.Library))
            {
                // A dependency shipped next to the shim (libtorch's own libraries) is not the system's concern.
                if (File.Exists(Path.Combine(shimDirectory, library.Key))) continue;
                var provider = directories.Select(d => Path.Combine(d, library.Key)).FirstOrDefault(File.Exists);
                var defined = provider is null ? null : ElfVersions.ReadDefinitions(provider);
                if (provider is not null && defined is null) continue; // unreadable: say nothing rather than guess
                var definedSet = new HashSet<string>(defined ?? Array.Empty<string>(), StringComparer.Ordinal);
                foreach (var need in library.Where(n => !definedSet.Contains(n.Version)))
                    missing.Add(new MissingVersion(need.Library, need.Version, provider, Newest(defined, Family(need.Version))));
            }
            return new TorchLoadDiagnosis(true, torchSharpDirectory, shim, backend, missing, tryLoad?.Invoke(shim));
        }

        /// <summary>Where ld.so looks, in its order for an x64 or arm64 glibc system: LD_LIBRARY_PATH, then the default paths.</summary>
        private static IReadOnlyList<string> SystemLibraryDirectories()
        {
            var triplet = RuntimeInformation.ProcessArchitecture == Architecture.Arm64 ? "aarch64-linux-gnu" : "x86_64-linux-gnu";
            var fromEnvironment = (Environment.GetEnvironmentVariable("LD_LIBRARY_PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries);
            return fromEnvironment.Concat(new[] { "/lib/" + triplet, "/usr/lib/" + triplet, "/lib64", "/usr/lib64", "/lib", "/usr/lib" }).ToList();
        }

        /// <summary>"GLIBCXX_3.4.32" → "GLIBCXX_"; "CXXABI_1.3.13" → "CXXABI_".</summary>
        internal static string Family(string version)
        {
            int underscore = version.LastIndexOf('_');
            return underscore < 0 ? version : version.Substring(0, underscore + 1);
        }

        /// <summary>The highest version of <paramref name="family"/> in <paramref name="defined"/>, comparing the numbers part by part.</summary>
        internal static string? Newest(IEnumerable<string>? defined, string family) =>
            defined?.Where(v => v.StartsWith(family, StringComparison.Ordinal) && v.Length > family.Length && char.IsDigit(v[family.Length]))
                .OrderBy(v => v, VersionOrder.Instance)
                .LastOrDefault();

        private sealed class VersionOrder : IComparer<string>
        {
            public static readonly VersionOrder Instance = new();

            public int Compare(string? x, string? y)
            {
                var a = Numbers(x!);
                var b = Numbers(y!);
                for (int i = 0; i < Math.Max(a.Length, b.Length); i++)
                {
                    int c = (i < a.Length ? a[i] : -1).CompareTo(i < b.Length ? b[i] : -1);
                    if (c != 0) return c;
                }
                return 0;
            }

            private static long[] Numbers(string v) =>
                v.Substring(Family(v).Length).Split('.')
                    .Select(p => long.TryParse(p, NumberStyles.None, CultureInfo.InvariantCulture, out var n) ? n : 0)
                    .ToArray();
        }

        /// <summary>The message of <see cref="TorchSharpLoadException"/>: what failed, the real cause where one was found, and what to do.</summary>
        internal static string Explain(Exception failure, TorchLoadDiagnosis d)
        {
            var torchSharpSaid = FirstLine((failure as TypeInitializationException)?.InnerException ?? failure);
            var text = new StringBuilder("TorchSharp's native library did not load, so no tensor operation can run and no MlPitfalls check can either.");

            if (!d.Analysed)
            {
                AppendTorchSharpSaid(text, torchSharpSaid);
                text.Append(Environment.NewLine).Append("What to check: the project references the libtorch backend package for this platform (for example libtorch-cpu-win-x64 or libtorch-cpu-osx-arm64), and the program runs from its build or publish output.");
                return text.ToString();
            }

            if (d.ShimPath is null)
            {
                text.Append(" TorchSharp's native shim ").Append(ShimFileName).Append(" is neither in '").Append(d.TorchSharpDirectory)
                    .Append("' next to TorchSharp.dll nor in its runtimes/linux-x64/native folder.");
                AppendTorchSharpSaid(text, torchSharpSaid);
                text.Append(Environment.NewLine).Append("Fix: build or publish the program for linux-x64 from a project that references the TorchSharp package and a libtorch backend package such as libtorch-cpu-linux-x64, and run it from that output.");
                return AppendDetails(text);
            }

            if (d.Missing.Count > 0)
            {
                text.Append(" The real cause: ");
                bool first = true;
                foreach (var library in d.Missing.GroupBy(m => m.Library))
                {
                    var m = library.First();
                    text.Append(first ? "'" + d.ShimPath + "' (TorchSharp's native shim) needs " : "; it also needs ")
                        .Append(Join(library.Select(x => x.Version))).Append(" from ").Append(library.Key);
                    if (m.ProviderPath is null)
                        text.Append(", and no ").Append(library.Key).Append(" was found where the system loader looks");
                    else if (m.ProviderNewest is null)
                        text.Append(", but this system's '").Append(m.ProviderPath).Append("' defines no ").Append(Family(m.Version)).Append(" version");
                    else
                        text.Append(", but this system's '").Append(m.ProviderPath).Append("' provides ").Append(Family(m.Version).TrimEnd('_'))
                            .Append(" versions only up to ").Append(m.ProviderNewest);
                    first = false;
                }
                text.Append(", so the system loader refuses the shim.");
            }

            if (d.LoaderError is not null)
                text.Append(" The loader said: ").Append(d.LoaderError.TrimEnd('.')).Append('.');

            // TorchSharp blames the backend package whenever the shim does not load: "doesn't contain a reference to
            // libtorch-cpu-linux-x64" when the package is in the NuGet cache, "is not restored on this system" when it is not.
            bool misleading = torchSharpSaid.Contains("doesn't contain a reference to", StringComparison.Ordinal)
                || torchSharpSaid.Contains("is not restored on this system", StringComparison.Ordinal);
            if (d.BackendFound && misleading)
                text.Append(" TorchSharp's own message (\"").Append(torchSharpSaid).Append("\") is misleading here: the libtorch backend is there, next to the shim.");

            if (d.Missing.Count > 0 && d.Missing.All(m => m.Version == PatchedVersion))
            {
                text.Append(Environment.NewLine).Append("Fix: reference the MlPitfalls.Runtime NuGet package from the project that builds this program, and rebuild. On Linux its build step marks ")
                    .Append(PatchedVersion).Append(" weak in the output copy of ").Append(ShimFileName)
                    .Append(" after build and publish (nothing else needs that version), and the build log says \"MlPitfalls.Runtime: marked version need ").Append(PatchedVersion).Append(" weak\".")
                    .Append(" If the project already references it, check that MlPitfallsPatchTorchSharpNative is not set to false and that the program runs from that build or publish output, not from files copied another way.")
                    .Append(" Or run on a system whose libstdc++ provides ").Append(PatchedVersion).Append(" (GCC 13 or newer, such as Debian 13 or Ubuntu 24.04).");
            }
            else if (d.Missing.Count > 0)
            {
                text.Append(Environment.NewLine).Append("Fix: run on a system whose libraries provide ").Append(Join(d.Missing.Select(m => m.Version)))
                    .Append(", or install newer versions of ").Append(Join(d.Missing.Select(m => m.Library))).Append('.');
            }

            if (!d.BackendFound)
            {
                if (d.Missing.Count == 0) AppendTorchSharpSaid(text, torchSharpSaid);
                text.Append(Environment.NewLine).Append(d.Missing.Count > 0 ? "Also: " : "Fix: ")
                    .Append("no libtorch backend is next to the shim (no libtorch_cpu.so in '").Append(Path.GetDirectoryName(d.ShimPath))
                    .Append("'): reference a backend package such as libtorch-cpu-linux-x64 2.10.0 from the project that builds this program.");
            }
            else if (d.Missing.Count == 0)
            {
                AppendTorchSharpSaid(text, torchSharpSaid);
                text.Append(Environment.NewLine).Append("What to check: the loader's message above, if any, and the trace TorchSharp printed before this exception.");
            }

            return AppendDetails(text);
        }

        private static string AppendDetails(StringBuilder text) =>
            text.Append(Environment.NewLine).Append("Details: ").Append(DocsUrl).ToString();

        private static void AppendTorchSharpSaid(StringBuilder text, string torchSharpSaid) =>
            text.Append(" TorchSharp said: \"").Append(torchSharpSaid).Append("\"");

        /// <summary>The first sentence of the message: TorchSharp's further advice (TorchSharp-cpu, F# Interactive) does not apply here.</summary>
        private static string FirstLine(Exception e)
        {
            var message = e.Message.Trim();
            int newline = message.IndexOf('\n');
            var line = (newline < 0 ? message : message.Substring(0, newline)).Trim();
            int sentence = line.IndexOf(". ", StringComparison.Ordinal);
            return sentence < 0 ? line : line.Substring(0, sentence + 1);
        }

        private static string Join(IEnumerable<string> items)
        {
            var list = items.Distinct(StringComparer.Ordinal).ToList();
            return list.Count switch
            {
                1 => list[0],
                2 => list[0] + " and " + list[1],
                _ => string.Join(", ", list.Take(list.Count - 1)) + " and " + list[^1],
            };
        }
    }
}
