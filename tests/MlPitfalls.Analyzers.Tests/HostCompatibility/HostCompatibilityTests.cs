using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Reflection;
using System.Xml.Linq;
using MlPitfalls.Analyzers.Infrastructure;
using MlPitfalls.CodeFixes.TrainingLoop;
using Xunit;

namespace MlPitfalls.Analyzers.Tests.HostCompatibility;

/// <summary>
/// The shipped assemblies load in every supported host: they reference nothing newer than Roslyn 4.8 and what it runs on
/// (<see cref="OldestSupportedHost"/>), read from the built DLLs' metadata, so a transitive bump fails here and not for users.
/// </summary>
public class HostCompatibilityTests
{
    [Fact]
    public void The_analyzer_assembly_references_only_what_the_compiler_of_the_oldest_supported_host_has()
    {
        var path = typeof(TorchSharpAnalyzer).Assembly.Location;
        Assert.Empty(OldestSupportedHost.Check("MlPitfalls.Analyzers", Loader.Compiler, OldestSupportedHost.ReferencesOf(path)));
    }

    [Fact]
    public void The_code_fix_assembly_references_only_what_the_oldest_supported_IDE_has()
    {
        var path = typeof(GradientsNotClearedCodeFix).Assembly.Location;
        Assert.Empty(OldestSupportedHost.Check("MlPitfalls.CodeFixes", Loader.Ide, OldestSupportedHost.ReferencesOf(path)));
    }

    [Fact]
    public void The_check_reads_real_references_and_reports_a_newer_one()
    {
        // .NET's own System.Reflection.Metadata references the System.Collections.Immutable of its release (10.0.0.0 on .NET 10).
        var path = typeof(System.Reflection.Metadata.MetadataReader).Assembly.Location;
        var violations = OldestSupportedHost.Check("System.Reflection.Metadata", Loader.Compiler, OldestSupportedHost.ReferencesOf(path));

        var immutable = Assert.Single(violations, v => v.Reference == "System.Collections.Immutable");
        Assert.True(immutable.Version >= new Version(8, 0, 0, 0));
        Assert.Contains("CS8032", immutable.Reason, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("Microsoft.CodeAnalysis", "4.9.0.0")]
    [InlineData("Microsoft.CodeAnalysis.CSharp", "4.14.0.0")]
    [InlineData("Microsoft.CodeAnalysis.Workspaces", "5.0.0.0")]
    [InlineData("Microsoft.CodeAnalysis.CSharp.Workspaces", "4.8.0.1")]
    [InlineData("System.Collections.Immutable", "8.0.0.0")]
    [InlineData("System.Reflection.Metadata", "9.0.0.0")]
    public void A_reference_above_the_oldest_host_is_a_violation(string name, string version)
    {
        var violation = Assert.Single(OldestSupportedHost.Check("Shipped", Loader.Ide, [(name, Version.Parse(version))]));
        Assert.Equal(name, violation.Reference);
        Assert.Contains("CS8032", violation.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void References_at_the_oldest_hosts_versions_or_below_pass()
    {
        var atTheLimit = OldestSupportedHost.Assemblies.Select(a => (a.Name, a.Highest));
        var below = new[] { ("Microsoft.CodeAnalysis", new Version(3, 11, 0, 0)), ("netstandard", new Version(2, 0, 0, 0)), ("MlPitfalls.Analyzers", new Version(0, 1, 0, 0)) };
        Assert.Empty(OldestSupportedHost.Check("Shipped", Loader.Ide, atTheLimit.Concat(below)));
    }

    [Fact]
    public void The_analyzers_may_not_reference_Workspaces_which_the_compiler_does_not_load()
    {
        var violation = Assert.Single(OldestSupportedHost.Check("Shipped", Loader.Compiler, [("Microsoft.CodeAnalysis.Workspaces", new Version(4, 8, 0, 0))]));
        Assert.Contains("does not load Workspaces", violation.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void An_assembly_no_host_provides_is_a_violation()
    {
        var violation = Assert.Single(OldestSupportedHost.Check("Shipped", Loader.Ide, [("Newtonsoft.Json", new Version(13, 0, 0, 0))]));
        Assert.Contains("no host provides it", violation.Reason, StringComparison.Ordinal);
    }

    /// <summary>
    /// The table is what Roslyn 4.8 brings: each package is the version that Roslyn 4.8's netstandard2.0 dependencies (read
    /// from the nuspecs restore left in the NuGet cache) resolve to, and its DLL has the table's assembly version.
    /// </summary>
    [Fact]
    public void The_table_holds_the_versions_Roslyn_4_8_depends_on()
    {
        var packages = typeof(HostCompatibilityTests).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>()
            .Single(a => a.Key == "NuGetPackageRoot").Value!;
        var compiler = DependencyClosure(packages, "Microsoft.CodeAnalysis.CSharp", "4.8.0");
        var ide = DependencyClosure(packages, "Microsoft.CodeAnalysis.CSharp.Workspaces", "4.8.0");

        foreach (var assembly in OldestSupportedHost.Assemblies)
        {
            var closure = assembly.LoadedBy == Loader.Compiler ? compiler : ide;
            var (id, version) = assembly.Package;
            Assert.True(closure.TryGetValue(id, out var resolved), $"Roslyn 4.8 ({assembly.LoadedBy}) does not depend on {id}; drop {assembly.Name} from the table.");
            Assert.True(resolved == Version.Parse(version), $"Roslyn 4.8 ({assembly.LoadedBy}) depends on {id} {resolved}, the table says {version}.");

            var dll = Path.Combine(packages, id.ToLowerInvariant(), version, "lib", "netstandard2.0", assembly.Name + ".dll");
            Assert.True(File.Exists(dll), $"{dll} is missing: was the solution restored?");
            Assert.Equal(OldestSupportedHost.VersionOf(dll), assembly.Highest);
        }
    }

    /// <summary>
    /// The netstandard2.0 dependencies of a package, transitively, each at the highest version asked for (what restore
    /// resolves them to here, where no range conflicts). Packages restore never fetched are not followed.
    /// </summary>
    private static Dictionary<string, Version> DependencyClosure(string packageRoot, string id, string version)
    {
        var resolved = new Dictionary<string, Version>(StringComparer.OrdinalIgnoreCase) { [id] = Version.Parse(version) };
        var pending = new Queue<(string Id, string Version)>([(id, version)]);
        while (pending.Count > 0)
        {
            var (nextId, nextVersion) = pending.Dequeue();
            var nuspec = Path.Combine(packageRoot, nextId.ToLowerInvariant(), nextVersion, nextId.ToLowerInvariant() + ".nuspec");
            if (!File.Exists(nuspec))
            {
                continue;
            }

            var dependencies = XDocument.Load(nuspec).Descendants()
                .Where(e => e.Name.LocalName == "group" && string.Equals((string?)e.Attribute("targetFramework"), ".NETStandard2.0", StringComparison.OrdinalIgnoreCase))
                .Elements()
                .Where(e => e.Name.LocalName == "dependency");
            foreach (var dependency in dependencies)
            {
                var dependencyId = (string)dependency.Attribute("id")!;
                // "7.0.0" or "[4.8.0, 4.8.0]": the lowest version allowed is what NuGet picks.
                var lowest = ((string)dependency.Attribute("version")!).Trim('[', '(').Split(',')[0].Trim();
                var parsed = Version.Parse(lowest);
                if (!resolved.TryGetValue(dependencyId, out var known) || parsed > known)
                {
                    resolved[dependencyId] = parsed;
                    pending.Enqueue((dependencyId, lowest));
                }
            }
        }

        return resolved;
    }
}
