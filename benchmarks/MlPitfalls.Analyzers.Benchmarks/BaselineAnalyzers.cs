using System;
using System.Collections.Immutable;
using System.Linq;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Diagnostics;

namespace MlPitfalls.Analyzers.Benchmarks;

/// <summary>
/// The BenchmarkDotNet baseline: an analyzer with one empty loop callback. Registering any operation action makes the
/// driver bind every method body into operations, so this is the cost of running an operation analyzer at all.
/// </summary>
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

/// <summary>
/// For the driver-times measurement: an empty callback on every operation kind. Attached next to MlPitfalls' analyzers,
/// it makes the driver build and walk every operation tree whatever the rules ask for, so the time the driver logs for
/// MlPitfalls' callbacks is their own work, not the binding any analyzer would trigger.
/// </summary>
[DiagnosticAnalyzer(LanguageNames.CSharp)]
internal sealed class EmptyOperationAnalyzer : DiagnosticAnalyzer
{
    private static readonly DiagnosticDescriptor Never = new("EMPTYOP", "Empty", "Empty", "Empty", DiagnosticSeverity.Hidden, isEnabledByDefault: true);

    private static readonly ImmutableArray<OperationKind> AllKinds =
        Enum.GetValues(typeof(OperationKind)).Cast<OperationKind>().Where(k => k != OperationKind.None).Distinct().ToImmutableArray();

    public override ImmutableArray<DiagnosticDescriptor> SupportedDiagnostics { get; } = ImmutableArray.Create(Never);

    public override void Initialize(AnalysisContext context)
    {
        context.EnableConcurrentExecution();
        context.ConfigureGeneratedCodeAnalysis(GeneratedCodeAnalysisFlags.None);
        context.RegisterOperationAction(_ => { }, AllKinds);
    }
}

/// <summary>
/// For the long-method scaling measurement: builds the control-flow graph of every method body and nothing else, so
/// the share of the dataflow rules' time that is Roslyn's graph builder (charged to whichever analyzer asks first) can
/// be told apart from MlPitfalls' own analysis of the graph.
/// </summary>
[DiagnosticAnalyzer(LanguageNames.CSharp)]
internal sealed class ControlFlowGraphAnalyzer : DiagnosticAnalyzer
{
    private static readonly DiagnosticDescriptor Never = new("CFGONLY", "Graph", "Graph", "Graph", DiagnosticSeverity.Hidden, isEnabledByDefault: true);

    public override ImmutableArray<DiagnosticDescriptor> SupportedDiagnostics { get; } = ImmutableArray.Create(Never);

    public override void Initialize(AnalysisContext context)
    {
        context.EnableConcurrentExecution();
        context.ConfigureGeneratedCodeAnalysis(GeneratedCodeAnalysisFlags.None);
        context.RegisterOperationAction(c => c.GetControlFlowGraph(), OperationKind.MethodBody, OperationKind.ConstructorBody);
    }
}
