using System;
using System.Collections.Immutable;
using System.IO;
using System.Linq;
using System.Threading.Tasks;
using BenchmarkDotNet.Attributes;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.Diagnostics;
using MlPitfalls.Analyzers.TrainingLoop;

namespace MlPitfalls.Analyzers.Benchmarks;

/// <summary>
/// Full analysis of a generated compilation: an empty analyzer (the cost of running any analyzer at all) against
/// MLP001. The difference is what MlPitfalls adds to a build or an IDE background pass.
/// </summary>
[MemoryDiagnoser]
public class AnalyzerBenchmarks
{
    private Compilation _compilation = null!;

    [Params(50)]
    public int Classes { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _compilation = CreateCompilation(Classes);
        var count = RunAsync(new GradientsNotClearedAnalyzer()).GetAwaiter().GetResult();
        var expected = Classes * TrainingCodeGenerator.BugsPerClass;
        if (count != expected)
        {
            throw new InvalidOperationException($"MLP001 reported {count} diagnostics on the generated code, expected {expected}: the benchmark would measure the wrong thing.");
        }
    }

    [Benchmark(Baseline = true)]
    public Task<int> EmptyAnalyzer() => RunAsync(new EmptyAnalyzer());

    [Benchmark]
    public Task<int> MLP001_GradientsNotCleared() => RunAsync(new GradientsNotClearedAnalyzer());

    private async Task<int> RunAsync(DiagnosticAnalyzer analyzer)
    {
        // A fresh compilation each time, as in a build: nothing is cached from the previous iteration.
        var compilation = _compilation.RemoveAllSyntaxTrees().AddSyntaxTrees(_compilation.SyntaxTrees);
        var diagnostics = await compilation
            .WithAnalyzers(ImmutableArray.Create(analyzer))
            .GetAnalyzerDiagnosticsAsync()
            .ConfigureAwait(false);
        if (diagnostics.Any(d => d.Id == "AD0001"))
        {
            throw new InvalidOperationException("The analyzer threw: " + diagnostics.First(d => d.Id == "AD0001"));
        }

        return diagnostics.Length;
    }

    internal static Compilation CreateCompilation(int classes)
    {
        var platform = ((string)AppContext.GetData("TRUSTED_PLATFORM_ASSEMBLIES")!).Split(Path.PathSeparator);
        var references = platform
            .Select(path => MetadataReference.CreateFromFile(path))
            .Append(MetadataReference.CreateFromFile(typeof(TorchSharp.torch).Assembly.Location));
        var tree = CSharpSyntaxTree.ParseText(TrainingCodeGenerator.Generate(classes));
        var compilation = CSharpCompilation.Create(
            "Generated", new[] { tree }, references, new CSharpCompilationOptions(OutputKind.DynamicallyLinkedLibrary));
        var errors = compilation.GetDiagnostics().Where(d => d.Severity == DiagnosticSeverity.Error).ToList();
        if (errors.Count > 0)
        {
            throw new InvalidOperationException("The generated code does not compile: " + errors[0]);
        }

        return compilation;
    }
}

[DiagnosticAnalyzer(LanguageNames.CSharp)]
internal sealed class EmptyAnalyzer : DiagnosticAnalyzer
{
    private static readonly DiagnosticDescriptor Never = new("EMPTY", "Empty", "Empty", "Empty", DiagnosticSeverity.Hidden, isEnabledByDefault: true);

    public override ImmutableArray<DiagnosticDescriptor> SupportedDiagnostics { get; } = ImmutableArray.Create(Never);

    public override void Initialize(AnalysisContext context)
    {
        context.EnableConcurrentExecution();
        context.ConfigureGeneratedCodeAnalysis(GeneratedCodeAnalysisFlags.None);
        context.RegisterOperationAction(_ => { }, OperationKind.Loop);
    }
}
