using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Collections.Immutable;
using System.IO;
using System.Linq;
using System.Reflection;
using System.Runtime.Loader;
using System.Threading.Tasks;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.Diagnostics;

namespace MlPitfalls.Analyzers.LatestRoslynTests;

/// <summary>
/// The built MlPitfalls.Analyzers.dll, loaded the way a compiler loads an analyzer from a package (an
/// <see cref="AnalyzerFileReference"/>, the assembly in a load context of its own that takes Roslyn from the compiler's),
/// inside this process, which runs the newest Roslyn served.
/// </summary>
internal static class ShippedAnalyzers
{
    /// <summary>Where the build copies the analyzer assembly (see the project file): beside the tests, not referenced by them.</summary>
    public static string AssemblyPath { get; } = Path.Combine(AppContext.BaseDirectory, "analyzers", "MlPitfalls.Analyzers.dll");

    /// <summary>The analyzers, and why any failed to load (what a build reports as CS8032 or CS9057).</summary>
    public static (ImmutableArray<DiagnosticAnalyzer> Analyzers, IReadOnlyList<string> LoadFailures) Load()
    {
        var failures = new List<string>();
        var reference = new AnalyzerFileReference(AssemblyPath, new PerAssemblyLoadContextLoader());
        reference.AnalyzerLoadFailed += (_, e) => failures.Add($"{e.ErrorCode} {e.TypeName}: {e.Message} {e.Exception}");
        var analyzers = reference.GetAnalyzers(LanguageNames.CSharp);
        return (analyzers, failures);
    }

    private static readonly Lazy<ImmutableArray<DiagnosticAnalyzer>> Loaded = new(() =>
    {
        var (analyzers, failures) = Load();
        return failures.Count == 0 ? analyzers : throw new InvalidOperationException(string.Join(Environment.NewLine, failures));
    });

    /// <summary>What all the analyzers report on <paramref name="sources"/> (path, text), compiled against the shared framework and TorchSharp.</summary>
    public static async Task<ImmutableArray<Diagnostic>> RunAsync(OutputKind kind, params (string Path, string Text)[] sources)
    {
        var trees = sources.Select(s => CSharpSyntaxTree.ParseText(s.Text, path: s.Path));
        var compilation = CSharpCompilation.Create("LatestRoslynTest", trees, References, new CSharpCompilationOptions(kind, nullableContextOptions: NullableContextOptions.Enable));
        var errors = compilation.GetDiagnostics().Where(d => d.Severity == DiagnosticSeverity.Error).ToList();
        if (errors.Count > 0)
        {
            throw new InvalidOperationException("The test program does not compile: " + string.Join(Environment.NewLine, errors));
        }

        // No exception handler: an analyzer that throws is reported as AD0001, as in a build.
        var options = new CompilationWithAnalyzersOptions(new AnalyzerOptions([]), onAnalyzerException: null, concurrentAnalysis: true, logAnalyzerExecutionTime: false);
        return await compilation.WithAnalyzers(Loaded.Value, options).GetAnalyzerDiagnosticsAsync().ConfigureAwait(false);
    }

    // The shared framework (the test host's trusted assemblies also hold its own dependencies) and TorchSharp.
    private static readonly MetadataReference[] References = ((string)AppContext.GetData("TRUSTED_PLATFORM_ASSEMBLIES")!)
        .Split(Path.PathSeparator)
        .Where(path => Path.GetDirectoryName(path) == Path.GetDirectoryName(typeof(object).Assembly.Location))
        .Append(typeof(TorchSharp.torch).Assembly.Location)
        .Select(path => (MetadataReference)MetadataReference.CreateFromFile(path))
        .ToArray();

    /// <summary>
    /// What the compiler does on .NET: each analyzer assembly in a load context of its own, which resolves nothing itself, so
    /// Roslyn and the framework come from the compiler's context (here the default one, with Roslyn 5.x), whatever
    /// version the analyzer was compiled against.
    /// </summary>
    private sealed class PerAssemblyLoadContextLoader : IAnalyzerAssemblyLoader
    {
        private readonly ConcurrentDictionary<string, Assembly> loaded = new(StringComparer.Ordinal);

        public void AddDependencyLocation(string fullPath)
        {
        }

        public Assembly LoadFromPath(string fullPath) => loaded.GetOrAdd(
            fullPath, path => new AssemblyLoadContext("analyzer " + Path.GetFileName(path)).LoadFromAssemblyPath(path));
    }
}
