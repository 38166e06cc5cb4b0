using System;
using System.IO;
using System.Linq;
using System.Runtime.InteropServices;
using MlPitfalls.Runtime.Internal;
using Xunit;

namespace MlPitfalls.Runtime.Tests
{
    /// <summary>
    /// The explanation given when TorchSharp's native library does not load. The messages are built from fake failures and
    /// fake diagnoses; the file inspection runs on copies of the real shim, so the real load in this process is never disturbed.
    /// </summary>
    [Collection(TorchCollection.Name)]
    public class TorchLoadTests
    {
        /// <summary>TorchSharp 0.107.0's message on Debian 12, as it reads (first paragraph).</summary>
        private const string Misleading =
            "This application or script uses TorchSharp but doesn't contain a reference to libtorch-cpu-linux-x64, Version=2.10.0.0.\n\n" +
            "Consider referencing one of the combination packages TorchSharp-cpu, TorchSharp-cuda-linux, TorchSharp-cuda-windows or call " +
            "System.Runtime.InteropServices.NativeLibrary.Load(path-to-libLibTorchSharp.so) explicitly for a Python install of pytorch.";

        private const string Shim = "/app/bin/runtimes/linux-x64/native/libLibTorchSharp.so";
        private const string LoaderSaid = "/lib/x86_64-linux-gnu/libstdc++.so.6: version `GLIBCXX_3.4.32' not found (required by " + Shim + ")";

        private static Exception Failure(string message = Misleading) => new TypeInitializationException("TorchSharp.torch", new NotSupportedException(message));

        private static TorchLoadDiagnosis Debian12(params MissingVersion[] missing) => new(
            true, "/app/bin", Shim, BackendFound: true,
            missing.Length > 0 ? missing : new[] { new MissingVersion("libstdc++.so.6", "GLIBCXX_3.4.32", "/lib/x86_64-linux-gnu/libstdc++.so.6", "GLIBCXX_3.4.30") },
            LoaderSaid);

        [Fact]
        public void Missing_glibcxx_names_the_library_the_version_the_system_library_and_the_package_fix()
        {
            var message = TorchLoad.Explain(Failure(), Debian12());

            Assert.StartsWith("TorchSharp's native library did not load, so no tensor operation can run", message);
            Assert.Contains("The real cause: '" + Shim + "' (TorchSharp's native shim) needs GLIBCXX_3.4.32 from libstdc++.so.6, " +
                            "but this system's '/lib/x86_64-linux-gnu/libstdc++.so.6' provides GLIBCXX versions only up to GLIBCXX_3.4.30, " +
                            "so the system loader refuses the shim.", message);
            Assert.Contains("The loader said: " + LoaderSaid + ".", message);
            Assert.Contains("TorchSharp's own message (\"This application or script uses TorchSharp but doesn't contain a reference to libtorch-cpu-linux-x64, Version=2.10.0.0.\") is misleading here", message);
            Assert.Contains(Environment.NewLine + "Fix: reference the MlPitfalls.Runtime NuGet package", message);
            Assert.Contains("marks GLIBCXX_3.4.32 weak in the output copy of libLibTorchSharp.so after build and publish", message);
            Assert.Contains("MlPitfallsPatchTorchSharpNative is not set to false", message);
            Assert.EndsWith(Environment.NewLine + "Details: " + TorchLoad.DocsUrl, message);
            Assert.Equal("https://github.com/mlpitfalls/mlpitfalls/blob/main/docs/torchsharp-on-debian.md", TorchLoad.DocsUrl);
            // Only the first paragraph of TorchSharp's text is repeated: its advice (TorchSharp-cpu, ...) would mislead.
            Assert.DoesNotContain("combination packages", message);
        }

        [Fact]
        public void TorchSharps_other_wording_is_called_misleading_too_and_only_its_first_sentence_is_quoted()
        {
            // What TorchSharp says when the folder NUGET_PACKAGES names exists but holds no libtorch (a container, a CI job).
            var message = TorchLoad.Explain(Failure(
                "The libtorch-cpu-linux-x64 package version 2.10.0.0 is not restored on this system. If using F# Interactive or .NET Interactive you may need to add a reference to this package, e.g. \n" +
                "    #r \"nuget: libtorch-cpu-linux-x64, 2.10.0.0\". Trace from LoadNativeBackend:"), Debian12());
            Assert.Contains("TorchSharp's own message (\"The libtorch-cpu-linux-x64 package version 2.10.0.0 is not restored on this system.\") is misleading here", message);
            Assert.DoesNotContain("F# Interactive", message);
        }

