using System.Collections.Generic;
using System.Collections.Immutable;
using System.Linq;
using System.Threading;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using Microsoft.CodeAnalysis.Diagnostics;
using Microsoft.CodeAnalysis.FlowAnalysis;
using Microsoft.CodeAnalysis.Operations;
using MlPitfalls.Analyzers.Analyses.Mode;
using MlPitfalls.Analyzers.FlowAnalysis;
using MlPitfalls.Analyzers.Infrastructure;

namespace MlPitfalls.Analyzers.TrainEval;

/// <summary>
/// The shared shape of the train/eval mode rules: find each forward call of a module, classify it as an evaluation or a
/// training use, and, for the kind the rule judges, ask the mode analysis what mode the module is in there on every
/// path (and, for a use in a loop, on every path that has gone round the loop once). The member's graph and modes are
/// built only for members with such a use, once per member however many rules ask.
/// </summary>
public abstract class ModeRuleAnalyzer : TorchSharpAnalyzer
{
    /// <summary>Diagnostic property: the module's text (<c>model</c>, <c>this.net</c>), for the fix's inserted statement.</summary>
    public const string ModuleProperty = "Module";

    /// <summary>Diagnostic property: the line of the loop whose later iterations the finding is about, when it is one.</summary>
    public const string LoopProperty = "Loop";

    /// <summary>
    /// Diagnostic property: the fix that applies; additional location 0 is the statement it works at (the mode's origins
    /// follow). Absent when no fix is safe.
    /// </summary>
    public const string FixProperty = "Fix";

    /// <summary>Insert <c>module.eval();</c> before the statement (MLP007).</summary>
    public const string InsertEvalFix = "InsertEval";

    /// <summary>Like <see cref="InsertEvalFix"/>, and <c>module.train();</c> after the statement, which stands in a loop that goes on training.</summary>
    public const string InsertEvalAndRestoreFix = "InsertEvalAndRestore";

    /// <summary>Insert <c>module.train();</c> before the statement (MLP008, a training loop after an evaluation).</summary>
    public const string InsertTrainBeforeFix = "InsertTrainBefore";

    /// <summary>Insert <c>module.train();</c> as the first statement of the loop's body (MLP008, an epoch loop).</summary>
    public const string InsertTrainAtLoopStartFix = "InsertTrainAtLoopStart";

    /// <summary>The properties and additional locations of a diagnostic whose fix inserts at <paramref name="statement"/>, or none when <paramref name="fix"/> is null.</summary>
    private protected static (ImmutableDictionary<string, string?> Properties, ImmutableArray<Location> Locations) WithFix(
        ModeFinding finding, ImmutableDictionary<string, string?> properties, string? fix, SyntaxNode? statement)
        => fix is not null && statement is StatementSyntax
            ? (properties.Add(FixProperty, fix), finding.OriginLocations().Insert(0, statement.GetLocation()))
            : (properties, finding.OriginLocations());

    /// <summary>
    /// True when control always leaves <paramref name="statement"/> at its end (no <c>return</c>, <c>yield</c>,
    /// <c>goto</c>, or <c>break</c>/<c>continue</c> to a loop around it), so a call inserted after it runs whenever the
    /// statement finished; and the statement is a block <c>using</c> or a loop, whose end is the end of what it scopes
    /// (a <c>using var</c> declaration or a guard call scopes the rest of its block).
    /// </summary>
    private protected static bool CanRestoreAfter(SyntaxNode statement)
    {
        if (statement is not (UsingStatementSyntax { Statement: not null } or ForStatementSyntax or CommonForEachStatementSyntax or WhileStatementSyntax or DoStatementSyntax))
        {
            return false;
        }

        foreach (var node in statement.DescendantNodes(n => n is not (AnonymousFunctionExpressionSyntax or LocalFunctionStatementSyntax)))
        {
            switch (node)
            {
                case ReturnStatementSyntax or YieldStatementSyntax or GotoStatementSyntax:
                    return false;
                case BreakStatementSyntax or ContinueStatementSyntax:
                    var target = node.Ancestors().FirstOrDefault(a => a is ForStatementSyntax or CommonForEachStatementSyntax or WhileStatementSyntax or DoStatementSyntax
                                                                  || (node is BreakStatementSyntax && a is SwitchStatementSyntax));
                    if (target is null || !statement.Span.Contains(target.Span))
                    {
                        return false;
                    }

                    break;
            }
        }

        return true;
    }

    /// <summary>True when <paramref name="statement"/> stands in a loop of its member (the loop goes on after it).</summary>
    private protected static bool IsInLoop(SyntaxNode statement)
    {
        for (var node = statement.Parent; node is not null and not MemberDeclarationSyntax and not LocalFunctionStatementSyntax and not AnonymousFunctionExpressionSyntax; node = node.Parent)
        {
            if (node is ForStatementSyntax or CommonForEachStatementSyntax or WhileStatementSyntax or DoStatementSyntax)
            {
                return true;
            }
        }

        return false;
    }

    private protected abstract ModeUseKind JudgedUse { get; }

    private protected abstract DiagnosticDescriptor Rule { get; }

