using System.Collections.Concurrent;
using System.Collections.Immutable;
using System.Runtime.CompilerServices;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using Microsoft.CodeAnalysis.Diagnostics;
using Microsoft.CodeAnalysis.FlowAnalysis;
using Microsoft.CodeAnalysis.Operations;
using MlPitfalls.Analyzers.Analyses.Provenance;
using MlPitfalls.Analyzers.FlowAnalysis;
using MlPitfalls.Analyzers.Infrastructure;

namespace MlPitfalls.Analyzers.Losses;

/// <summary>
/// The shared shape of the loss-pairing rules: find each call to a known loss, ask the provenance analysis what its
/// input and target are on every path, and let the rule judge the pair. The graph and its provenance are built only for
/// methods that compute a known loss, once per method however many rules ask.
/// </summary>
public abstract class LossPairingAnalyzer : TorchSharpAnalyzer
{
    /// <summary>Diagnostic property: the code fixes that apply, comma-separated (see the <c>*Fix</c> constants).</summary>
    public const string FixesProperty = "Fixes";

    /// <summary>Replace the activation call with its input (the logits); the diagnostic's location is the call.</summary>
    public const string RemoveActivationFix = "RemoveActivation";

    /// <summary>Remove the activation child from the <c>Sequential(...)</c> argument list; the location is the child.</summary>
    public const string RemoveLayerFix = "RemoveLayer";

    /// <summary>Rename the activation call from softmax to log_softmax; the location is the call.</summary>
    public const string UseLogSoftmaxFix = "UseLogSoftmax";

    /// <summary>Switch the loss (additional location 0) to its counterpart: with-logits or without.</summary>
    public const string SwitchLossFix = "SwitchLoss";

    /// <summary>Apply <c>log_softmax(1)</c> to the loss input (the location).</summary>
    public const string ApplyLogSoftmaxFix = "ApplyLogSoftmax";

    /// <summary>Add <c>log_target: false</c> to the call or creation at additional location 0.</summary>
    public const string LogTargetFalseFix = "LogTargetFalse";

    private protected sealed override void OnTorchSharpCompilationStart(CompilationStartAnalysisContext context, TorchSymbols torch)
    {
        if (AnalysisServices.For(context.Compilation) is not { } services || torch.Functional is null)
        {
            return;
        }

        // One report per origin: a softmax feeding two loss calls (train and validation) is one mistake. Keyed by where the
        // diagnostic is and, for one placed at a loss input, by the origin it names: two origins of one input are two reports.
        var reported = new ConcurrentDictionary<(SyntaxTree, Microsoft.CodeAnalysis.Text.TextSpan, Microsoft.CodeAnalysis.Text.TextSpan), bool>();
        context.RegisterOperationBlockStartAction(block =>
        {
            // Judged per member and reported when the member is done, so that a diagnostic at an activation elsewhere in
            // the member is local to it (the IDE shows it while the file is edited; an operation action's diagnostic is
            // local only inside that operation). Judge places a diagnostic outside the member at the loss input instead.
            // Measured against the alternative: a block action that scans the member's operations itself cost several
            // times more on real code with few loss calls than letting the driver hand over the invocations.
            var pending = new PendingDiagnostics(block.OwningSymbol);
            block.RegisterOperationAction(
                operationContext =>
                {
                    var invocation = (IInvocationOperation)operationContext.Operation;
                    if (EvidenceFor(invocation, services, operationContext) is { } evidence)
                    {
                        pending.Judged(Judge(new LossPairing(evidence, services, pending.IsInMember, operationContext.CancellationToken)));
                    }
                },
                InvocationKind);
            block.RegisterOperationBlockEndAction(pending.ReportOnce(reported));
        });
    }

    /// <summary>What one member's loss calls were judged to raise, reported at the member's end (made lazily: most members have none).</summary>
    private sealed class PendingDiagnostics
    {
        private readonly ISymbol _member;
        private ImmutableArray<SyntaxReference> _syntax;
        private ConcurrentQueue<Diagnostic>? _diagnostics;

        public PendingDiagnostics(ISymbol member) => _member = member;

        public bool IsInMember(SyntaxNode node)
        {
            if (_syntax.IsDefault)
            {
                _syntax = _member.DeclaringSyntaxReferences;
            }

            return IsInside(node, _syntax);
        }

        public void Judged(ImmutableArray<Diagnostic> diagnostics)
        {
            foreach (var diagnostic in diagnostics)
            {
                if (_diagnostics is null)
                {
                    System.Threading.Interlocked.CompareExchange(ref _diagnostics, new ConcurrentQueue<Diagnostic>(), null);
                }

                _diagnostics!.Enqueue(diagnostic);
            }
        }