        [Fact]
        public void Several_missing_versions_are_listed_and_no_build_fix_is_promised_for_versions_it_does_not_patch()
        {
            var message = TorchLoad.Explain(Failure(), Debian12(
                new MissingVersion("libstdc++.so.6", "GLIBCXX_3.4.31", "/usr/lib/libstdc++.so.6", "GLIBCXX_3.4.30"),
                new MissingVersion("libstdc++.so.6", "GLIBCXX_3.4.32", "/usr/lib/libstdc++.so.6", "GLIBCXX_3.4.30"),
                new MissingVersion("libc.so.6", "GLIBC_2.38", "/usr/lib/libc.so.6", "GLIBC_2.36")));

            Assert.Contains("needs GLIBCXX_3.4.31 and GLIBCXX_3.4.32 from libstdc++.so.6, but this system's '/usr/lib/libstdc++.so.6' provides GLIBCXX versions only up to GLIBCXX_3.4.30; " +
                            "it also needs GLIBC_2.38 from libc.so.6, but this system's '/usr/lib/libc.so.6' provides GLIBC versions only up to GLIBC_2.36, so the system loader refuses the shim.", message);
            Assert.Contains("Fix: run on a system whose libraries provide GLIBCXX_3.4.31, GLIBCXX_3.4.32 and GLIBC_2.38, or install newer versions of libstdc++.so.6 and libc.so.6.", message);
            Assert.DoesNotContain("MlPitfalls.Runtime NuGet package", message);
        }

        [Fact]
        public void A_library_the_system_does_not_have_is_said_so()
        {
            var message = TorchLoad.Explain(Failure(), Debian12(new MissingVersion("libstdc++.so.6", "GLIBCXX_3.4.32", null, null)));
            Assert.Contains("needs GLIBCXX_3.4.32 from libstdc++.so.6, and no libstdc++.so.6 was found where the system loader looks", message);
        }

        [Fact]
        public void A_missing_shim_says_where_it_was_looked_for()
        {
            var message = TorchLoad.Explain(Failure(), new TorchLoadDiagnosis(true, "/app/bin", null, false, Array.Empty<MissingVersion>(), null));
            Assert.Contains("TorchSharp's native shim libLibTorchSharp.so is neither in '/app/bin' next to TorchSharp.dll nor in its runtimes/linux-x64/native folder.", message);
            Assert.Contains("Fix: build or publish the program for linux-x64", message);
            Assert.Contains("Details: " + TorchLoad.DocsUrl, message);
        }

        [Fact]
        public void A_missing_backend_is_not_called_misleading()
        {
            var message = TorchLoad.Explain(Failure(), new TorchLoadDiagnosis(true, "/app/bin", Shim, false, Array.Empty<MissingVersion>(),
                "libtorch_cpu.so: cannot open shared object file: No such file or directory"));
            Assert.DoesNotContain("misleading", message);
            Assert.Contains("The loader said: libtorch_cpu.so: cannot open shared object file: No such file or directory.", message);
            Assert.Contains("Fix: no libtorch backend is next to the shim (no libtorch_cpu.so in '/app/bin/runtimes/linux-x64/native'): reference a backend package such as libtorch-cpu-linux-x64 2.10.0", message);
        }

        [Fact]
        public void An_unknown_cause_repeats_what_TorchSharp_and_the_loader_said()
        {
            var message = TorchLoad.Explain(Failure("Something else went wrong.\nmore"), new TorchLoadDiagnosis(true, "/app/bin", Shim, true, Array.Empty<MissingVersion>(), null));
            Assert.Contains("TorchSharp said: \"Something else went wrong.\"", message);
            Assert.DoesNotContain("more", message);
            Assert.Contains("What to check:", message);
            Assert.DoesNotContain("Fix:", message);
        }