    /// <summary>The rule's finding for a use in <paramref name="mode"/> (on every path, or in a loop's later iterations), or null.</summary>
    private protected abstract Diagnostic? Judge(ModeFinding finding);

    private protected sealed override void OnTorchSharpCompilationStart(CompilationStartAnalysisContext context, TorchSymbols torch)
    {
        if (AnalysisServices.For(context.Compilation) is not { } services)
        {
            return;
        }

        context.RegisterOperationAction(
            operationContext =>
            {
                var call = (IInvocationOperation)operationContext.Operation;
                if (ModeUses.ModuleOf(torch, call) is not { } module
                    || !MayKnowMode(services, module, call, operationContext.CancellationToken)
                    || ModeUses.Classify(services, call, operationContext.CancellationToken) is not { } use
                    || use.Kind != JudgedUse
                    || operationContext.GetControlFlowGraph() is not { } graph)
                {
                    return;
                }

                var cancellationToken = operationContext.CancellationToken;
                var owner = operationContext.ContainingSymbol;
                var whole = ModeAnalysis.For(services, owner, graph, cancellationToken);
                var mode = whole.ValueOf(module.Syntax);
                ModeFinding? finding = mode.Kinds is ModeKind.Train or ModeKind.Eval ? new ModeFinding(call, module, mode, use.Scope, loop: null, services, cancellationToken) : null;
                if (finding is null || Judge(finding) is null)
                {
                    finding = JudgedUse == ModeUseKind.Training ? InLaterIterations(services, owner, graph, whole, call, module, use.Scope, cancellationToken) : null;
                }

                if (finding is not null && Judge(finding) is { } diagnostic
                    && ModeDependence.MayDependOnMode(services, module, cancellationToken))
                {
                    operationContext.ReportDiagnostic(diagnostic);
                }
            },
            OperationKind.Invocation);
    }

    /// <summary>
    /// False when the member cannot know the module's mode, so the graph and the fixed point are not worth building: a
    /// field or parameter starts unknown in each member, and only a <c>train</c>/<c>eval</c> call in the member can make
    /// it known (a local may also be created in it, or set by a helper it is passed to), or, for a field, the class-wide
    /// fact that nothing switches it (<see cref="FieldModes"/>).
    /// </summary>
    private static bool MayKnowMode(AnalysisServices services, IOperation module, IOperation call, CancellationToken cancellationToken)
    {
        if (module is ILocalReferenceOperation { Local: var local } && CreatedAtDeclaration(local))
        {
            return true;
        }

        if (module is IFieldReferenceOperation { Field: var field, Instance: null or IInstanceReferenceOperation }
            && FieldModes.ModeOf(services, field, cancellationToken).Is(ModeKind.Train))
        {
            return true;
        }

        var member = call.Syntax;
        for (var parent = member.Parent; parent is not null; parent = parent.Parent)
        {
            member = parent;
            if (parent is BaseMethodDeclarationSyntax or AccessorDeclarationSyntax or CompilationUnitSyntax)
            {
                break;
            }
        }

        // Found from where the names occur in the text: most members with a forward call are a model's own forward, whose
        // text is otherwise never read.
        return services.TokensNaming(member, "train", cancellationToken).Count > 0 || services.TokensNaming(member, "eval", cancellationToken).Count > 0;
    }

