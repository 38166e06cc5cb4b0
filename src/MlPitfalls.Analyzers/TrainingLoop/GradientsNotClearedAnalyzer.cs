using System;
using System.Collections.Generic;
using System.Collections.Immutable;
using System.Linq;
using System.Threading;
using MlPitfalls.Analyzers.Analyses.Gradients;
using MlPitfalls.Analyzers.FlowAnalysis;
using MlPitfalls.Analyzers.Infrastructure;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using Microsoft.CodeAnalysis.Diagnostics;
using Microsoft.CodeAnalysis.FlowAnalysis;
using Microsoft.CodeAnalysis.Operations;

namespace MlPitfalls.Analyzers.TrainingLoop;

/// <summary>
/// MLP001. For each optimizer a loop steps (directly or through what it calls), asks the gradient analysis what the
/// optimizer's buffers hold at the step on every path that has gone round the loop once: gradients an earlier step already
/// applied (nothing clears them), nothing but zeros after a clear that erased backward()'s gradients (the clear stands
/// between backward() and the step), or only the last pass of an inner loop that clears on each pass. A step is judged
/// in the innermost loop around it, so an epoch loop around a batch loop is not reported twice, and the generator of a
/// WGAN (stepped in the outer loop, the critic in an inner one) is judged too. Whatever may clear without certainty keeps
/// the rule silent: a false warning costs more than a missed one.
/// </summary>
[DiagnosticAnalyzer(LanguageNames.CSharp)]
public sealed class GradientsNotClearedAnalyzer : TorchSharpAnalyzer
{
    /// <summary>Diagnostic property naming the fix: <see cref="InsertFix"/> or <see cref="MoveFix"/>. Absent when no safe fix exists.</summary>
    public const string FixProperty = "Fix";

    /// <summary>Insert <c>&lt;optimizer&gt;.zero_grad();</c> as the first statement of the loop (additional location 0).</summary>
    public const string InsertFix = "InsertZeroGrad";

    /// <summary>Move the misplaced clearing statement before the backward() statement (additional location 1).</summary>
    public const string MoveFix = "MoveBeforeBackward";

    /// <summary>Diagnostic property: the expression, valid at the start of the loop body, that names the optimizer.</summary>
    public const string OptimizerProperty = "Optimizer";

    public override ImmutableArray<DiagnosticDescriptor> SupportedDiagnostics { get; } =
        ImmutableArray.Create(Descriptors.MLP001_GradientsNotCleared);

    private protected override void OnTorchSharpCompilationStart(CompilationStartAnalysisContext context, TorchSymbols torch)
    {
        if (torch.Optimizer is null || AnalysisServices.For(context.Compilation) is not { } services)
        {
            return;
        }

        context.RegisterOperationAction(c => AnalyzeLoop(c, services), OperationKind.Loop);
    }

    private static void AnalyzeLoop(OperationAnalysisContext context, AnalysisServices services)
    {
        var loop = (ILoopOperation)context.Operation;
        var cancellationToken = context.CancellationToken;
        if (loop.Body is null || !GradientReach.MayStep(services, loop, cancellationToken)
            || FunctionGraph(context.GetControlFlowGraph(), loop, cancellationToken) is not { } graph
            || LoopTable.For(graph).RangeOf(loop.Syntax) is not { } range)
        {
            return;
        }

        var whole = GradientAnalysis.For(services, graph, cancellationToken);
        if (!whole.Sites.Any(s => s.Kind == GradientSiteKind.Step && s.Key is not null && ReferenceEquals(InnermostLoop(s.Anchor), loop.Syntax)))
        {
            return;
        }

        if (GradientAnalysis.LaterIterations(services, graph, whole, range.Header, range.Last, ignoredClears: null, cancellationToken) is not { } later)
        {
            return;
        }

        var iteration = new Iteration(loop, graph, range, whole, later, services, cancellationToken);
        foreach (var steps in later.Sites
                     .Where(s => s.Kind == GradientSiteKind.Step && s.Key is not null && ReferenceEquals(InnermostLoop(s.Anchor), loop.Syntax))
                     .GroupBy(s => s.Path ?? s.Key!.Value)
                     .Select(g => g.OrderBy(iteration.Order).ToList()))
        {
            if (iteration.Judge(steps) is { } diagnostic)
            {
                context.ReportDiagnostic(diagnostic);
            }
        }
    }

