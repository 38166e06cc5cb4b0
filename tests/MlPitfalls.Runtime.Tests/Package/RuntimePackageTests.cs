using System;
using System.Collections.Generic;
using System.IO;
using System.IO.Compression;
using System.Linq;
using System.Runtime.InteropServices;
using System.Text.RegularExpressions;
using System.Xml.Linq;
using MlPitfalls.Runtime.Internal;
using Xunit;
using Xunit.Abstractions;

namespace MlPitfalls.Runtime.Tests.Package
{
    /// <summary>A fact that runs only on Linux, where TorchSharp's native fix applies; elsewhere it is reported as skipped.</summary>
    public sealed class LinuxFactAttribute : FactAttribute
    {
        public LinuxFactAttribute()
        {
            if (!RuntimeInformation.IsOSPlatform(OSPlatform.Linux)) Skip = "Linux only: the TorchSharp native fix does nothing elsewhere.";
        }
    }

    /// <summary>
    /// The MlPitfalls.Runtime package as users get it: packed from the repository, then installed into a project of their own
    /// that lives outside the repository (none of its Directory.Build files apply) and restores from the packed package.
    /// </summary>
    public class RuntimePackageTests : IClassFixture<PackedRuntime>
    {
        private const string TargetsPath = "buildTransitive/MlPitfalls.Runtime.targets";
        private const string PatchMessage = "MlPitfalls.Runtime: marked version need GLIBCXX_3.4.32 weak in the output copy";
        private const string TorchSharpVersion = "0.107.0";
        private const string LibtorchVersion = "2.10.0";

        private readonly PackedRuntime packed;
        private readonly ITestOutputHelper output;

        public RuntimePackageTests(PackedRuntime packed, ITestOutputHelper output)
        {
            this.packed = packed;
            this.output = output;
        }

        [Fact]
        public void Package_carries_the_native_fix_targets_the_readme_and_the_project_urls()
        {
            using var zip = ZipFile.OpenRead(packed.Package);
            var entries = zip.Entries.Select(e => e.FullName).ToList();
            Assert.Contains("lib/net8.0/MlPitfalls.Runtime.dll", entries);
            Assert.Contains("PACKAGE.md", entries);
            Assert.Contains(TargetsPath, entries);
            Assert.Contains("build/MlPitfalls.Runtime.targets", entries);

            // One implementation: the packed file is the very file the repository's Directory.Build.targets imports.
            var repositoryTargets = File.ReadAllText(Path.Combine(DotnetCli.RepoRoot, "src", "MlPitfalls.Runtime", "buildTransitive", "MlPitfalls.Runtime.targets"));
            Assert.Equal(repositoryTargets, Read(zip, TargetsPath));
            Assert.Equal(repositoryTargets, Read(zip, "build/MlPitfalls.Runtime.targets"));
            Assert.Contains("buildTransitive/MlPitfalls.Runtime.targets", File.ReadAllText(Path.Combine(DotnetCli.RepoRoot, "Directory.Build.targets")));

            var metadata = Metadata(zip);
            string Value(string name) => metadata.Elements().Single(e => e.Name.LocalName == name).Value;
            Assert.Equal("MlPitfalls.Runtime", Value("id"));
            Assert.Equal("PACKAGE.md", Value("readme"));
            Assert.Equal("https://github.com/mlpitfalls/mlpitfalls", Value("projectUrl"));
            var repository = metadata.Elements().Single(e => e.Name.LocalName == "repository");
            Assert.Equal("git", repository.Attribute("type")?.Value);
            Assert.Equal("https://github.com/mlpitfalls/mlpitfalls", repository.Attribute("url")?.Value);
            // Users bring their own backend: the only dependency is the managed TorchSharp package.
            var dependency = Assert.Single(metadata.Descendants(), d => d.Name.LocalName == "dependency");
            Assert.Equal("TorchSharp", dependency.Attribute("id")?.Value);

            Assert.Contains("https://github.com/mlpitfalls/mlpitfalls/blob/main/docs/torchsharp-on-debian.md", Read(zip, "PACKAGE.md"));
        }