    /// <summary>True for a local declared with a module creation: <c>new Net()</c>, <c>nn.Sequential(...)</c>, <c>Linear(...)</c>.</summary>
    private static bool CreatedAtDeclaration(ILocalSymbol local)
    {
        foreach (var reference in local.DeclaringSyntaxReferences)
        {
            if (reference.GetSyntax() is VariableDeclaratorSyntax { Initializer.Value: var value }
                && value is ObjectCreationExpressionSyntax or ImplicitObjectCreationExpressionSyntax or InvocationExpressionSyntax)
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>The mode the module is in, in the later iterations of each loop around the call (outermost first), when one of them is certain.</summary>
    private static ModeFinding? InLaterIterations(
        AnalysisServices services, ISymbol owner, ControlFlowGraph graph, ValueFlowResult<ModuleMode> whole, IInvocationOperation call, IOperation module, SyntaxNode? scope,
        CancellationToken cancellationToken)
    {
        var loops = LoopTable.For(graph);
        if (whole.Flow is not { } flow || loops.BlockOf(call.Syntax) is not { } block)
        {
            return null;
        }

        foreach (var (header, last) in loops.Loops)
        {
            if (header > block || last < block || !flow.BackEdgeInputs[header].IsReached)
            {
                continue;
            }

            var later = ModeAnalysis.LaterIterations(services, owner, graph, whole, header, last, cancellationToken);
            var mode = later?.ValueOf(module.Syntax) ?? ModuleMode.Unknown;
            if (mode.Kinds is ModeKind.Eval)
            {
                return new ModeFinding(call, module, mode, scope, LoopAround(call, graph.Blocks[header]), services, cancellationToken);
            }
        }

        return null;
    }

    /// <summary>The loop statement whose first block is <paramref name="header"/>: the innermost loop around the call that starts at or before it.</summary>
    private static SyntaxNode? LoopAround(IOperation call, BasicBlock header)
    {
        var start = header.Operations.FirstOrDefault()?.Syntax.SpanStart ?? header.BranchValue?.Syntax.SpanStart;
        SyntaxNode? found = null;
        for (var node = call.Syntax.Parent; node is not null; node = node.Parent)
        {
            if (node is ForStatementSyntax or ForEachStatementSyntax or ForEachVariableStatementSyntax or WhileStatementSyntax or DoStatementSyntax)
            {
                found ??= node;
                if (start is { } s && node.Span.Contains(s))
                {
                    return node;
                }
            }
        }

        return found;
    }
}

/// <summary>One forward call judged by a mode rule: the module, its mode there, and the loop when the mode is that of later iterations.</summary>
internal sealed class ModeFinding
{
    public ModeFinding(
        IInvocationOperation call, IOperation module, ModuleMode mode, SyntaxNode? scope, SyntaxNode? loop, AnalysisServices services, CancellationToken cancellationToken)
    {
        Services = services;
        CancellationToken = cancellationToken;
        Call = call;
        Module = module;
        Mode = mode;
        Scope = scope;
        Loop = loop;
    }

    public AnalysisServices Services { get; }

    public CancellationToken CancellationToken { get; }

    /// <summary>The statement that makes the call an evaluation or a training use (see <see cref="ModeUse.Scope"/>).</summary>
    public SyntaxNode? Scope { get; }

    /// <summary>True when a place the mode was set lies between <paramref name="statement"/>'s start and the call: switching the mode before the statement would not reach the call.</summary>
    public bool IsSetWithin(SyntaxNode statement)
        => Mode.Origins.Any(o => o.SyntaxTree == statement.SyntaxTree && o.SpanStart >= statement.SpanStart && o.SpanStart < Call.Syntax.SpanStart);

    public IInvocationOperation Call { get; }

    public IOperation Module { get; }

    public ModuleMode Mode { get; }

    /// <summary>The loop whose iterations after the first are in <see cref="Mode"/>; null when the mode holds on every path.</summary>
    public SyntaxNode? Loop { get; }

    /// <summary>
    /// True when the mode comes from outside the member: a module field that its class creates and never switches out of
    /// training mode (<see cref="FieldModes"/>), so any caller of the member reaches the use in that mode.
    /// </summary>
    public bool IsClassWide
        => Module is IFieldReferenceOperation && !Mode.Origins.IsEmpty
           && Call.Syntax.FirstAncestorOrSelf<MemberDeclarationSyntax>() is { } member and not GlobalStatementSyntax
           && Mode.Origins.All(o => o.SyntaxTree != member.SyntaxTree || !member.Span.Contains(o.Span));

    /// <summary>Where the mode was set, described for a message: <c>'model.eval()' at line 42</c>.</summary>
    public string DescribeOrigin()
    {
        var origins = Mode.Origins;
        if (origins.IsEmpty)
        {
            return "its mode is set elsewhere";
        }

        if (IsClassWide)
        {
            var first = origins.OrderBy(o => o.SpanStart).First();
            var owner = ((IFieldReferenceOperation)Module).Field.ContainingType.Name;
            var where = first.SyntaxTree == Call.Syntax.SyntaxTree ? "" : $" of {System.IO.Path.GetFileName(first.SyntaxTree.FilePath)}";
            return $"the class creates it in training mode and nothing in '{owner}' switches it: created by '{OneLine(first)}' at line {LineOf(first)}{where}";
        }

        var origin = origins.OrderBy(o => o.SpanStart).Last();
        var line = LineOf(origin);
        var text = OneLine(origin);

        if (origin is InvocationExpressionSyntax invocation && IsModeCall(invocation))
        {
            return $"set by '{text}' at line {line}";
        }

        // Otherwise the origin is a creation (new Net(), a TorchSharp factory such as nn.Linear) or a source helper whose
        // summary sets the mode.
        var isCreation = origin is ObjectCreationExpressionSyntax or ImplicitObjectCreationExpressionSyntax
            || (origin.SyntaxTree == Call.Syntax.SyntaxTree && Call.SemanticModel?.GetSymbolInfo(origin).Symbol is IMethodSymbol { DeclaringSyntaxReferences.IsEmpty: true });
        return isCreation
            ? $"a new module starts in training mode: created by '{text}' at line {line}"
            : $"set by calling '{text}' at line {line}";
    }

    private static int LineOf(SyntaxNode node) => node.GetLocation().GetLineSpan().StartLinePosition.Line + 1;

    private static string OneLine(SyntaxNode node) => MessageText.OneLine(node);

    public ImmutableArray<Location> OriginLocations() => Mode.Origins.Select(o => o.GetLocation()).ToImmutableArray();

    private static bool IsModeCall(InvocationExpressionSyntax invocation)
        => invocation.Expression is MemberAccessExpressionSyntax { Name.Identifier.ValueText: "train" or "eval" }
           || invocation.Expression is IdentifierNameSyntax { Identifier.ValueText: "train" or "eval" };

}
