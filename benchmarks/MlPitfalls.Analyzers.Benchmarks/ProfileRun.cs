using System;
using System.Collections.Generic;
using System.Collections.Immutable;
using System.Diagnostics;
using System.Linq;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Diagnostics;

namespace MlPitfalls.Analyzers.Benchmarks;

/// <summary>
/// The loss rules' analysis (or the rules given) of one generated case, repeated on fresh compilations (each first compiled, so what the
/// profile shows under the analysis is the rules' own work and the binding they cause, not the compile's).
/// </summary>
internal static class ProfileRun
{
    public static void Run(GeneratedCode code, int rounds, string[]? ruleIds = null) => Run([BenchmarkCompilations.Create(code)], rounds, ruleIds);

    /// <summary>Every compilation once per round (a corpus of real projects profiles as one run).</summary>
    public static void Run(IReadOnlyList<Compilation> compilations, int rounds, string[]? ruleIds = null)
    {
        var ids = ruleIds ?? MlPitfallsAnalyzers.LossRuleIds.ToArray();
        var rules = MlPitfallsAnalyzers.All().Where(a => ids.Contains(MlPitfallsAnalyzers.IdOf(a))).ToImmutableArray();
        for (var round = 0; round < rounds; round++)
        {
            var (analysis, callbacks, diagnostics) = (0.0, 0.0, 0);
            foreach (var compilation in compilations)
            {
                var (a, c, d) = Analyse(compilation, rules);
                (analysis, callbacks, diagnostics) = (analysis + a, callbacks + c, diagnostics + d);
            }

            Console.WriteLine($"round {round}: analysis {analysis:F1} ms, rules' callbacks {callbacks:F1} ms, {diagnostics} diagnostics");
        }
    }

    private static (double Analysis, double Callbacks, int Diagnostics) Analyse(Compilation compilation, ImmutableArray<DiagnosticAnalyzer> rules)
    {
        var fresh = BenchmarkCompilations.Fresh(compilation);
        fresh.GetDiagnostics();
        var withAnalyzers = fresh.WithAnalyzers(
            rules.Insert(0, new EmptyOperationAnalyzer()),
            new CompilationWithAnalyzersOptions(new AnalyzerOptions(ImmutableArray<AdditionalText>.Empty), null, concurrentAnalysis: false, logAnalyzerExecutionTime: true));
        DriverTimes.CollectGarbage();
        var stopwatch = Stopwatch.StartNew();
        var diagnostics = withAnalyzers.GetAnalyzerDiagnosticsAsync().GetAwaiter().GetResult();
        BenchmarkCompilations.ThrowIfAnalyzerFailed(diagnostics);
        var callbacks = rules.Sum(a => withAnalyzers.GetAnalyzerTelemetryInfoAsync(a, default).GetAwaiter().GetResult().ExecutionTime.TotalMilliseconds);
        return (stopwatch.Elapsed.TotalMilliseconds, callbacks, diagnostics.Length);
    }
}