        /// <summary>
        /// A user's console project with MlPitfalls.Runtime (from the packed .nupkg), TorchSharp and libtorch-cpu-linux-x64:
        /// the build says it patched the output copy, the program runs a tensor operation, the NuGet cache is untouched,
        /// an incremental build is quiet, publish patches the publish folder, and MlPitfallsPatchTorchSharpNative=false turns
        /// it all off (on a system whose libstdc++ lacks GLIBCXX_3.4.32 the runtime then explains the failure).
        /// Restores offline: the packed package from its folder, everything else from this machine's package cache.
        /// </summary>
        [LinuxFact]
        [Trait("Category", "Slow")]
        public void A_consumer_project_built_from_the_package_runs_a_tensor_operation()
        {
            var machinePackages = DotnetCli.GlobalPackagesFolder();
            var cachedShim = Path.Combine(machinePackages, "torchsharp", TorchSharpVersion, "runtimes", "linux-x64", "native", TorchLoad.ShimFileName);
            Assert.True(File.Exists(cachedShim), $"{cachedShim} is missing: restore the repository first (dotnet restore MlPitfalls.sln), which brings TorchSharp {TorchSharpVersion} and libtorch-cpu-linux-x64 {LibtorchVersion} into the package cache.");
            Assert.True(File.Exists(Path.Combine(machinePackages, "libtorch-cpu-linux-x64", LibtorchVersion, "libtorch-cpu-linux-x64.nuspec")), "libtorch-cpu-linux-x64 is not in the package cache");
            var cachedShimBefore = File.ReadAllBytes(cachedShim);

            var project = Directory.CreateTempSubdirectory("mlpitfalls-consumer-").FullName;
            Assert.False(project.StartsWith(Path.GetFullPath(DotnetCli.RepoRoot), StringComparison.Ordinal), "the consumer must live outside the repository");
            try
            {
                WriteConsumer(project, machinePackages);
                // Restore into a packages folder of the consumer's own; programs run with the machine's usual environment
                // (TorchSharp's own fallback looks for libtorch in the NuGet cache that NUGET_PACKAGES names).
                var buildEnvironment = new Dictionary<string, string?> { ["NUGET_PACKAGES"] = Path.Combine(project, "packages") };
                var steps = new List<string> { $"pack {packed.Pack.Elapsed.TotalSeconds:0.0} s" };
                DotnetCli.Result Step(string name, string[] arguments, IReadOnlyDictionary<string, string?>? environment = null)
                {
                    bool runsProgram = arguments[0] == "run" || arguments[0].EndsWith(".dll", StringComparison.Ordinal);
                    var result = DotnetCli.Run(project, arguments, environment ?? (runsProgram ? null : buildEnvironment));
                    steps.Add($"{name} {result.Elapsed.TotalSeconds:0.0} s");
                    output.WriteLine($"--- {name}: dotnet {string.Join(' ', arguments)} ({result.Elapsed.TotalSeconds:0.0} s, exit {result.ExitCode})");
                    output.WriteLine(result.Output);
                    return result;
                }

                var outDir = Path.Combine(project, "bin", "Release", "net10.0");
                var outputShim = Path.Combine(outDir, "runtimes", "linux-x64", "native", TorchLoad.ShimFileName);

                // Build: one message, the output copy patched, the cache not.
                var build = Step("build", new[] { "build", "-c", "Release", "--disable-build-servers" });
                Assert.True(build.ExitCode == 0, "build failed: " + build);
                Assert.Equal(1, Count(build.Output, PatchMessage));
                Assert.Contains("'bin/Release/net10.0/runtimes/linux-x64/native/libLibTorchSharp.so'", build.Output);
                Assert.Contains("MlPitfallsPatchTorchSharpNative=false", build.Output);
                Assert.DoesNotContain("MLPNATIVE001", build.Output);
                Assert.True(NeedIsWeak(outputShim), "the output copy still needs GLIBCXX_3.4.32 strongly");
                Assert.Equal(cachedShimBefore, File.ReadAllBytes(cachedShim));
                Assert.False(Directory.Exists(Path.Combine(project, "packages", "torchsharp")), "TorchSharp was restored again instead of from the machine's cache");

                var run = Step("run", new[] { "run", "-c", "Release", "--no-build" });
                Assert.True(run.ExitCode == 0, "the program failed: " + run);
                Assert.Contains("consumer: matmul = 3,3,12,12", run.Output);

                // Incremental build: the output is up to date and still patched; nothing is said.
                var again = Step("incremental build", new[] { "build", "-c", "Release", "--no-restore", "--disable-build-servers" });
                Assert.True(again.ExitCode == 0, "incremental build failed: " + again);
                Assert.Equal(0, Count(again.Output, PatchMessage));
                Assert.True(NeedIsWeak(outputShim));

                // Publish: the publish folder's copy is patched too, and the published program runs.
                var publishDir = Path.Combine(project, "published");
                var publish = Step("publish", new[] { "publish", "-c", "Release", "--no-restore", "-o", publishDir, "--disable-build-servers" });
                Assert.True(publish.ExitCode == 0, "publish failed: " + publish);
                Assert.Equal(1, Count(publish.Output, PatchMessage));
                Assert.True(NeedIsWeak(Path.Combine(publishDir, "runtimes", "linux-x64", "native", TorchLoad.ShimFileName)));
                var published = Step("run published", new[] { Path.Combine(publishDir, "Consumer.dll") });
                Assert.True(published.ExitCode == 0, "the published program failed: " + published);
                Assert.Contains("consumer: matmul = 3,3,12,12", published.Output);

                // Off: the documented property leaves the shim as TorchSharp ships it. Nothing is patched here, so the output may
                // be hard links into the package cache (saves copying 500 MB).
                var offDir = Path.Combine(project, "off") + Path.DirectorySeparatorChar;
                var off = Step("build, fix off", new[] { "build", "-c", "Release", "--no-restore", "--disable-build-servers", "-p:MlPitfallsPatchTorchSharpNative=false", "-p:CreateHardLinksForCopyLocalIfPossible=true", "-p:OutDir=" + offDir });
                Assert.True(off.ExitCode == 0, "build with the fix off failed: " + off);
                Assert.Equal(0, Count(off.Output, PatchMessage));
                Assert.False(NeedIsWeak(Path.Combine(offDir, "runtimes", "linux-x64", "native", TorchLoad.ShimFileName)));
                // TorchSharp's own fallback copies all of libtorch (480 MB) from the NuGet cache into the output before it gives
                // up; with no cache folder it gives up at once, with the same message.
                var unfixed = Step("run, fix off", new[] { Path.Combine(offDir, "Consumer.dll") },
                    new Dictionary<string, string?> { ["NUGET_PACKAGES"] = Path.Combine(project, "no-package-cache") });
                if (SystemLacksGlibcxx3432())
                {
                    // What users see without the fix: TorchSharp's misleading text, and the runtime's explanation of the real cause.
                    Assert.Equal(3, unfixed.ExitCode);
                    Assert.Contains("doesn't contain a reference to libtorch-cpu-linux-x64", unfixed.Output);
                    Assert.Contains("MlPitfalls.Runtime.TorchSharpLoadException: TorchSharp's native library did not load", unfixed.Output);
                    Assert.Contains("(TorchSharp's native shim) needs GLIBCXX_3.4.32 from libstdc++.so.6, but this system's '", unfixed.Output);
                    Assert.Contains("version `GLIBCXX_3.4.32' not found", unfixed.Output);
                    Assert.Contains("MlPitfallsPatchTorchSharpNative is not set to false", unfixed.Output);

                    // The page users find by searching for the error quotes it word for word.
                    var torchSharpLine = unfixed.Output.Split('\n').Select(l => l.TrimEnd('\r')).First(l => l.StartsWith(" ---> System.NotSupportedException: ", StringComparison.Ordinal));
                    var page = File.ReadAllText(Path.Combine(DotnetCli.RepoRoot, "docs", "torchsharp-on-debian.md"));
                    Assert.Contains("System.TypeInitializationException: The type initializer for 'TorchSharp.torch' threw an exception.\n" + torchSharpLine + "\n", page.Replace("\r\n", "\n"));
                }
                else
                {
                    Assert.True(unfixed.ExitCode == 0, "this system's libstdc++ has GLIBCXX_3.4.32, so the unpatched shim should load: " + unfixed);
                }
                Assert.Equal(cachedShimBefore, File.ReadAllBytes(cachedShim));
                output.WriteLine("Timings: " + string.Join(", ", steps));
            }
            finally
            {
                Directory.Delete(project, recursive: true);
            }
        }