        [Fact]
        public void Elsewhere_than_Linux_only_TorchSharps_message_and_the_backend_advice_are_given()
        {
            var message = TorchLoad.Explain(Failure(), new TorchLoadDiagnosis(false, @"C:\app\bin", null, false, Array.Empty<MissingVersion>(), null));
            Assert.Contains("TorchSharp said: \"This application or script uses TorchSharp but doesn't contain a reference to libtorch-cpu-linux-x64, Version=2.10.0.0.\"", message);
            Assert.Contains("libtorch-cpu-win-x64", message);
            Assert.DoesNotContain("GLIBCXX", message);
        }

        [Fact]
        public void The_loader_text_drops_dotnets_generic_advice()
        {
            var dotnet = "Unable to load shared library '" + Shim + "' or one of its dependencies. In order to help diagnose loading problems, consider using a tool like strace. " +
                         "If you're using glibc, consider setting the LD_DEBUG environment variable: \n" + LoaderSaid + "\n";
            Assert.Equal(LoaderSaid, TorchLoad.LoaderText(dotnet));
            Assert.Equal("plain", TorchLoad.LoaderText(" plain "));
        }

        [Fact]
        public void Newest_version_compares_numbers_not_text()
        {
            var defined = new[] { "libstdc++.so.6", "GLIBCXX_3.4", "GLIBCXX_3.4.9", "GLIBCXX_3.4.30", "GLIBCXX_3.4.29", "CXXABI_1.3.13", "GLIBCXX_DEBUG_MESSAGE_LENGTH" };
            Assert.Equal("GLIBCXX_3.4.30", TorchLoad.Newest(defined, "GLIBCXX_"));
            Assert.Equal("CXXABI_1.3.13", TorchLoad.Newest(defined, "CXXABI_"));
            Assert.Null(TorchLoad.Newest(defined, "GLIBC_"));
            Assert.Equal("GLIBCXX_", TorchLoad.Family("GLIBCXX_3.4.32"));
        }

        [Fact]
        public void The_exception_is_a_runtime_check_exception_carrying_TorchSharps_exception()
        {
            var inner = Failure();
            var ex = new TorchSharpLoadException(TorchLoad.Explain(inner, Debian12()), inner);
            Assert.IsAssignableFrom<RuntimeCheckException>(ex);
            Assert.Same(inner, ex.InnerException);
        }

        [Fact]
        public void EnsureLoaded_returns_when_TorchSharp_loads()
        {
            TorchLoad.EnsureLoaded();
            TorchLoad.EnsureLoaded();
        }

        [Fact]
        public void The_shipped_shim_needs_GLIBCXX_3_4_32_and_the_output_copy_needs_it_weakly()
        {
            if (!RuntimeInformation.IsOSPlatform(OSPlatform.Linux)) return;
            var output = Path.Combine(AppContext.BaseDirectory, "runtimes", "linux-x64", "native", TorchLoad.ShimFileName);
            var outputNeed = Assert.Single(ElfVersions.ReadNeeds(output)!, n => n.Version == TorchLoad.PatchedVersion);
            Assert.Equal("libstdc++.so.6", outputNeed.Library);
            Assert.True(outputNeed.Weak);

            var cached = CachedShim();
            if (cached is null) return;
            Assert.False(Assert.Single(ElfVersions.ReadNeeds(cached)!, n => n.Version == TorchLoad.PatchedVersion).Weak);
            Assert.Contains(ElfVersions.ReadNeeds(cached)!, n => n.Library == "libc.so.6" && n.Version == "GLIBC_2.2.5");
        }

        [Fact]
        public void Definitions_of_the_system_libstdcxx_are_read()
        {
            var libstdcxx = SystemLibstdcxx();
            if (libstdcxx is null) return;
            var defined = ElfVersions.ReadDefinitions(libstdcxx)!;
            Assert.Contains("GLIBCXX_3.4", defined);
            Assert.Contains("CXXABI_1.3", defined);
            Assert.Contains("libstdc++.so.6", defined);
        }