    /// <summary>The graph of the function the loop stands in: the member's, or a local function's inside it; null inside a lambda.</summary>
    private static ControlFlowGraph? FunctionGraph(ControlFlowGraph root, IOperation loop, CancellationToken cancellationToken)
    {
        var functions = new List<IMethodSymbol>();
        for (var parent = loop.Parent; parent is not null; parent = parent.Parent)
        {
            switch (parent)
            {
                case IAnonymousFunctionOperation:
                    return null; // the state it starts in depends on where it runs
                case ILocalFunctionOperation function:
                    functions.Add(function.Symbol);
                    break;
            }
        }

        var graph = root;
        for (var i = functions.Count - 1; i >= 0; i--)
        {
            graph = graph.GetLocalFunctionControlFlowGraph(functions[i], cancellationToken);
        }

        return graph;
    }

    /// <summary>The innermost loop statement around <paramref name="syntax"/>.</summary>
    private static SyntaxNode? InnermostLoop(SyntaxNode syntax)
    {
        for (var node = syntax.Parent; node is not null; node = node.Parent)
        {
            if (node is ForStatementSyntax or CommonForEachStatementSyntax or WhileStatementSyntax or DoStatementSyntax)
            {
                return node;
            }
        }

        return null;
    }

    /// <summary>One loop's later iterations, judged optimizer by optimizer.</summary>
    private sealed class Iteration
    {
        private readonly ILoopOperation _loop;
        private readonly ControlFlowGraph _graph;
        private readonly (int Header, int Last) _range;
        private readonly GradientResult _whole;
        private readonly GradientResult _later;
        private readonly AnalysisServices _services;
        private readonly CancellationToken _cancellationToken;
        private readonly FixSafety _fixes;

        public Iteration(
            ILoopOperation loop, ControlFlowGraph graph, (int Header, int Last) range, GradientResult whole, GradientResult later, AnalysisServices services,
            CancellationToken cancellationToken)
        {
            _loop = loop;
            _graph = graph;
            _range = range;
            _whole = whole;
            _later = later;
            _services = services;
            _cancellationToken = cancellationToken;
            _fixes = new FixSafety(loop);
        }

        /// <summary>Where a site runs in one pass of the loop: source order, with a <c>for</c> loop's iterator after its body.</summary>
        public int Order(GradientSite site) => Order(site.Anchor);

        private int Order(SyntaxNode anchor)
            => _loop.Syntax is ForStatementSyntax { Statement: var body } forLoop && forLoop.Incrementors.Span.Contains(anchor.Span)
                ? body.Span.End + anchor.SpanStart
                : anchor.SpanStart;

        /// <summary>The sites of <paramref name="kind"/> in the loop (in its body, its header, or the code it calls), in the order one pass runs them.</summary>
        private List<GradientSite> InLoop(GradientResult result, GradientSiteKind kind)
            => result.Sites.Where(s => s.Kind == kind && s.Anchor.SyntaxTree == _loop.Syntax.SyntaxTree && _loop.Syntax.Span.Contains(s.Anchor.Span))
                .OrderBy(Order)
                .ToList();

