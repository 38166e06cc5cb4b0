using System;
using System.Diagnostics;
using System.IO;
using System.IO.Compression;
using System.Linq;
using System.Xml.Linq;
using Xunit;

namespace MlPitfalls.Analyzers.Tests.Repository;

/// <summary>Packs MlPitfalls.Analyzers the way a release does and checks what users would install.</summary>
public class PackageLayoutTests
{
    [Fact]
    public void Package_holds_both_assemblies_as_analyzers_nothing_in_lib_and_the_project_urls()
    {
        var output = Directory.CreateTempSubdirectory("mlpitfalls-pack-").FullName;
        try
        {
            var project = RepositoryFiles.Path("src", "MlPitfalls.Package", "MlPitfalls.Package.csproj");
            var (exitCode, log) = Run("dotnet", $"pack \"{project}\" -c Release -o \"{output}\" -nologo");
            Assert.True(exitCode == 0, "dotnet pack failed:\n" + log);

            var package = Assert.Single(Directory.GetFiles(output, "MlPitfalls.Analyzers.*.nupkg"));
            using var zip = ZipFile.OpenRead(package);
            var entries = zip.Entries.Select(e => e.FullName).ToList();

            Assert.Contains("analyzers/dotnet/cs/MlPitfalls.Analyzers.dll", entries);
            Assert.Contains("analyzers/dotnet/cs/MlPitfalls.CodeFixes.dll", entries);
            Assert.Contains("README.md", entries);
            Assert.DoesNotContain(entries, e => e.StartsWith("lib/", StringComparison.Ordinal));
            Assert.DoesNotContain(entries, e => e.StartsWith("analyzers/", StringComparison.Ordinal) && !e.StartsWith("analyzers/dotnet/cs/", StringComparison.Ordinal));

            var nuspecEntry = zip.Entries.Single(e => e.FullName.EndsWith(".nuspec", StringComparison.Ordinal));
            using var nuspecStream = nuspecEntry.Open();
            var metadata = XDocument.Load(nuspecStream).Root!.Elements().Single(e => e.Name.LocalName == "metadata");
            string Value(string name) => metadata.Elements().Single(e => e.Name.LocalName == name).Value;
            Assert.Equal("MlPitfalls.Analyzers", Value("id"));
            Assert.Equal("true", Value("developmentDependency"));
            Assert.Equal("README.md", Value("readme"));
            Assert.DoesNotContain(metadata.Elements(), e => e.Name.LocalName == "dependencies" && e.Descendants().Any(d => d.Name.LocalName == "dependency"));

            // Where users find the docs: the project and repository URLs, and the TorchSharp-on-Debian page by full URL.
            Assert.Equal("https://github.com/mlpitfalls/mlpitfalls", Value("projectUrl"));
            var repository = metadata.Elements().Single(e => e.Name.LocalName == "repository");
            Assert.Equal("git", repository.Attribute("type")?.Value);
            Assert.Equal("https://github.com/mlpitfalls/mlpitfalls", repository.Attribute("url")?.Value);
            using var readme = new StreamReader(zip.GetEntry("README.md")!.Open());
            Assert.Contains("https://github.com/mlpitfalls/mlpitfalls/blob/main/docs/torchsharp-on-debian.md", readme.ReadToEnd());
        }
        finally
        {
            Directory.Delete(output, recursive: true);
        }
    }

    private static (int ExitCode, string Log) Run(string fileName, string arguments)
    {
        var start = new ProcessStartInfo(fileName, arguments)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        process.WaitForExit();
        return (process.ExitCode, stdout.Result + stderr.Result);
    }
}
