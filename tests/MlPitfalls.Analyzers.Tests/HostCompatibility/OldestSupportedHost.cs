using System;
using System.Collections.Generic;
using System.Collections.Immutable;
using System.IO;
using System.Linq;
using System.Reflection.Metadata;
using System.Reflection.PortableExecutable;

namespace MlPitfalls.Analyzers.Tests.HostCompatibility;

/// <summary>Who loads a shipped assembly. The compiler loads the analyzers in every build; only IDEs and
/// <c>dotnet format</c> load the code fixes, and they bring Roslyn's Workspaces layer with them.</summary>
internal enum Loader
{
    Compiler,
    Ide,
}

/// <summary>An assembly the host gives analyzers to bind to, at the highest version the oldest supported host has.</summary>
/// <param name="Package">The NuGet package (id, version) whose <c>lib/netstandard2.0</c> holds that version: Roslyn 4.8 depends on it.</param>
internal sealed record HostAssembly(string Name, Version Highest, Loader LoadedBy, (string Id, string Version) Package);

/// <summary>A reference of a shipped assembly that the oldest supported host cannot satisfy.</summary>
internal sealed record HostViolation(string ShippedAssembly, string Reference, Version Version, string Reason)
{
    public override string ToString() => $"{ShippedAssembly} references {Reference} {Version}: {Reason}";
}

/// <summary>
/// What MlPitfalls' oldest supported hosts give an analyzer to bind to, and the check of a shipped assembly's
/// references against it (rjmurillo/moq.analyzers learnt this the hard way: its issue 850, a transitive bump of
/// System.Collections.Immutable that silenced every analyzer on the .NET 8 SDK).
/// </summary>
internal static class OldestSupportedHost
{
    /// <summary>
    /// The oldest hosts MlPitfalls supports, the .NET 8 SDK (<c>dotnet build</c>, <c>dotnet format</c>) and Visual Studio 2022
    /// 17.8, load analyzers into Roslyn 4.8 and give them only what Roslyn 4.8 itself runs on. A shipped assembly that
    /// references a higher version of any of these, or an assembly not listed, does not load there: the build warns CS8032
    /// ("An instance of analyzer ... cannot be created") and MlPitfalls reports nothing. The versions are assembly versions,
    /// of the packages that Microsoft.CodeAnalysis.Common / Workspaces.Common 4.8.0 depend on for netstandard2.0
    /// (a test reads those nuspecs to keep this table honest). Raise them only with the minimum supported SDK and VS,
    /// together with the Roslyn pin in Directory.Packages.props.
    /// </summary>
    public static readonly ImmutableArray<HostAssembly> Assemblies =
    [
        new("Microsoft.CodeAnalysis", new(4, 8, 0, 0), Loader.Compiler, ("Microsoft.CodeAnalysis.Common", "4.8.0")),
        new("Microsoft.CodeAnalysis.CSharp", new(4, 8, 0, 0), Loader.Compiler, ("Microsoft.CodeAnalysis.CSharp", "4.8.0")),
        new("System.Collections.Immutable", new(7, 0, 0, 0), Loader.Compiler, ("System.Collections.Immutable", "7.0.0")),
        new("System.Reflection.Metadata", new(7, 0, 0, 0), Loader.Compiler, ("System.Reflection.Metadata", "7.0.0")),
        new("System.Memory", new(4, 0, 1, 2), Loader.Compiler, ("System.Memory", "4.5.5")),
        new("System.Runtime.CompilerServices.Unsafe", new(6, 0, 0, 0), Loader.Compiler, ("System.Runtime.CompilerServices.Unsafe", "6.0.0")),
        new("System.Text.Encoding.CodePages", new(7, 0, 0, 0), Loader.Compiler, ("System.Text.Encoding.CodePages", "7.0.0")),
        new("System.Threading.Tasks.Extensions", new(4, 2, 0, 1), Loader.Compiler, ("System.Threading.Tasks.Extensions", "4.5.4")),
        // The compiler (csc) has no Workspaces: only code fixes may reference these.
        new("Microsoft.CodeAnalysis.Workspaces", new(4, 8, 0, 0), Loader.Ide, ("Microsoft.CodeAnalysis.Workspaces.Common", "4.8.0")),
        new("Microsoft.CodeAnalysis.CSharp.Workspaces", new(4, 8, 0, 0), Loader.Ide, ("Microsoft.CodeAnalysis.CSharp.Workspaces", "4.8.0")),
        // [ExportCodeFixProvider, Shared]: the MEF attributes the IDE discovers code fixes by.
        new("System.Composition.AttributedModel", new(7, 0, 0, 0), Loader.Ide, ("System.Composition.AttributedModel", "7.0.0")),
    ];

    /// <summary>netstandard2.0 assemblies reference the <c>netstandard</c> facade, which every .NET Framework 4.7.2+ and .NET host has.</summary>
    private static readonly Version NetStandardFacade = new(2, 0, 0, 0);

    /// <summary>Assemblies that ship next to each other in the package's <c>analyzers/dotnet/cs/</c> (the code fixes use the analyzers' internals).</summary>
    private static readonly ImmutableHashSet<string> ShippedTogether = ["MlPitfalls.Analyzers"];

    /// <summary>The references of <paramref name="shippedAssembly"/> that a host loading it as <paramref name="loadedBy"/> cannot satisfy.</summary>
    public static IReadOnlyList<HostViolation> Check(string shippedAssembly, Loader loadedBy, IEnumerable<(string Name, Version Version)> references)
    {
        var violations = new List<HostViolation>();
        foreach (var (name, version) in references)
        {
            if (ShippedTogether.Contains(name))
            {
                continue;
            }

            if (name == "netstandard")
            {
                if (version > NetStandardFacade)
                {
                    violations.Add(new(shippedAssembly, name, version, $"hosts on .NET Framework have netstandard {NetStandardFacade}; target netstandard2.0"));
                }

                continue;
            }

            var provided = Assemblies.FirstOrDefault(a => a.Name == name);
            if (provided is null)
            {
                violations.Add(new(shippedAssembly, name, version,
                    "no host provides it and the package ships only MlPitfalls' own assemblies; ship it in analyzers/dotnet/cs/ or drop the dependency"));
            }
            else if (provided.LoadedBy == Loader.Ide && loadedBy == Loader.Compiler)
            {
                violations.Add(new(shippedAssembly, name, version,
                    "the compiler does not load Workspaces assemblies, so analyzers fail in dotnet build; move the code to MlPitfalls.CodeFixes"));
            }
            else if (version > provided.Highest)
            {
                violations.Add(new(shippedAssembly, name, version,
                    $"the oldest supported hosts (.NET 8 SDK, VS 2022 17.8, Roslyn 4.8) have {provided.Highest}; the analyzers would not load there (CS8032)"));
            }
        }

        return violations;
    }

    /// <summary>The assembly references recorded in the metadata of the assembly at <paramref name="path"/> (the file is read, never loaded).</summary>
    public static IReadOnlyList<(string Name, Version Version)> ReferencesOf(string path)
    {
        using var pe = new PEReader(File.OpenRead(path));
        var metadata = pe.GetMetadataReader();
        return metadata.AssemblyReferences
            .Select(handle => metadata.GetAssemblyReference(handle))
            .Select(reference => (metadata.GetString(reference.Name), reference.Version))
            .ToList();
    }

    /// <summary>The assembly version of the assembly at <paramref name="path"/>.</summary>
    public static Version VersionOf(string path)
    {
        using var pe = new PEReader(File.OpenRead(path));
        return pe.GetMetadataReader().GetAssemblyDefinition().Version;
    }
}