        private void WriteConsumer(string project, string machinePackages)
        {
            // Stops MSBuild from looking further up for Directory.Build files: the consumer is a project of its own.
            File.WriteAllText(Path.Combine(project, "Directory.Build.props"), "<Project />\n");
            File.WriteAllText(Path.Combine(project, "Directory.Build.targets"), "<Project />\n");
            // The packed package from its folder; everything else from this machine's package cache, read-only, so the test
            // downloads nothing and leaves nothing of its own in that cache.
            File.WriteAllText(Path.Combine(project, "nuget.config"), $"""
                <?xml version="1.0" encoding="utf-8"?>
                <configuration>
                  <packageSources>
                    <clear />
                    <add key="mlpitfalls-packed" value="{packed.Feed}" />
                  </packageSources>
                  <fallbackPackageFolders>
                    <clear />
                    <add key="machine-cache" value="{machinePackages}" />
                  </fallbackPackageFolders>
                </configuration>
                """);
            File.WriteAllText(Path.Combine(project, "Consumer.csproj"), $"""
                <Project Sdk="Microsoft.NET.Sdk">
                  <PropertyGroup>
                    <OutputType>Exe</OutputType>
                    <TargetFramework>net10.0</TargetFramework>
                    <Nullable>enable</Nullable>
                  </PropertyGroup>
                  <ItemGroup>
                    <PackageReference Include="MlPitfalls.Runtime" Version="{packed.Version}" />
                    <PackageReference Include="TorchSharp" Version="{TorchSharpVersion}" />
                    <PackageReference Include="libtorch-cpu-linux-x64" Version="{LibtorchVersion}" />
                  </ItemGroup>
                </Project>
                """);
            File.WriteAllText(Path.Combine(project, "Program.cs"), """
                using System;
                using System.Linq;
                using System.Reflection;
                using TorchSharp;

                // A program's first TorchSharp call is often seeding; the runtime's checks explain a native load failure.
                try
                {
                    MlPitfalls.Runtime.Sanity.Reproducibility.Seed(0);
                }
                catch (MlPitfalls.Runtime.RuntimeCheckException check)
                {
                    Console.WriteLine(check.GetType().FullName + ": " + check.Message);
                    Console.WriteLine("TorchSharp's exception: " + check.InnerException);
                    return 3;
                }

                using var a = torch.tensor(new float[] { 0, 1, 2, 3, 4, 5 }).reshape(2, 3);
                using var b = torch.ones(3, 2);
                using var product = a.matmul(b);
                Console.WriteLine("consumer: matmul = " + string.Join(",", product.data<float>().ToArray()));
                return 0;
                """);
        }

