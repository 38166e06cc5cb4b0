using System.Collections.Immutable;
using System.Threading.Tasks;
using BenchmarkDotNet.Attributes;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Diagnostics;

namespace MlPitfalls.Analyzers.Benchmarks;

/// <summary>
/// One generated method of 1,000 / 2,500 / 5,000 lines (<see cref="LongMethodGenerator"/>): one control-flow graph for
/// the dataflow rules. The time should grow about linearly with the lines.
/// </summary>
[MemoryDiagnoser]
public class LongMethodBenchmarks
{
    private Compilation _compilation = null!;

    [Params(1_000, 2_500, 5_000)]
    public int Lines { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        var code = LongMethodGenerator.Generate(Lines);
        _compilation = BenchmarkCompilations.Create(code);
        BenchmarkCompilations.AssertReports(code, _compilation, MlPitfallsAnalyzers.All());
    }

    [Benchmark(Baseline = true)]
    public Task<int> EmptyAnalyzer() => RunAsync(ImmutableArray.Create<DiagnosticAnalyzer>(new EmptyAnalyzer()));

    [Benchmark]
    public Task<int> LossCallRules_MLP002_to_MLP004_and_MLP006() => RunAsync(MlPitfallsAnalyzers.LossRules());

    [Benchmark]
    public Task<int> AllMlPitfalls() => RunAsync(MlPitfallsAnalyzers.All());

    private async Task<int> RunAsync(ImmutableArray<DiagnosticAnalyzer> analyzers)
        => (await BenchmarkCompilations.AnalyzeAsync(_compilation, analyzers).ConfigureAwait(false)).Length;
}
