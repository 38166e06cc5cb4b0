using System;
using System.Collections.Generic;
using System.Collections.Immutable;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Text;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.Diagnostics;
using Microsoft.CodeAnalysis.Text;

namespace MlPitfalls.Analyzers.Benchmarks;

/// <summary>
/// The driver-times metric on real projects: each given csc response file (the compiler command line of a project, as
/// a detailed build log or a binary log shows it) is compiled and analysed like the generated cases — compile time of a
/// fresh compilation against the driver's logged callback times with <see cref="EmptyOperationAnalyzer"/> attached,
/// sequential analysis, medians over rounds. References are bound before the analysis (that is compile work, which the
/// first analyzer to look up a symbol would otherwise be charged with). No code is fetched: the projects are whatever the
/// response files point to.
/// </summary>
internal static class RealProjects
{
    /// <summary>The columns after compile time: the rules whose callback times each one adds up (rules sharing evidence together).</summary>
    private static readonly (string Name, Func<string, bool> Counts)[] Columns =
    {
        ("MLP001", id => id == "MLP001"),
        ("MLP002-004+006", id => MlPitfallsAnalyzers.LossRuleIds.Contains(id)),
        ("MLP005", id => id == "MLP005"),
        ("MLP007+008", id => id is "MLP007" or "MLP008"),
        ("MLP009+010", id => id is "MLP009" or "MLP010"),
        ("All MlPitfalls", _ => true),
    };