        private static bool NeedIsWeak(string shim)
        {
            var needs = ElfVersions.ReadNeeds(shim);
            Assert.NotNull(needs);
            return Assert.Single(needs!, n => n.Version == TorchLoad.PatchedVersion).Weak;
        }

        private static bool SystemLacksGlibcxx3432()
        {
            var libstdcxx = new[] { "/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/usr/lib64", "/usr/lib" }
                .Select(d => Path.Combine(d, "libstdc++.so.6")).FirstOrDefault(File.Exists);
            return libstdcxx is not null && !(ElfVersions.ReadDefinitions(libstdcxx) ?? Array.Empty<string>()).Contains(TorchLoad.PatchedVersion);
        }

        private static int Count(string text, string what) => Regex.Matches(text, Regex.Escape(what)).Count;

        private static string Read(ZipArchive zip, string entry)
        {
            using var reader = new StreamReader(zip.GetEntry(entry)!.Open());
            return reader.ReadToEnd();
        }

        private static XElement Metadata(ZipArchive zip)
        {
            var nuspec = zip.Entries.Single(e => e.FullName.EndsWith(".nuspec", StringComparison.Ordinal));
            using var stream = nuspec.Open();
            return XDocument.Load(stream).Root!.Elements().Single(e => e.Name.LocalName == "metadata");
        }
    }
}
