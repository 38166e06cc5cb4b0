using System;
using System.Collections.Generic;
using System.Collections.Immutable;
using System.Diagnostics;
using System.Globalization;
using System.Linq;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Diagnostics;

namespace MlPitfalls.Analyzers.Benchmarks;

/// <summary>
/// The cost metric the project tracks: the time the analyzer driver logs for MlPitfalls' callbacks (what
/// <c>-p:ReportAnalyzer=true</c> prints), with an empty every-operation analyzer attached so the binding any analyzer
/// triggers is not charged to MlPitfalls, against the compile time of the same code (<c>GetDiagnostics()</c> on a fresh
/// compilation). Sequential analysis (<c>concurrentAnalysis: false</c>) so callback times do not overlap. Each round
/// compiles once and analyses once, alternating, on fresh compilations; medians over the rounds. Every analysis run
/// checks the diagnostic counts, as the BenchmarkDotNet setups do.
/// </summary>
internal static class DriverTimes
{
    private const double TargetShareOfCompile = 0.02;

    /// <summary>
    /// How the analysis of one long method grows with its length: the loss rules' driver time next to the time Roslyn's
    /// control-flow graph builder alone takes for the same code (a separate run with <see cref="ControlFlowGraphAnalyzer"/>),
    /// per 1,000 lines, so a blow-up in MlPitfalls' own fixed point shows apart from the graph it is given.
    /// </summary>
    public static void RunLongMethodScaling(int rounds)
    {
        // Warm the JIT on every size first (see Run): the first sizes measured otherwise run partly in tier-0 code.
        foreach (var lines in new[] { 1_000, 2_500, 5_000, 10_000 })
        {
            Measure(LongMethodGenerator.Generate(lines), rounds: 0, warmUps: 2);
            GraphOnly(LongMethodGenerator.Generate(lines), rounds: 2);
        }

        Console.WriteLine($"Long-method scaling (driver times, medians of {rounds} rounds after warm-up). 'Graph alone': the same code analysed by an analyzer that only builds every body's control-flow graph.");
        Console.WriteLine();
        Console.WriteLine("| Lines | Compile | Graph alone | MLP002-004+006 | same, less the graph | per 1,000 lines, less the graph | All MlPitfalls |");
        Console.WriteLine("|---:|---:|---:|---:|---:|---:|---:|");
        foreach (var lines in new[] { 1_000, 2_500, 5_000, 10_000 })
        {
            var code = LongMethodGenerator.Generate(lines);
            var measured = Measure(code, rounds, warmUps: 2);
            var graph = Median(GraphOnly(code, rounds + 2).Skip(2));
            var loss = Median(measured, r => r.LossRules);
            Console.WriteLine(
                $"| {code.Lines:N0} | {Ms(Median(measured, r => r.Compile))} | {Ms(graph)} | {Ms(loss)} | {Ms(loss - graph)} | "
                + $"{Ms((loss - graph) * 1000 / code.Lines)} | {Ms(Median(measured, r => r.All))} |");
        }
    }

    /// <summary>
    /// How the cost grows with the size of a project: 10, 100 and 1,000 generated files (one unit of each generator per
    /// file), TorchSharp code and plain C#, every diagnostic count asserted as always (and on plain C#, that nothing was
    /// registered). Time about linear in the files means per-file cost about constant.
    /// </summary>
    public static void RunFileScaling(int rounds)
    {
        Measure(TrainingCodeGenerator.GenerateFiles(100), rounds: 0, warmUps: 3); // the JIT first (see Run)
        Console.WriteLine($"Project-size scaling (driver times, medians of {rounds} rounds after 1 warm-up each).");
        Console.WriteLine();
        Console.WriteLine("| Code | Files | Lines | Compile | All MlPitfalls | per file | Empty op. analyzer | Analysis wall time |");
        Console.WriteLine("|---|---:|---:|---:|---:|---:|---:|---:|");
        foreach (var (name, generate) in new (string, Func<int, GeneratedCode>)[] { ("TorchSharp", TrainingCodeGenerator.GenerateFiles), ("plain C#", PlainCodeGenerator.GenerateFiles) })
        {
            foreach (var files in new[] { 10, 100, 1_000 })
            {
                var code = generate(files);
                var measured = Measure(code, rounds, warmUps: 1);
                var all = Median(measured, r => r.All);
                Console.WriteLine(
                    $"| {name} | {files:N0} | {code.Lines:N0} | {Ms(Median(measured, r => r.Compile))} | {Share(measured, r => r.All)} | {Ms(all / files)} | "
                    + $"{Ms(Median(measured, r => r.Empty))} | {Ms(Median(measured, r => r.Wall))} |");
            }
        }
    }

