using System.Collections.Immutable;
using System.Threading.Tasks;
using BenchmarkDotNet.Attributes;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Diagnostics;

namespace MlPitfalls.Analyzers.Benchmarks;

/// <summary>
/// Plain C# without TorchSharp (<see cref="PlainCodeGenerator"/>): MlPitfalls' analyzers register nothing there. Next to
/// the empty analyzer (which, like any real analyzer set, makes the driver bind every body) they must add about nothing;
/// alone they do not even make the driver bind. The setup checks that they report nothing and register no action.
/// </summary>
[MemoryDiagnoser]
public class PlainCodeBenchmarks
{
    private Compilation _compilation = null!;

    [Params(20, 100)]
    public int Classes { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _compilation = BenchmarkCompilations.Create(PlainCodeGenerator.Generate(Classes));
        BenchmarkCompilations.AssertNothingRegistered(_compilation);
    }

    [Benchmark(Baseline = true)]
    public Task<int> EmptyAnalyzer() => RunAsync(ImmutableArray.Create<DiagnosticAnalyzer>(new EmptyAnalyzer()));

    [Benchmark]
    public Task<int> EmptyAnalyzerAndAllMlPitfalls() => RunAsync(MlPitfallsAnalyzers.All().Insert(0, new EmptyAnalyzer()));

    [Benchmark]
    public Task<int> AllMlPitfallsAlone() => RunAsync(MlPitfallsAnalyzers.All());

    private async Task<int> RunAsync(ImmutableArray<DiagnosticAnalyzer> analyzers)
        => (await BenchmarkCompilations.AnalyzeAsync(_compilation, analyzers).ConfigureAwait(false)).Length;
}
