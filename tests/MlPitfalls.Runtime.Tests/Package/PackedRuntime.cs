using System;
using System.IO;
using Xunit;

namespace MlPitfalls.Runtime.Tests.Package
{
    /// <summary>MlPitfalls.Runtime packed once, with <c>dotnet pack -o</c>, into a temporary folder that serves as a package source.</summary>
    public sealed class PackedRuntime : IDisposable
    {
        public PackedRuntime()
        {
            Feed = Directory.CreateTempSubdirectory("mlpitfalls-runtime-pack-").FullName;
            var project = Path.Combine(DotnetCli.RepoRoot, "src", "MlPitfalls.Runtime", "MlPitfalls.Runtime.csproj");
            Pack = DotnetCli.Run(DotnetCli.RepoRoot, new[] { "pack", project, "-c", DotnetCli.Configuration, "-o", Feed, "-nologo", "--disable-build-servers" });
            Assert.True(Pack.ExitCode == 0, "dotnet pack failed: " + Pack);
            Package = Assert.Single(Directory.GetFiles(Feed, "MlPitfalls.Runtime.*.nupkg"));
            var name = Path.GetFileNameWithoutExtension(Package);
            Version = name.Substring("MlPitfalls.Runtime.".Length);
        }

        /// <summary>The folder holding the package (a local package source).</summary>
        public string Feed { get; }

        /// <summary>The .nupkg file.</summary>
        public string Package { get; }

        /// <summary>Its version, as a consumer references it.</summary>
        public string Version { get; }

        /// <summary>What <c>dotnet pack</c> printed, and how long it took.</summary>
        public DotnetCli.Result Pack { get; }

        public void Dispose() => Directory.Delete(Feed, recursive: true);
    }
}