        public Diagnostic? Judge(List<GradientSite> steps)
        {
            var firstStep = steps[0];
            var key = firstStep.Key!.Value;
            var mustBeStale = firstStep.Before.MustHold(GradientContent.Stale);
            var mustBeZeroAfterLoss = firstStep.Before.MustHoldAfterLoss(GradientContent.Zero);
            if (!mustBeStale && !mustBeZeroAfterLoss && !_whole.Sites.Any(s => s.Kind == GradientSiteKind.Clear && Equals(s.Key, key)))
            {
                return null; // the step sees fresh gradients, or whatever it sees no clear of its optimizer explains
            }

            // Through a helper, the optimizer is named as the loop writes the argument it passes, or as a variable or a member
            // of this: a helper's field reached through another object (other.TrainStep(x)) is that object's, which its
            // name at the loop does not reach.
            // Named only for a finding (the name's checks read the loop body).
            var names = new Lazy<(string? Name, string Display)>(() =>
            {
                var writtenAs = firstStep.IsDirect ? Receiver(firstStep.Anchor) : firstStep.Path is { } passed ? ArgumentNaming(firstStep.Anchor, passed) : null;
                var name = firstStep.Path is { } path && (writtenAs is not null || path.Members.IsEmpty)
                    ? _fixes.OptimizerExpression(path, writtenAs)
                    : null;
                return (name, name ?? firstStep.OptimizerName ?? "the optimizer");
            });

            if (mustBeStale)
            {
                return NothingClears(firstStep, names.Value.Name, names.Value.Display);
            }

            if (mustBeZeroAfterLoss && ClearedAfterBackward(firstStep, key, names) is { } misplaced)
            {
                return misplaced;
            }

            return ClearedOnEveryPassOfAnInnerLoop(steps, key, names) ?? ClearedOnlySometimes(firstStep, key, names);
        }

        private Diagnostic? NothingClears(GradientSite step, string? name, string displayName)
        {
            var backwards = InLoop(_later, GradientSiteKind.Backward);
            var backward = backwards.LastOrDefault(b => Order(b) < Order(step)) ?? backwards.FirstOrDefault();
            if (backward is null)
            {
                return null;
            }

            string advice;
            var properties = ImmutableDictionary<string, string?>.Empty;
            if (IsInClosureOfStep(backward.Anchor))
            {
                // step(closure) may evaluate the closure several times; clearing before step() is not enough.
                advice = $"call '{name ?? "optimizer"}.zero_grad()' at the start of the closure passed to step(), which the optimizer may evaluate several times per step";
            }
            else if (name is null)
            {
                advice = "call the optimizer's zero_grad() at the start of each iteration";
            }
            else
            {
                advice = $"call '{name}.zero_grad()' at the start of each iteration";
                properties = properties.Add(FixProperty, InsertFix).Add(OptimizerProperty, name);
            }

            return Diagnostic.Create(
                Descriptors.MLP001_GradientsNotCleared,
                backward.Anchor.GetLocation(),
                additionalLocations: new[] { _loop.Syntax.GetLocation() },
                properties,
                displayName,
                $"{DescribeLoop(backward, step, displayName)} but nothing in it clears the gradients, so each step applies the sum of every gradient so far; {advice}");
        }

        /// <summary>
        /// The step applies nothing but zeros, on every path, after a clear that erased what backward() computed: the clear
        /// of this optimizer that erased gradients, reported with the first backward() since the optimizer last stepped.
        /// </summary>
        private Diagnostic? ClearedAfterBackward(GradientSite step, AccessPath key, Lazy<(string? Name, string Display)> names)
        {
            var clear = InLoop(_later, GradientSiteKind.Clear)
                .FirstOrDefault(c => Equals(c.Key, key) && c.Definite && c.Before.MustHoldUnapplied && Order(c) < Order(step));
            if (clear is null)
            {
                return null;
            }

            var steps = InLoop(_later, GradientSiteKind.Step).Where(s => Equals(s.Key, key)).ToList();
            var lastStepBefore = steps.Where(s => Order(s) < Order(clear)).Select(Order).DefaultIfEmpty(int.MinValue).Max();
            var backwards = InLoop(_later, GradientSiteKind.Backward).Where(b => Order(b) < Order(clear)).ToList();
            var backward = backwards.FirstOrDefault(b => Order(b) > lastStepBefore) ?? backwards.LastOrDefault();
            if (backward is null)
            {
                return null; // the backward() it erased ran in the previous pass: no statement to name or move before
            }

            var displayName = names.Value.Display;
            var properties = clear.IsDirect && backward.IsDirect && _fixes.NamesTheSameBefore(clear.Anchor, backward.Anchor)
                ? ImmutableDictionary<string, string?>.Empty.Add(FixProperty, MoveFix)
                : ImmutableDictionary<string, string?>.Empty;
            return Diagnostic.Create(
                Descriptors.MLP001_GradientsNotCleared,
                clear.Anchor.GetLocation(),
                additionalLocations: new[] { _loop.Syntax.GetLocation(), backward.Anchor.GetLocation() },
                properties,
                displayName,
                $"'{ClearText(clear)}' runs after backward() and before '{displayName}.step()', so the step applies zeroed gradients; move it before backward()");
        }

