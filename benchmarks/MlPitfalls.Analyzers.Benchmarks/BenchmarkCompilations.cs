using System;
using System.Collections.Generic;
using System.Collections.Immutable;
using System.IO;
using System.Linq;
using System.Threading.Tasks;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.Diagnostics;
using MlPitfalls.Analyzers.Infrastructure;

namespace MlPitfalls.Analyzers.Benchmarks;

/// <summary>Compilations of generated code, and full analysis of them with the analyzers asked for.</summary>
internal static class BenchmarkCompilations
{
    // The framework's own assemblies only: this process also loads TorchSharp, Roslyn and BenchmarkDotNet, which a
    // project without TorchSharp must not see (with TorchSharp among the references, MLP001 would analyse plain code).
    private static readonly Lazy<ImmutableArray<MetadataReference>> PlatformReferences = new(() =>
    {
        var frameworkDirectory = Path.GetDirectoryName(typeof(object).Assembly.Location)!;
        return ((string)AppContext.GetData("TRUSTED_PLATFORM_ASSEMBLIES")!).Split(Path.PathSeparator)
            .Where(path => string.Equals(Path.GetDirectoryName(path), frameworkDirectory, StringComparison.Ordinal))
            .Select(path => (MetadataReference)MetadataReference.CreateFromFile(path))
            .ToImmutableArray();
    });

    private static readonly Lazy<MetadataReference> TorchSharpReference =
        new(() => MetadataReference.CreateFromFile(typeof(TorchSharp.torch).Assembly.Location));

    /// <summary>Parses and compiles <paramref name="code"/>; fails when it does not compile (the rules would see broken code).</summary>
    public static Compilation Create(GeneratedCode code)
    {
        var references = code.ReferencesTorchSharp ? PlatformReferences.Value.Add(TorchSharpReference.Value) : PlatformReferences.Value;
        var parseOptions = new CSharpParseOptions(LanguageVersion.Latest);
        var trees = code.Files.Select((file, i) => CSharpSyntaxTree.ParseText(file, parseOptions, path: $"File{i}.cs"));
        var compilation = CSharpCompilation.Create(
            "Generated", trees, references, new CSharpCompilationOptions(OutputKind.DynamicallyLinkedLibrary));
        var errors = compilation.GetDiagnostics().Where(d => d.Severity == DiagnosticSeverity.Error).ToList();
        if (errors.Count > 0)
        {
            throw new InvalidOperationException("The generated code does not compile: " + errors[0]);
        }

        return Fresh(compilation);
    }

    /// <summary>A new compilation of the same syntax trees: nothing bound, as in a build.</summary>
    public static Compilation Fresh(Compilation compilation)
        => compilation.RemoveAllSyntaxTrees().AddSyntaxTrees(compilation.SyntaxTrees);

    /// <summary>Full analysis of a fresh copy of <paramref name="compilation"/>; fails when an analyzer throws.</summary>
    public static async Task<ImmutableArray<Diagnostic>> AnalyzeAsync(Compilation compilation, ImmutableArray<DiagnosticAnalyzer> analyzers)
    {
        var diagnostics = await Fresh(compilation).WithAnalyzers(analyzers).GetAnalyzerDiagnosticsAsync().ConfigureAwait(false);
        ThrowIfAnalyzerFailed(diagnostics);
        return diagnostics;
    }

    public static void ThrowIfAnalyzerFailed(ImmutableArray<Diagnostic> diagnostics)
    {
        if (diagnostics.FirstOrDefault(d => d.Id == "AD0001") is { } failure)
        {
            throw new InvalidOperationException("An analyzer threw: " + failure);
        }
    }

    /// <summary>
    /// Runs <paramref name="analyzers"/> and checks that every rule they support reported exactly what the generator
    /// planted, so a benchmark cannot silently measure rules that found nothing (or the wrong things).
    /// </summary>
    public static void AssertReports(GeneratedCode code, Compilation compilation, ImmutableArray<DiagnosticAnalyzer> analyzers)
        => AssertReports(code, analyzers, AnalyzeAsync(compilation, analyzers).GetAwaiter().GetResult());

    public static void AssertReports(GeneratedCode code, ImmutableArray<DiagnosticAnalyzer> analyzers, ImmutableArray<Diagnostic> diagnostics)
    {
        var problems = new List<string>();
        foreach (var id in analyzers.SelectMany(a => a.SupportedDiagnostics).Select(d => d.Id).Distinct())
        {
            var reported = diagnostics.Where(d => d.Id == id).ToList();
            if (reported.Count != code.ExpectedFor(id))
            {
                problems.Add($"{id}: {reported.Count} reported, {code.ExpectedFor(id)} planted");
            }
        }

        if (problems.Count > 0)
        {
            var sample = diagnostics
                .OrderBy(d => d.Location.SourceSpan.Start)
                .Take(40)
                .Select(d => $"  {d.Id} line {d.Location.GetLineSpan().StartLinePosition.Line + 1}: {d.GetMessage()}");
            throw new InvalidOperationException(
                "The analyzers did not report what the generator planted, so the benchmark would measure the wrong thing: "
                + string.Join("; ", problems) + Environment.NewLine + "First diagnostics:" + Environment.NewLine + string.Join(Environment.NewLine, sample));
        }
    }

