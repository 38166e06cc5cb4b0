using System.Collections.Immutable;
using System.Threading.Tasks;
using BenchmarkDotNet.Attributes;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Diagnostics;

namespace MlPitfalls.Analyzers.Benchmarks;

/// <summary>
/// Full analysis of generated TorchSharp training code (<see cref="TrainingCodeGenerator"/>): each rule alone, the
/// three loss-pairing rules together (they share one provenance analysis per method), and all MlPitfalls analyzers,
/// each against an empty analyzer (the cost of running any analyzer at all). A fresh compilation per iteration, as in a
/// build. The setup checks every rule's diagnostic count, so no row can silently measure nothing.
/// </summary>
[MemoryDiagnoser]
public class AnalyzerBenchmarks
{
    private Compilation _compilation = null!;

    [Params(20, 100)]
    public int Classes { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        var code = TrainingCodeGenerator.Generate(Classes);
        MlPitfallsAnalyzers.AssertEveryRuleIsExercised(code);
        _compilation = BenchmarkCompilations.Create(code);
        foreach (var analyzer in MlPitfallsAnalyzers.All())
        {
            BenchmarkCompilations.AssertReports(code, _compilation, ImmutableArray.Create(analyzer));
        }

        BenchmarkCompilations.AssertReports(code, _compilation, MlPitfallsAnalyzers.All());
    }

    [Benchmark(Baseline = true)]
    public Task<int> EmptyAnalyzer() => RunAsync(ImmutableArray.Create<DiagnosticAnalyzer>(new EmptyAnalyzer()));

    [Benchmark]
    public Task<int> MLP001_GradientsNotCleared() => RunAsync(MlPitfallsAnalyzers.For("MLP001"));

    [Benchmark]
    public Task<int> MLP002_LogitsLossGivenProbabilities() => RunAsync(MlPitfallsAnalyzers.For("MLP002"));

    [Benchmark]
    public Task<int> MLP003_ProbabilityLossGivenWrongInput() => RunAsync(MlPitfallsAnalyzers.For("MLP003"));

    [Benchmark]
    public Task<int> MLP004_KLDivTargetNotInLogSpace() => RunAsync(MlPitfallsAnalyzers.For("MLP004"));

    [Benchmark]
    public Task<int> MLP005_BiasBeforeNormalization() => RunAsync(MlPitfallsAnalyzers.For("MLP005"));

    [Benchmark]
    public Task<int> MLP006_OutputLayerWithoutBias() => RunAsync(MlPitfallsAnalyzers.For("MLP006"));

    [Benchmark]
    public Task<int> MLP007_EvaluatedInTrainingMode() => RunAsync(MlPitfallsAnalyzers.For("MLP007"));

    [Benchmark]
    public Task<int> MLP008_TrainedInEvaluationMode() => RunAsync(MlPitfallsAnalyzers.For("MLP008"));

    [Benchmark]
    public Task<int> MLP009_ViewReordersDimensions() => RunAsync(MlPitfallsAnalyzers.For("MLP009"));

    [Benchmark]
    public Task<int> MLP010_ViewOfPermutedTensor() => RunAsync(MlPitfallsAnalyzers.For("MLP010"));

    [Benchmark]
    public Task<int> LossCallRules_MLP002_to_MLP004_and_MLP006() => RunAsync(MlPitfallsAnalyzers.LossRules());

    [Benchmark]
    public Task<int> AllMlPitfalls() => RunAsync(MlPitfallsAnalyzers.All());

    private async Task<int> RunAsync(ImmutableArray<DiagnosticAnalyzer> analyzers)
        => (await BenchmarkCompilations.AnalyzeAsync(_compilation, analyzers).ConfigureAwait(false)).Length;
}