        [Fact]
        public void Files_that_are_not_ELF_libraries_read_as_null()
        {
            var file = Path.GetTempFileName();
            try
            {
                File.WriteAllText(file, "not an ELF file");
                Assert.Null(ElfVersions.ReadNeeds(file));
                Assert.Null(ElfVersions.ReadDefinitions(file));
                File.WriteAllBytes(file, new byte[] { 0x7f, (byte)'E', (byte)'L', (byte)'F', 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 });
                Assert.Null(ElfVersions.ReadNeeds(file)); // truncated header
                Assert.Null(ElfVersions.ReadNeeds(Path.Combine(Path.GetTempPath(), "mlpitfalls-no-such-file.so")));
            }
            finally
            {
                File.Delete(file);
            }
        }

        [Fact]
        public void Diagnose_finds_the_unpatched_shim_needs_what_this_system_lacks_and_not_the_patched_one()
        {
            if (!RuntimeInformation.IsOSPlatform(OSPlatform.Linux)) return;
            var cached = CachedShim();
            var libstdcxx = SystemLibstdcxx();
            if (cached is null || libstdcxx is null) return;
            bool systemHasIt = ElfVersions.ReadDefinitions(libstdcxx)!.Contains(TorchLoad.PatchedVersion);

            var folder = Directory.CreateTempSubdirectory("mlpitfalls-torchload-").FullName;
            try
            {
                var native = Directory.CreateDirectory(Path.Combine(folder, "runtimes", "linux-x64", "native")).FullName;
                File.Copy(cached, Path.Combine(native, TorchLoad.ShimFileName));
                // No loader: asking ld.so for a second copy of the shim in this process is not what a test should do.
                var unpatched = TorchLoad.Diagnose(folder, tryLoad: null);
                Assert.True(unpatched.Analysed);
                Assert.Equal(Path.Combine(native, TorchLoad.ShimFileName), unpatched.ShimPath);
                Assert.False(unpatched.BackendFound);
                Assert.Null(unpatched.LoaderError);
                if (systemHasIt)
                {
                    Assert.Empty(unpatched.Missing);
                }
                else
                {
                    var missing = Assert.Single(unpatched.Missing);
                    Assert.Equal(("libstdc++.so.6", TorchLoad.PatchedVersion), (missing.Library, missing.Version));
                    Assert.NotNull(missing.ProviderPath);
                    Assert.StartsWith("GLIBCXX_3.4.", missing.ProviderNewest);
                }

                var output = Path.Combine(AppContext.BaseDirectory, "runtimes", "linux-x64", "native", TorchLoad.ShimFileName);
                File.Copy(output, Path.Combine(native, TorchLoad.ShimFileName), overwrite: true);
                File.WriteAllText(Path.Combine(native, "libtorch_cpu.so"), "");
                var patched = TorchLoad.Diagnose(folder, tryLoad: path => "asked for " + path);
                Assert.Empty(patched.Missing);
                Assert.True(patched.BackendFound);
                Assert.Equal("asked for " + Path.Combine(native, TorchLoad.ShimFileName), patched.LoaderError);

                // Where no system library is found, every strong need is reported without a provider; the weak one is not.
                var nowhere = TorchLoad.Diagnose(folder, tryLoad: null, libraryDirectories: new[] { Path.Combine(folder, "empty") });
                Assert.Contains(nowhere.Missing, m => m.Library == "libstdc++.so.6" && m.Version == "GLIBCXX_3.4.30");
                Assert.All(nowhere.Missing, m => Assert.Null(m.ProviderPath));
                Assert.DoesNotContain(nowhere.Missing, m => m.Version == TorchLoad.PatchedVersion);
            }
            finally
            {
                Directory.Delete(folder, recursive: true);
            }
        }

        private static string? CachedShim()
        {
            var packages = Environment.GetEnvironmentVariable("NUGET_PACKAGES") ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
            var cached = Path.Combine(packages, "torchsharp", "0.107.0", "runtimes", "linux-x64", "native", TorchLoad.ShimFileName);
            return File.Exists(cached) ? cached : null;
        }

        private static string? SystemLibstdcxx() =>
            new[] { "/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/usr/lib64", "/usr/lib" }
                .Select(d => Path.Combine(d, "libstdc++.so.6")).FirstOrDefault(File.Exists);
    }
}