    /// <param name="withMeziantou">
    /// Also attach Meziantou.Analyzer (every rule at its default severity, as a user who installs it gets) and show its
    /// callback time in a last column, for context: what a well-known analyzer package costs on the same code. Its
    /// analyzers then do first some work MlPitfalls' callbacks would otherwise be charged with (binding bodies, building
    /// graphs the driver caches), so the MlPitfalls columns of such a run are lower than MlPitfalls' own cost.
    /// </param>
    /// <param name="withAddedTime">
    /// Also analyse each round with the empty operation analyzer alone, and show what attaching MlPitfalls adds to the
    /// wall time of the whole analysis: its callbacks, less the binding and graph building the driver would have done
    /// anyway and MlPitfalls did first. Not with <paramref name="withMeziantou"/>.
    /// </param>
    /// <param name="withEmit">
    /// Also time a fresh compilation's <c>Emit</c> (IL and a portable PDB into memory), which binds every body again and
    /// lowers it, as <c>csc</c> does in a build, and show all of MlPitfalls' callbacks against that compile time too, for
    /// context: the metric's compile time is <c>GetDiagnostics()</c>, binding without emitting.
    /// </param>
    public static void Run(IReadOnlyList<string> responseFiles, int rounds, bool withMeziantou = false, bool withAddedTime = false, bool withEmit = false)
    {
        withAddedTime &= !withMeziantou;
        var others = withMeziantou ? OtherAnalyzers.Meziantou() : ImmutableArray<DiagnosticAnalyzer>.Empty;
        Console.WriteLine($"Driver times on real projects, medians of {rounds} rounds after a warm-up pass over all projects and 2 warm-up rounds each.");
        Console.WriteLine();
        Console.WriteLine("| Project | Lines | Compile | " + string.Join(" | ", Columns.Select(c => c.Name)) + (withMeziantou ? $" | Meziantou.Analyzer ({others.Length} analyzers)" : "")
            + (withAddedTime ? " | Added wall time" : "") + " |");
        Console.WriteLine("|---|---:|---:|" + string.Concat(Columns.Select(_ => "---:|")) + (withMeziantou || withAddedTime ? "---:|" : ""));
        var othersTotal = 0.0;
        var addedTotal = 0.0;
        var compileTotal = 0.0;
        var (emitted, emittedCompile, emittedEmit, emittedAll) = (0, 0.0, 0.0, 0.0);
        var columnTotals = new double[Columns.Length];
        var lines = 0;
        var projects = responseFiles.Select(file => (File: file, Project: Load(file))).ToList();

        // The compiler server and the IDE keep analyzers loaded, so what counts is the cost once their code is compiled by
        // the JIT: every project is analysed once before any is measured, or the first project that exercises a rule (in
        // the order given) would pay for compiling it.
        foreach (var (_, (trees, references, options)) in projects)
        {
            BenchmarkCompilations.ThrowIfAnalyzerFailed(CSharpCompilation.Create("warm-up", trees, references, options)
                .WithAnalyzers(MlPitfallsAnalyzers.All().AddRange(others)).GetAnalyzerDiagnosticsAsync().GetAwaiter().GetResult());
        }

        foreach (var (file, (trees, references, options)) in projects)
        {
            var compiles = new List<double>();
            var columnRounds = Columns.Select(_ => new List<double>()).ToArray();
            var otherRounds = new List<double>();
            var addedRounds = new List<double>();
            var emitRounds = new List<double?>();
            for (var round = -2; round < rounds; round++)
            {
                var compilation = CSharpCompilation.Create("project", trees, references, options);
                DriverTimes.CollectGarbage();
                var stopwatch = Stopwatch.StartNew();
                compilation.GetDiagnostics();
                var compile = stopwatch.Elapsed.TotalMilliseconds;
                var emit = withEmit ? EmitTime(trees, references, options) : null;

                var analysed = CSharpCompilation.Create("analysed", trees, references, options);
                _ = analysed.SourceModule.ReferencedAssemblySymbols;
                var mlPitfalls = MlPitfallsAnalyzers.All();
                var withAnalyzers = analysed.WithAnalyzers(
                    mlPitfalls.Insert(0, new EmptyOperationAnalyzer()).AddRange(others),
                    new CompilationWithAnalyzersOptions(new AnalyzerOptions(ImmutableArray<AdditionalText>.Empty), null, concurrentAnalysis: false, logAnalyzerExecutionTime: true));
                DriverTimes.CollectGarbage();
                stopwatch.Restart();
                BenchmarkCompilations.ThrowIfAnalyzerFailed(withAnalyzers.GetAnalyzerDiagnosticsAsync().GetAwaiter().GetResult());
                var wallWith = stopwatch.Elapsed.TotalMilliseconds;
                var wallWithout = withAddedTime ? EmptyAnalyzerWallTime(trees, references, options) : 0;
                if (round < 0)
                {
                    continue;
                }

                addedRounds.Add(wallWith - wallWithout);
                emitRounds.Add(emit);

                var times = mlPitfalls.ToDictionary(MlPitfallsAnalyzers.IdOf, a => withAnalyzers.GetAnalyzerTelemetryInfoAsync(a, default).GetAwaiter().GetResult().ExecutionTime.TotalMilliseconds);
                compiles.Add(compile);
                otherRounds.Add(others.Sum(a => withAnalyzers.GetAnalyzerTelemetryInfoAsync(a, default).GetAwaiter().GetResult().ExecutionTime.TotalMilliseconds));
                for (var column = 0; column < Columns.Length; column++)
                {
                    columnRounds[column].Add(times.Where(t => Columns[column].Counts(t.Key)).Sum(t => t.Value));
                }
            }

            var projectCompile = DriverTimes.Median(compiles);
            var projectColumns = columnRounds.Select(DriverTimes.Median).ToArray();
            var projectLines = trees.Sum(t => t.GetText().Lines.Count);
            lines += projectLines;
            compileTotal += projectCompile;
            for (var column = 0; column < Columns.Length; column++)
            {
                columnTotals[column] += projectColumns[column];
            }

            var projectOthers = DriverTimes.Median(otherRounds);
            othersTotal += projectOthers;
            var projectAdded = DriverTimes.Median(addedRounds);
            addedTotal += projectAdded;
            if (withEmit && emitRounds.All(e => e is not null))
            {
                (emitted, emittedCompile, emittedEmit, emittedAll) =
                    (emitted + 1, emittedCompile + projectCompile, emittedEmit + DriverTimes.Median(emitRounds.Select(e => e!.Value).ToList()), emittedAll + projectColumns[Columns.Length - 1]);
            }

            Console.WriteLine($"| {Path.GetFileNameWithoutExtension(file)} | {projectLines:N0} | {DriverTimes.Ms(projectCompile)} | " + string.Join(" | ", projectColumns.Select(t => Share(t, projectCompile)))
                + (withMeziantou ? " | " + Share(projectOthers, projectCompile) : "") + (withAddedTime ? " | " + Share(projectAdded, projectCompile) : "") + " |");
        }

        Console.WriteLine($"| **all {responseFiles.Count} projects** | {lines:N0} | {DriverTimes.Ms(compileTotal)} | " + string.Join(" | ", columnTotals.Select(t => Share(t, compileTotal)))
            + (withMeziantou ? " | " + Share(othersTotal, compileTotal) : "") + (withAddedTime ? " | " + Share(addedTotal, compileTotal) : "") + " |");
        if (withEmit)
        {
            Console.WriteLine();
            Console.WriteLine($"The {emitted} projects that emit (the others miss references the corpus does not have): all MlPitfalls callbacks "
                + $"{Share(emittedAll, emittedCompile)} of compile time as measured above, {Share(emittedAll, emittedEmit)} of compile time with emit "
                + $"({DriverTimes.Ms(emittedEmit)}, csc's work in a build).");
        }
    }

