using System;
using System.Collections.Immutable;
using System.Linq;
using System.Threading.Tasks;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.Diagnostics;
using MlPitfalls.Analyzers.Infrastructure;
using MlPitfalls.Analyzers.Tests.Infrastructure;
using MlPitfalls.Analyzers.Tests.Verifiers;

namespace MlPitfalls.Analyzers.Tests.AllRules;

/// <summary>Every MlPitfalls analyzer in the assembly, run together over a compilation the way a build runs them.</summary>
internal static class AllAnalyzers
{
    public static ImmutableArray<DiagnosticAnalyzer> Create() => typeof(TorchSharpAnalyzer).Assembly.GetTypes()
        .Where(t => typeof(DiagnosticAnalyzer).IsAssignableFrom(t) && !t.IsAbstract)
        .Select(t => (DiagnosticAnalyzer)Activator.CreateInstance(t)!)
        .ToImmutableArray();

    /// <summary>A compilation of <paramref name="sources"/> (errors allowed), with TorchSharp's usual usings prepended when asked.</summary>
    public static CSharpCompilation Compile(LanguageVersion version, bool addUsings, params string[] sources)
    {
        var options = new CSharpParseOptions(version);
        var trees = sources.Select((s, i) => CSharpSyntaxTree.ParseText((addUsings ? TorchSharpSources.Usings : "") + s, options, path: $"File{i}.cs"));
        return CSharpCompilation.Create(
            "Test", trees, TestCompilation.Platform.Append(TestCompilation.TorchSharp), new CSharpCompilationOptions(OutputKind.DynamicallyLinkedLibrary, nullableContextOptions: NullableContextOptions.Enable));
    }

    /// <summary>What all analyzers report (concurrently, as in a build), analyzer exceptions (AD0001) included.</summary>
    public static async Task<ImmutableArray<Diagnostic>> RunAsync(Compilation compilation)
    {
        var options = new CompilationWithAnalyzersOptions(
            new AnalyzerOptions(ImmutableArray<AdditionalText>.Empty), onAnalyzerException: null, concurrentAnalysis: true, logAnalyzerExecutionTime: false);
        return await compilation.WithAnalyzers(Create(), options).GetAnalyzerDiagnosticsAsync().ConfigureAwait(false);
    }
}