    /// <summary>The driver time of <see cref="ControlFlowGraphAnalyzer"/> alone (next to the empty operation analyzer), per round.</summary>
    private static List<double> GraphOnly(GeneratedCode code, int rounds)
    {
        var compilation = BenchmarkCompilations.Create(code);
        var times = new List<double>();
        for (var round = 0; round < rounds; round++)
        {
            var graphs = new ControlFlowGraphAnalyzer();
            var withAnalyzers = BenchmarkCompilations.Fresh(compilation).WithAnalyzers(
                ImmutableArray.Create<DiagnosticAnalyzer>(new EmptyOperationAnalyzer(), graphs),
                new CompilationWithAnalyzersOptions(
                    new AnalyzerOptions(ImmutableArray<AdditionalText>.Empty), onAnalyzerException: null, concurrentAnalysis: false, logAnalyzerExecutionTime: true));
            CollectGarbage();
            BenchmarkCompilations.ThrowIfAnalyzerFailed(withAnalyzers.GetAnalyzerDiagnosticsAsync().GetAwaiter().GetResult());
            times.Add(Time(withAnalyzers, graphs));
        }

        return times;
    }

    public static void Run(int rounds, bool verbose)
    {
        var cases = new List<(string Name, GeneratedCode Code)>
        {
            ("TorchSharp code, 20 classes", TrainingCodeGenerator.Generate(20)),
            ("TorchSharp code, 100 classes", TrainingCodeGenerator.Generate(100)),
            ("plain C#, 20 classes", PlainCodeGenerator.Generate(20)),
            ("plain C#, 100 classes", PlainCodeGenerator.Generate(100)),
        };
        foreach (var lines in new[] { 1_000, 2_500, 5_000 })
        {
            cases.Add(($"one method, {lines:N0} lines", LongMethodGenerator.Generate(lines)));
        }

        // The JIT first: MlPitfalls and Roslyn start in unoptimised tier-0 code and are recompiled in the background,
        // which on two busy cores takes several seconds; without this the first case looks up to 3x slower than in a
        // compiler server or IDE that has been running for a while (the rounds of the first case kept getting faster).
        Measure(TrainingCodeGenerator.Generate(100), rounds: 0, warmUps: 3);
        Measure(LongMethodGenerator.Generate(2_500), rounds: 0, warmUps: 3);
        Measure(TrainingCodeGenerator.Generate(20), rounds: 0, warmUps: 3);

        Console.WriteLine($"Driver times (logAnalyzerExecutionTime, sequential analysis), medians of {rounds} rounds after warm-up. "
            + $"Percentages: median over rounds of (callback time / compile time of the same round). Target for the rules on loss calls (MLP002-MLP004 and MLP006, which share their analysis): <= {TargetShareOfCompile:P0}.");
        Console.WriteLine();
        Console.WriteLine("| Code | Lines | Compile | Empty op. analyzer | MLP001 | MLP002-004+006 | All MlPitfalls | Analysis wall time |");
        Console.WriteLine("|---|---:|---:|---:|---:|---:|---:|---:|");
        var details = new List<string>();
        foreach (var (name, code) in cases)
        {
            var measured = Measure(code, rounds, warmUps: 2);
            if (verbose)
            {
                foreach (var round in measured)
                {
                    Console.Error.WriteLine(
                        $"{name}: compile {Ms(round.Compile)}, analysis {Ms(round.Wall)}, "
                        + string.Join(", ", round.PerAnalyzer.Select(p => $"{p.Key} {Ms(p.Value)}")));
                }
            }

            Console.WriteLine(
                $"| {name} | {code.Lines:N0} | {Ms(Median(measured, r => r.Compile))} | {Ms(Median(measured, r => r.Empty))} | "
                + $"{Share(measured, r => r.Mlp001)} | {Share(measured, r => r.LossRules)} | {Share(measured, r => r.All)} | {Ms(Median(measured, r => r.Wall))} |");
            var lossShares = measured.Select(r => r.LossRules / r.Compile).ToList();
            details.Add(
                $"| {name} | " + string.Join(" | ", measured[0].PerAnalyzer.Keys.Select(id => $"{id} {Ms(Median(measured, r => r.PerAnalyzer[id]))}"))
                + $" | MLP002-004+006 per round: {Percent(lossShares.Min())} to {Percent(lossShares.Max())} |");
        }

        Console.WriteLine();
        Console.WriteLine("Per analyzer (medians; work the loss rules share, such as the provenance of a method, is charged to whichever asks first):");
        Console.WriteLine();
        foreach (var line in details)
        {
            Console.WriteLine(line);
        }
    }