    /// <summary>
    /// For code without TorchSharp: runs every MlPitfalls analyzer and checks that none reports anything or registers
    /// any action beyond the compilation-start action that looks for TorchSharp.
    /// </summary>
    public static void AssertNothingRegistered(Compilation compilation)
    {
        var analyzers = MlPitfallsAnalyzers.All();
        var withAnalyzers = Fresh(compilation).WithAnalyzers(
            analyzers, new CompilationWithAnalyzersOptions(new AnalyzerOptions(ImmutableArray<AdditionalText>.Empty), null, concurrentAnalysis: false, logAnalyzerExecutionTime: true));
        var diagnostics = withAnalyzers.GetAnalyzerDiagnosticsAsync().GetAwaiter().GetResult();
        ThrowIfAnalyzerFailed(diagnostics);
        AssertNothingRegistered(withAnalyzers, analyzers, diagnostics);
    }

    public static void AssertNothingRegistered(CompilationWithAnalyzers withAnalyzers, ImmutableArray<DiagnosticAnalyzer> analyzers, ImmutableArray<Diagnostic> diagnostics)
    {
        var ids = analyzers.SelectMany(a => a.SupportedDiagnostics).Select(d => d.Id).ToImmutableHashSet();
        if (diagnostics.FirstOrDefault(d => ids.Contains(d.Id)) is { } reported)
        {
            throw new InvalidOperationException("MlPitfalls reported a diagnostic on code without TorchSharp: " + reported);
        }

        foreach (var analyzer in analyzers)
        {
            var telemetry = withAnalyzers.GetAnalyzerTelemetryInfoAsync(analyzer, default).GetAwaiter().GetResult();
            var registered = telemetry.OperationActionsCount + telemetry.OperationBlockActionsCount + telemetry.OperationBlockStartActionsCount
                + telemetry.OperationBlockEndActionsCount + telemetry.SyntaxNodeActionsCount + telemetry.SyntaxTreeActionsCount
                + telemetry.AdditionalFileActionsCount + telemetry.SymbolActionsCount + telemetry.SymbolStartActionsCount
                + telemetry.SymbolEndActionsCount + telemetry.CodeBlockActionsCount + telemetry.CodeBlockStartActionsCount
                + telemetry.CodeBlockEndActionsCount + telemetry.SemanticModelActionsCount + telemetry.CompilationActionsCount
                + telemetry.CompilationEndActionsCount;
            if (registered != 0)
            {
                throw new InvalidOperationException($"{analyzer.GetType().Name} registered {registered} actions in a compilation without TorchSharp.");
            }
        }
    }
}

/// <summary>MlPitfalls' analyzers, found in the analyzer assembly so a new rule is measured as soon as it exists.</summary>
internal static class MlPitfallsAnalyzers
{
    /// <summary>
    /// The rules judging loss calls, which share one analysis of each loss call's provenance (charged to whichever asks
    /// first): the loss-pairing rules and MLP006, which reads the same evidence for the output layer.
    /// </summary>
    public static readonly ImmutableArray<string> LossRuleIds = ImmutableArray.Create("MLP002", "MLP003", "MLP004", "MLP006");

    private static readonly ImmutableArray<Type> Types = typeof(TorchSharpAnalyzer).Assembly.GetTypes()
        .Where(t => !t.IsAbstract && typeof(DiagnosticAnalyzer).IsAssignableFrom(t) && t.IsDefined(typeof(DiagnosticAnalyzerAttribute), inherit: false))
        .OrderBy(t => t.FullName, StringComparer.Ordinal)
        .ToImmutableArray();

    /// <summary>New instances of every MlPitfalls analyzer.</summary>
    public static ImmutableArray<DiagnosticAnalyzer> All() => Types.Select(t => (DiagnosticAnalyzer)Activator.CreateInstance(t)!).ToImmutableArray();

    /// <summary>New instances of the analyzers reporting <paramref name="ids"/>.</summary>
    public static ImmutableArray<DiagnosticAnalyzer> For(params string[] ids)
    {
        var analyzers = All().Where(a => a.SupportedDiagnostics.Any(d => ids.Contains(d.Id))).ToImmutableArray();
        if (analyzers.Length != ids.Length)
        {
            throw new InvalidOperationException($"Expected one analyzer for each of {string.Join(", ", ids)}, found {analyzers.Length}.");
        }

        return analyzers;
    }

    public static ImmutableArray<DiagnosticAnalyzer> LossRules() => For(LossRuleIds.ToArray());

    public static string IdOf(DiagnosticAnalyzer analyzer) => string.Join("+", analyzer.SupportedDiagnostics.Select(d => d.Id));

    /// <summary>Fails unless every MlPitfalls rule has bugs planted in <paramref name="code"/>: a rule added without them would be measured finding nothing.</summary>
    public static void AssertEveryRuleIsExercised(GeneratedCode code)
    {
        var missing = All().SelectMany(a => a.SupportedDiagnostics).Select(d => d.Id).Where(id => code.ExpectedFor(id) == 0).ToList();
        if (missing.Count > 0)
        {
            throw new InvalidOperationException(
                $"The generated TorchSharp code plants no bug for {string.Join(", ", missing)}: extend TrainingCodeGenerator so the rule is measured doing real work.");
        }
    }
}