        /// <summary>
        /// A clear written in an inner loop that calls backward() on each pass, while the step comes after that loop: on
        /// every pass that has gone round the inner loop the clear erases gradients no step applied, so the step applies only
        /// the last pass's. An inner loop that can be left early (<c>break</c>) is a retry loop, which means to keep one pass.
        /// </summary>
        private Diagnostic? ClearedOnEveryPassOfAnInnerLoop(List<GradientSite> steps, AccessPath key, Lazy<(string? Name, string Display)> names)
        {
            var stepOrder = Order(steps[0]);
            foreach (var clear in InLoop(_whole, GradientSiteKind.Clear))
            {
                if (!Equals(clear.Key, key) || !clear.Definite || !clear.IsDirect
                    || InnermostLoop(clear.Anchor) is not { } innerLoop || ReferenceEquals(innerLoop, _loop.Syntax)
                    || innerLoop.Span.Contains(steps[0].Anchor.Span) || Order(innerLoop) > stepOrder
                    || LoopTable.For(_graph).RangeOf(innerLoop) is not { } innerRange
                    || LoopTable.For(_graph).CanLeaveMidPass(innerRange)
                    || !LoopTable.For(_graph).RunsOnEveryPass(StatementStart(clear.Anchor), innerRange)
                    || GradientAnalysis.LaterIterations(_services, _graph, _whole, innerRange.Header, innerRange.Last, ignoredClears: null, _cancellationToken) is not { } inner)
                {
                    continue;
                }

                var again = inner.Sites.FirstOrDefault(s => s.Kind == GradientSiteKind.Clear && s.Anchor == clear.Anchor && Equals(s.Key, key));
                if (again is { Definite: true } && again.Before.MustHoldUnapplied)
                {
                    var displayName = names.Value.Display;
                    return AtClear(
                        clear,
                        displayName,
                        $"'{ClearText(clear)}' runs inside the inner loop that calls backward(), so each pass erases the gradients of the passes before it and '{displayName}.step()' applies only the last one; clear once, before the inner loop");
                }
            }

            return null;
        }

        /// <summary>
        /// The step runs on every pass, the only clears of its optimizer on some: a condition (<c>if (i % 4 == 0)</c>) or a
        /// <c>continue</c> skips them. Judged by running the loop as if those clears were not there: when every step would
        /// then apply gradients already applied, each pass that skips them does.
        /// </summary>
        private Diagnostic? ClearedOnlySometimes(GradientSite step, AccessPath key, Lazy<(string? Name, string Display)> names)
        {
            var loops = LoopTable.For(_graph);
            if (!loops.RunsOnEveryPass(StatementStart(step.Anchor), _range))
            {
                return null;
            }

            var skipped = InLoop(_later, GradientSiteKind.Clear)
                .Where(c => Equals(c.Key, key) && c.Definite && c.IsDirect && ReferenceEquals(InnermostLoop(c.Anchor), _loop.Syntax)
                            && !loops.RunsOnEveryPass(StatementStart(c.Anchor), _range))
                .ToList();
            if (skipped.Count == 0)
            {
                return null;
            }

            // One clear at a time: clears on both sides of an if/else each run on some passes only, but together on all.
            GradientSite? clear = null;
            foreach (var candidate in skipped)
            {
                var without = GradientAnalysis.LaterIterations(_services, _graph, _whole, _range.Header, _range.Last, ImmutableHashSet.Create(candidate.Anchor), _cancellationToken);
                var stepWithout = without?.Sites.FirstOrDefault(s => s.Kind == GradientSiteKind.Step && s.Anchor == step.Anchor && Equals(s.Key, key));
                if (stepWithout is not null && stepWithout.Before.MustHold(GradientContent.Stale))
                {
                    clear = candidate;
                    break;
                }
            }

            if (clear is null)
            {
                return null;
            }

            var displayName = names.Value.Display;
            return AtClear(
                clear,
                displayName,
                $"'{ClearText(clear)}' runs only on some iterations while '{displayName}.step()' runs on every one, so each step after an iteration that skips the clear applies gradients an earlier step already applied; clear on every iteration, or step only when you clear");
        }