        public System.Action<OperationBlockAnalysisContext> ReportOnce(
            ConcurrentDictionary<(SyntaxTree, Microsoft.CodeAnalysis.Text.TextSpan, Microsoft.CodeAnalysis.Text.TextSpan), bool> reported)
            => end =>
            {
                if (_diagnostics is null)
                {
                    return;
                }

                foreach (var diagnostic in _diagnostics)
                {
                    var origin = diagnostic.AdditionalLocations.Count > 1 ? diagnostic.AdditionalLocations[1].SourceSpan : default;
                    if (reported.TryAdd((diagnostic.Location.SourceTree!, diagnostic.Location.SourceSpan, origin), true))
                    {
                        end.ReportDiagnostic(diagnostic);
                    }
                }
            };
    }

    /// <summary>
    /// The loss <paramref name="invocation"/> computes and what its input (and, for KL divergence, its target) is, or
    /// null when it is no known loss. Found once per call and shared by the three rules, which the driver gives the same
    /// operation tree: the first rule to reach a loss call pays for its provenance, the others read it.
    /// </summary>
    private static LossEvidence? EvidenceFor(IInvocationOperation invocation, AnalysisServices services, OperationAnalysisContext operationContext)
    {
        if (!LossCall.MayBeLoss(invocation.TargetMethod))
        {
            return null;
        }

        if (SharedEvidence.TryGetValue(invocation, out var shared))
        {
            return shared;
        }

        var token = operationContext.CancellationToken;
        if (LossCall.Recognize(invocation, services, token) is not { } loss)
        {
            return null;
        }

        // The graph and its fixed point only when the values need flow (a variable assigned more than once, a branch); a
        // loss fed by calls, or by locals assigned once from calls, is read from the operation tree itself. The target
        // matters to KL divergence only.
        var needsTarget = loss.Kind == LossKind.KullbackLeibler;
        Provenance input, target = Provenance.Unknown;
        if (!ProvenanceAnalysis.TryWithoutFlow(services, loss.Input, token, out input)
            || (needsTarget && !ProvenanceAnalysis.TryWithoutFlow(services, loss.Target, token, out target)))
        {
            var provenance = ProvenanceAnalysis.For(services, operationContext.GetControlFlowGraph(), token);
            input = provenance.ValueOf(loss.Input.Syntax);
            target = needsTarget ? provenance.ValueOf(loss.Target.Syntax) : Provenance.Unknown;
        }

        return Publish(invocation, new LossEvidence(loss, input, target));
    }

    // A method of its own so that the lambda's closure is allocated only when a loss call is published, not on every call.
    private static LossEvidence Publish(IInvocationOperation invocation, LossEvidence evidence) => SharedEvidence.GetValue(invocation, _ => evidence);

    private static readonly ConditionalWeakTable<IInvocationOperation, LossEvidence> SharedEvidence = new();

    // Registered once per member: one array for all, not a params array copied at every registration.
    private static readonly ImmutableArray<OperationKind> InvocationKind = ImmutableArray.Create(OperationKind.Invocation);