    /// <summary>Each of <paramref name="rounds"/> rounds, after <paramref name="warmUps"/> unrecorded ones, compiles once and analyses once.</summary>
    private static List<Round> Measure(GeneratedCode code, int rounds, int warmUps)
    {
        var compilation = BenchmarkCompilations.Create(code);
        var recorded = new List<Round>();
        for (var round = -warmUps; round < rounds; round++)
        {
            var fresh = BenchmarkCompilations.Fresh(compilation);
            CollectGarbage();
            var stopwatch = Stopwatch.StartNew();
            fresh.GetDiagnostics();
            var compileTime = stopwatch.Elapsed.TotalMilliseconds;

            var emptyAnalyzer = new EmptyOperationAnalyzer();
            var mlPitfalls = MlPitfallsAnalyzers.All();
            var withAnalyzers = BenchmarkCompilations.Fresh(compilation).WithAnalyzers(
                mlPitfalls.Insert(0, emptyAnalyzer),
                new CompilationWithAnalyzersOptions(
                    new AnalyzerOptions(ImmutableArray<AdditionalText>.Empty), onAnalyzerException: null, concurrentAnalysis: false, logAnalyzerExecutionTime: true));
            CollectGarbage();
            stopwatch.Restart();
            var diagnostics = withAnalyzers.GetAnalyzerDiagnosticsAsync().GetAwaiter().GetResult();
            var wallTime = stopwatch.Elapsed.TotalMilliseconds;
            BenchmarkCompilations.ThrowIfAnalyzerFailed(diagnostics);
            BenchmarkCompilations.AssertReports(code, mlPitfalls, diagnostics);
            if (!code.ReferencesTorchSharp)
            {
                BenchmarkCompilations.AssertNothingRegistered(withAnalyzers, mlPitfalls, diagnostics);
            }

            if (round >= 0)
            {
                var times = new SortedDictionary<string, double>(StringComparer.Ordinal);
                foreach (var analyzer in mlPitfalls)
                {
                    times[MlPitfallsAnalyzers.IdOf(analyzer)] = Time(withAnalyzers, analyzer);
                }

                recorded.Add(new Round(compileTime, wallTime, Time(withAnalyzers, emptyAnalyzer), times));
            }
        }

        return recorded;
    }

    /// <summary>A full collection before each timed run, so a collection the previous run made due is not charged to whichever callback allocates next.</summary>
    internal static void CollectGarbage()
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
    }

    private static double Time(CompilationWithAnalyzers withAnalyzers, DiagnosticAnalyzer analyzer)
        => withAnalyzers.GetAnalyzerTelemetryInfoAsync(analyzer, default).GetAwaiter().GetResult().ExecutionTime.TotalMilliseconds;

    private static double Median(List<Round> rounds, Func<Round, double> value) => Median(rounds.Select(value));

    internal static double Median(IEnumerable<double> values)
    {
        var sorted = values.OrderBy(v => v).ToList();
        return sorted.Count % 2 == 1 ? sorted[sorted.Count / 2] : (sorted[(sorted.Count / 2) - 1] + sorted[sorted.Count / 2]) / 2;
    }

    internal static string Ms(double milliseconds) => milliseconds.ToString("N1", CultureInfo.InvariantCulture) + " ms";

    private static string Percent(double share) => share.ToString("P2", CultureInfo.InvariantCulture);

    /// <summary>The median time, and the median of its per-round share of that round's compile time.</summary>
    private static string Share(List<Round> rounds, Func<Round, double> value)
        => $"{Ms(Median(rounds, value))} ({Percent(Median(rounds, r => value(r) / r.Compile))})";

    private sealed record Round(double Compile, double Wall, double Empty, SortedDictionary<string, double> PerAnalyzer)
    {
        public double Mlp001 => PerAnalyzer.TryGetValue("MLP001", out var time) ? time : 0;

        public double LossRules => PerAnalyzer.Where(p => MlPitfallsAnalyzers.LossRuleIds.Contains(p.Key)).Sum(p => p.Value);

        public double All => PerAnalyzer.Values.Sum();
    }
}