    /// <summary>The time a fresh compilation takes to bind, lower and emit its assembly and portable PDB into memory; null when it has errors (nothing is emitted).</summary>
    private static double? EmitTime(List<SyntaxTree> trees, List<MetadataReference> references, CSharpCompilationOptions options)
    {
        var compilation = CSharpCompilation.Create("emitted", trees, references, options);
        using var pe = new MemoryStream();
        using var pdb = new MemoryStream();
        DriverTimes.CollectGarbage();
        var stopwatch = Stopwatch.StartNew();
        var result = compilation.Emit(pe, pdb, options: new Microsoft.CodeAnalysis.Emit.EmitOptions(debugInformationFormat: Microsoft.CodeAnalysis.Emit.DebugInformationFormat.PortablePdb));
        var elapsed = stopwatch.Elapsed.TotalMilliseconds;
        return result.Success ? elapsed : null;
    }

    /// <summary>The wall time of a fresh compilation's analysis with only the empty operation analyzer attached (references bound first, as for the measured run).</summary>
    private static double EmptyAnalyzerWallTime(List<SyntaxTree> trees, List<MetadataReference> references, CSharpCompilationOptions options)
    {
        var analysed = CSharpCompilation.Create("baseline", trees, references, options);
        _ = analysed.SourceModule.ReferencedAssemblySymbols;
        var withAnalyzers = analysed.WithAnalyzers(
            ImmutableArray.Create<DiagnosticAnalyzer>(new EmptyOperationAnalyzer()),
            new CompilationWithAnalyzersOptions(new AnalyzerOptions(ImmutableArray<AdditionalText>.Empty), null, concurrentAnalysis: false, logAnalyzerExecutionTime: true));
        DriverTimes.CollectGarbage();
        var stopwatch = Stopwatch.StartNew();
        BenchmarkCompilations.ThrowIfAnalyzerFailed(withAnalyzers.GetAnalyzerDiagnosticsAsync().GetAwaiter().GetResult());
        return stopwatch.Elapsed.TotalMilliseconds;
    }

    /// <summary>The compilation a csc response file describes (for <see cref="ProfileRun"/> on a real project).</summary>
    public static Compilation Compilation(string responseFile)
    {
        var (trees, references, options) = Load(responseFile);
        return CSharpCompilation.Create("project", trees, references, options);
    }

    private static (List<SyntaxTree> Trees, List<MetadataReference> References, CSharpCompilationOptions Options) Load(string responseFile)
    {
        var arguments = CommandLineParser.SplitCommandLineIntoArguments(File.ReadAllText(responseFile).Trim(), removeHashComments: false).ToArray();
        var directory = Path.GetDirectoryName(Path.GetFullPath(responseFile))!;
        var parsed = CSharpCommandLineParser.Default.Parse(arguments, directory, sdkDirectory: null);
        var trees = parsed.SourceFiles.Where(s => File.Exists(s.Path))
            .Select(s => CSharpSyntaxTree.ParseText(SourceText.From(File.ReadAllText(s.Path), Encoding.UTF8), parsed.ParseOptions, s.Path)).ToList(); // an encoding, as csc reads files: emitting a PDB needs it
        var references = parsed.MetadataReferences.Select(r => (MetadataReference)MetadataReference.CreateFromFile(r.Reference)).ToList();
        return (trees, references, parsed.CompilationOptions);
    }

    private static string Share(double time, double compile) => $"{DriverTimes.Ms(time)} ({(time / compile).ToString("P1", CultureInfo.InvariantCulture)})";
}