        /// <summary>A finding at a clear that no fix can move (where it should run depends on what the loop means).</summary>
        private Diagnostic AtClear(GradientSite clear, string displayName, string explanation)
            => Diagnostic.Create(
                Descriptors.MLP001_GradientsNotCleared,
                clear.Anchor.GetLocation(),
                additionalLocations: new[] { _loop.Syntax.GetLocation() },
                properties: null,
                displayName,
                explanation);

        /// <summary>
        /// Where the statement of <paramref name="anchor"/> starts running: the receiver of a conditional access
        /// (<c>optimizer?.zero_grad()</c> runs whenever the statement does, unless the optimizer is null), the anchor otherwise.
        /// </summary>
        private static SyntaxNode StatementStart(SyntaxNode anchor)
        {
            var start = anchor;
            for (var node = anchor.Parent; node is ConditionalAccessExpressionSyntax access; node = node.Parent)
            {
                start = access.Expression;
            }

            return start;
        }

        /// <summary>The receiver a direct step is written with (<c>optimizer</c> in <c>optimizer.step()</c> or <c>optimizer?.step()</c>).</summary>
        private static SyntaxNode? Receiver(SyntaxNode anchor)
            => anchor is InvocationExpressionSyntax { Expression: MemberAccessExpressionSyntax access } ? access.Expression
                : anchor is InvocationExpressionSyntax { Expression: MemberBindingExpressionSyntax, Parent: ConditionalAccessExpressionSyntax conditional } ? conditional.Expression
                : null;

        /// <summary>The argument of the call at <paramref name="anchor"/> that names <paramref name="path"/>, when there is one.</summary>
        private SyntaxNode? ArgumentNaming(SyntaxNode anchor, AccessPath path)
        {
            if (anchor is not InvocationExpressionSyntax call || _loop.SemanticModel is not { } model)
            {
                return null;
            }

            foreach (var argument in call.ArgumentList.Arguments)
            {
                if (AccessPath.Of(model.GetOperation(argument.Expression, _cancellationToken)) is { } named && named.Equals(path))
                {
                    return argument.Expression;
                }
            }

            return null;
        }

        private static string ClearText(GradientSite clear) => clear.IsDirect ? clear.Anchor.ToString() : $"{clear.Through}(...)";

        /// <summary>True when the backward() runs in a closure handed to an optimizer's step(closure), directly or through a local.</summary>
        private bool IsInClosureOfStep(SyntaxNode backward)
        {
            var model = _loop.SemanticModel;
            for (var node = backward.Parent; node is not null && node != _loop.Syntax; node = node.Parent)
            {
                if (node is ArgumentSyntax { Parent.Parent: InvocationExpressionSyntax call } && IsStep(call))
                {
                    return true;
                }

                // Func<Tensor> closure = () => { ... backward() ... }; optimizer.step(closure);
                if (node is VariableDeclaratorSyntax declarator
                    && _loop.Syntax.DescendantNodes().OfType<InvocationExpressionSyntax>()
                        .Any(c => c.ArgumentList.Arguments.Any(a => a.Expression is IdentifierNameSyntax { Identifier.ValueText: var held } && held == declarator.Identifier.ValueText) && IsStep(c)))
                {
                    return true;
                }
            }

            return false;

            bool IsStep(InvocationExpressionSyntax call)
                => model?.GetSymbolInfo(call, _cancellationToken).Symbol is IMethodSymbol method && _services.Torch.IsOptimizerStep(method);
        }

        private static string DescribeLoop(GradientSite backward, GradientSite step, string optimizer)
        {
            var backwardText = backward.IsDirect ? "backward()" : $"backward() (through '{backward.Through}')";
            var stepText = step.IsDirect ? $"'{optimizer}.step()'" : $"'{optimizer}.step()' (through '{step.Through}')";
            return $"the loop runs {backwardText} and {stepText} every iteration";
        }
    }
}