    private static bool IsInside(SyntaxNode node, ImmutableArray<SyntaxReference> member)
    {
        foreach (var reference in member)
        {
            if (reference.SyntaxTree == node.SyntaxTree && reference.Span.Contains(node.Span))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>
    /// Where a diagnostic about <paramref name="origin"/> (an activation or layer) goes: on the origin when it lies in the
    /// member that computes the loss, otherwise on the loss input, with the origin as additional location 1 and named in
    /// the message. Additional location 0 is always <paramref name="loss0"/>.
    /// </summary>
    private protected static (Location Location, Location[] Additional, string Described) Place(LossPairing pairing, SyntaxNode origin, SyntaxNode loss0)
    {
        if (pairing.IsInMember(origin))
        {
            return (origin.GetLocation(), new[] { loss0.GetLocation() }, Describe(origin));
        }

        return (pairing.Loss.Input.Syntax.GetLocation(), new[] { loss0.GetLocation(), origin.GetLocation() }, "this input, made by " + DescribeWhere(origin) + ",");
    }

    /// <summary>An origin named for a message shown elsewhere: its code, its file and its line (<c>'nn.Softmax(1)' (Model.cs line 20)</c>).</summary>
    private protected static string DescribeWhere(SyntaxNode origin)
    {
        var line = origin.GetLocation().GetLineSpan();
        var file = System.IO.Path.GetFileName(line.Path);
        return $"{Describe(origin)} ({(file.Length == 0 ? "" : file + " ")}line {line.StartLinePosition.Line + 1})";
    }

    /// <summary>The diagnostics the rule raises for one loss call.</summary>
    private protected abstract ImmutableArray<Diagnostic> Judge(LossPairing pairing);

    /// <summary>How a message names an origin: the code itself, shortened (<c>'logits.softmax(1)'</c>).</summary>
    private protected static string Describe(SyntaxNode origin)
    {
        var text = origin.ToString();
        var newline = text.IndexOfAny(new[] { '\r', '\n' });
        if (newline >= 0)
        {
            text = text.Substring(0, newline) + " ...";
        }

        return "'" + (text.Length > 60 ? text.Substring(0, 57) + "..." : text) + "'";
    }

    /// <summary>True when <paramref name="origin"/> is an argument of <c>nn.Sequential(...)</c> (bare or in a named tuple).</summary>
    private protected static bool IsSequentialChild(SyntaxNode origin) => Analyses.Composition.ModuleComposition.SequentialCallAround(origin) is not null;

    /// <summary>
    /// True when the activation call <paramref name="origin"/> produces the loss input and nothing else reads its result:
    /// it is the input itself, or the only read of a local it initialises is the loss input.
    /// </summary>
    private protected static bool FeedsOnlyTheLoss(SyntaxNode origin, LossCall loss)
    {
        if (origin is not InvocationExpressionSyntax || origin.SyntaxTree != loss.Invocation.Syntax.SyntaxTree)
        {
            return false;
        }

        var input = loss.Input.Syntax;
        if (Unparenthesized(input) == origin)
        {
            return true;
        }

        if (origin.Parent is EqualsValueClauseSyntax { Parent: VariableDeclaratorSyntax declarator }
            && Unparenthesized(input) is IdentifierNameSyntax { Identifier.ValueText: var name } && name == declarator.Identifier.ValueText
            && declarator.FirstAncestorOrSelf<BlockSyntax>() is { } scope)
        {
            return IsReadOnce(declarator, scope);
        }

        return false;
    }

    /// <summary>
    /// True when the local <paramref name="declarator"/> declares is named once in <paramref name="scope"/> (its only read).
    /// Counted by name, so a same-named identifier elsewhere only makes the answer false, never wrongly true.
    /// </summary>
    private protected static bool IsReadOnce(VariableDeclaratorSyntax declarator, SyntaxNode scope)
    {
        var name = declarator.Identifier.ValueText;
        var reads = 0;
        foreach (var node in scope.DescendantNodes())
        {
            if (node is IdentifierNameSyntax identifier && identifier.Identifier.ValueText == name && ++reads > 1)
            {
                return false;
            }
        }

        return reads == 1;
    }

    private static SyntaxNode Unparenthesized(SyntaxNode node)
    {
        while (node is ParenthesizedExpressionSyntax parenthesized)
        {
            node = parenthesized.Expression;
        }

        return node;
    }

    private protected static ImmutableDictionary<string, string?> Fixes(params string?[] fixes)
    {
        var list = string.Join(",", System.Linq.Enumerable.Where(fixes, f => f is not null));
        return list.Length == 0
            ? ImmutableDictionary<string, string?>.Empty
            : ImmutableDictionary<string, string?>.Empty.Add(FixesProperty, list);
    }
}

/// <summary>A loss call and what its input and target are on every path that reaches it (shared by the three rules).</summary>
internal sealed class LossEvidence
{
    public LossEvidence(LossCall loss, Provenance input, Provenance target)
    {
        Loss = loss;
        Input = input;
        Target = target;
    }

    public LossCall Loss { get; }

    public Provenance Input { get; }

    public Provenance Target { get; }
}

/// <summary>A loss call's evidence, judged from the member that computes the loss (one rule's view).</summary>
internal sealed class LossPairing
{
    private readonly LossEvidence _evidence;
    private readonly System.Func<SyntaxNode, bool> _isInMember;

    public LossPairing(LossEvidence evidence, AnalysisServices services, System.Func<SyntaxNode, bool> isInMember, System.Threading.CancellationToken cancellationToken)
    {
        _evidence = evidence;
        Services = services;
        _isInMember = isInMember;
        CancellationToken = cancellationToken;
    }

    /// <summary>The analysis' cancellation, for a rule that asks more of the shared services.</summary>
    public System.Threading.CancellationToken CancellationToken { get; }

    /// <summary>The compilation's shared analyses, for a rule that asks more about an origin than its kind.</summary>
    public AnalysisServices Services { get; }

    /// <summary>True when <paramref name="node"/> lies in the member being analysed (a diagnostic there is local to it).</summary>
    public bool IsInMember(SyntaxNode node) => _isInMember(node);

    public LossCall Loss => _evidence.Loss;

    public Provenance Input => _evidence.Input;

    public Provenance Target => _evidence.Target;
}
