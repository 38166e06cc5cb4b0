using System;
using System.Collections.Generic;
using System.Collections.Immutable;
using System.Linq;
using System.Threading;
using MlPitfalls.Analyzers.Infrastructure;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Diagnostics;
using Microsoft.CodeAnalysis.Operations;

namespace MlPitfalls.Analyzers.TrainingLoop;

/// <summary>
/// MLP001. For every loop that runs backward() and an optimizer step each iteration (directly or through helpers it
/// calls), checks that each stepped optimizer's gradients are cleared once per iteration, and not between
/// backward() and the step. Only the innermost loop holding both is judged, so an epoch loop around a batch loop
/// is not reported twice. Whenever the code leaves room for doubt (a clear on an optimizer that might be the same
/// object, a hook that might clear), the rule stays silent: a false warning costs more than a missed one.
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
        if (torch.Optimizer is null)
        {
            return;
        }

        var bodies = new SourceMethodBodies(context.Compilation);
        var walker = new CallFollowingWalker(bodies);
        context.RegisterOperationAction(c => AnalyzeLoop(c, torch, walker, bodies), OperationKind.Loop);
    }

    private static void AnalyzeLoop(OperationAnalysisContext context, TorchSymbols torch, CallFollowingWalker walker, SourceMethodBodies bodies)
    {
        var loop = (ILoopOperation)context.Operation;
        if (loop.Body is null)
        {
            return;
        }

        var events = CollectEvents(loop, torch, walker, context.CancellationToken);
        var backwards = events.Where(e => e.Kind == GradientEventKind.Backward).ToList();
        var steps = events.Where(e => e.Kind == GradientEventKind.Step).ToList();
        if (backwards.Count == 0 || steps.Count == 0 || HasNestedTrainingLoop(backwards, steps))
        {
            return;
        }

        var iteration = new Iteration(loop, events, new OptimizerOrigins(loop, bodies, torch, context.CancellationToken), torch);
        foreach (var optimizerSteps in steps.GroupBy(s => s.Target, SymbolEqualityComparer.Default))
        {
            var diagnostic = iteration.Judge(optimizerSteps.First());
            if (diagnostic is not null)
            {
                context.ReportDiagnostic(diagnostic);
            }
        }
    }

    private static List<GradientEvent> CollectEvents(
        ILoopOperation loop, TorchSymbols torch, CallFollowingWalker walker, CancellationToken cancellationToken)
    {
        var events = new List<GradientEvent>();
        void Collect(IOperation operation, CallChain? chain)
        {
            // A delegate the walk follows into its lambda is read like any other code: no guess that it might clear.
            var (kind, target) = operation is IInvocationOperation call && walker.FollowsDelegate(call, chain, cancellationToken)
                ? (null, null)
                : Classify(operation, torch);
            if (kind is { } eventKind)
            {
                events.Add(new GradientEvent(
                    eventKind, CallChain.MapToWalkedCode(target, chain), operation, chain, NestedLoopsBetween(operation, chain, loop)));
            }
        }

        walker.Walk(loop.Body, Collect, cancellationToken);
        // for (...; ...; i++, optimizer.zero_grad()): the iterator part runs after the body, every iteration.
        if (loop is IForLoopOperation forLoop)
        {
            foreach (var iterator in forLoop.AtLoopBottom)
            {
                walker.Walk(iterator, Collect, cancellationToken);
            }
        }

        return events;
    }

    private static (GradientEventKind? Kind, ISymbol? Target) Classify(IOperation operation, TorchSymbols torch)
    {
        switch (operation)
        {
            case IInvocationOperation invocation:
                var method = invocation.TargetMethod;
                if (torch.IsBackward(method))
                {
                    return (GradientEventKind.Backward, null);
                }

                if (torch.IsOptimizerStep(method))
                {
                    return (GradientEventKind.Step, invocation.ResolvedReceiver().ReferencedSymbol());
                }

                if (torch.IsOptimizerZeroGrad(method))
                {
                    return (GradientEventKind.ClearOptimizer, invocation.ResolvedReceiver().ReferencedSymbol());
                }

                if (torch.IsModuleZeroGrad(method))
                {
                    return (GradientEventKind.ClearModule, invocation.ResolvedReceiver().ReferencedSymbol());
                }

                if (method.Name == "zero_" && IsGradReference(invocation.ResolvedReceiver(), torch))
                {
                    return ClassifyParameterGradClear(invocation.ResolvedReceiver()!, torch);
                }

                return ClassifyOpaqueCall(invocation, torch);

            // p.grad = null discards what backward() accumulated. Any other value (p.grad = p.grad.clamp(-1, 1),
            // master.grad = p.grad.to(Float32)) keeps or copies gradients: not a clear.
            case ISimpleAssignmentOperation assignment
                when IsGradReference(assignment.Target, torch) && assignment.Value.ConstantValue is { HasValue: true, Value: null }:
                return ClassifyParameterGradClear(assignment.Target, torch);

            default:
                return (null, null);
        }
    }

    /// <summary>
    /// <c>p.grad = null</c> / <c>p.grad.zero_()</c> for each <c>p</c> of <c>foreach (var p in model.parameters())</c>
    /// clears <c>model</c>'s gradients, exactly like <c>model.zero_grad()</c>; otherwise it is not tied to one module.
    /// </summary>
    private static (GradientEventKind? Kind, ISymbol? Target) ClassifyParameterGradClear(IOperation gradReference, TorchSymbols torch)
    {
        var parameter = ((IPropertyReferenceOperation)gradReference.WithoutConversions()!).Instance.ReferencedSymbol();
        for (var parent = gradReference.Parent; parent is not null && parameter is ILocalSymbol; parent = parent.Parent)
        {
            if (parent is IForEachLoopOperation loop && loop.Locals.Contains(parameter, SymbolEqualityComparer.Default))
            {
                return loop.Collection.WithoutConversions() is IInvocationOperation collection && torch.IsModuleParameters(collection.TargetMethod)
                    && collection.ResolvedReceiver().ReferencedSymbol() is { } module
                    ? (GradientEventKind.ClearModule, module)
                    : (GradientEventKind.ClearParameterGrad, null);
            }
        }

        return (GradientEventKind.ClearParameterGrad, null);
    }

    /// <summary>
    /// Calls whose effect we cannot read are assumed to clear rather than risk a false warning: a call into another
    /// library or an abstract member that is handed an optimizer, a module or its parameters, and a void hook a subclass or a delegate may fill in
    /// (<c>protected virtual void OnBatchStart()</c>, <c>onBatchStart?.Invoke()</c>). TorchSharp's own methods are known
    /// not to clear.
    /// </summary>
    private static (GradientEventKind? Kind, ISymbol? Target) ClassifyOpaqueCall(IInvocationOperation invocation, TorchSymbols torch)
    {
        var method = invocation.TargetMethod;
        if (SymbolEqualityComparer.Default.Equals(method.ContainingAssembly, torch.Tensor.ContainingAssembly))
        {
            return (null, null);
        }

        var inSource = method.DeclaringSyntaxReferences.Length > 0;
        if ((!inSource || method.IsAbstract) && !IsKnownNotToClear(method))
        {
            foreach (var argument in invocation.Arguments)
            {
                var value = argument.Value.WithoutConversions();
                if (torch.IsOptimizer(value?.Type))
                {
                    return (GradientEventKind.PossibleClear, value.ReferencedSymbol());
                }

                // Handed a module or its parameters, it may clear them (ZeroGrads(model)), whichever optimizer holds them.
                if (torch.IsModule(value?.Type) || value is IInvocationOperation call && torch.IsModuleParameters(call.TargetMethod))
                {
                    return (GradientEventKind.PossibleClear, null);
                }
            }
        }

        var overridable = (method.IsVirtual || method.IsAbstract || (method.IsOverride && !method.IsSealed)) && !method.ContainingType.IsSealed;
        var userHook = method.ReturnsVoid && ((inSource && overridable) || method.MethodKind == MethodKind.DelegateInvoke);
        return userHook ? (GradientEventKind.PossibleClear, null) : (null, null);
    }

    /// <summary>
    /// Library code that is handed a module or its parameters without being able to clear gradients: LINQ and collections
    /// (<c>model.parameters().ToArray()</c>, seen in real TorchSharp examples), strings and formatting, console, debug and
    /// file output, logging. Delegates and reflection may run anything and are not in the list.
    /// </summary>
    private static bool IsKnownNotToClear(IMethodSymbol method)
    {
        var space = method.ContainingNamespace?.ToDisplayString() ?? "";
        return space is "System.Linq" or "System.Collections.Generic" or "System.Collections" or "System.Collections.Concurrent"
                   or "System.Collections.Immutable" or "System.Collections.ObjectModel" or "System.Text" or "System.IO" or "System.Diagnostics"
                   or "System.Runtime.CompilerServices" or "Microsoft.Extensions.Logging"
               || (space == "System" && method.ContainingType?.Name is "String" or "Console" or "Math" or "MathF" or "Convert" or "Array" or "Tuple" or "ValueTuple" or "Object");
    }

    private static bool IsGradReference(IOperation? operation, TorchSymbols torch)
        => operation.WithoutConversions() is IPropertyReferenceOperation property && torch.IsGradProperty(property.Property);

    /// <summary>The loops strictly inside <paramref name="loop"/> that enclose an event, following the call chain back out.</summary>
    private static IReadOnlyList<ILoopOperation> NestedLoopsBetween(IOperation operation, CallChain? chain, ILoopOperation loop)
    {
        List<ILoopOperation>? nested = null;
        var current = operation;
        while (true)
        {
            for (var parent = current.Parent; parent is not null; parent = parent.Parent)
            {
                if (ReferenceEquals(parent, loop))
                {
                    return nested ?? (IReadOnlyList<ILoopOperation>)Array.Empty<ILoopOperation>();
                }

                if (parent is ILoopOperation inner)
                {
                    (nested ??= new List<ILoopOperation>()).Add(inner);
                }
            }

            if (chain is null)
            {
                return nested ?? (IReadOnlyList<ILoopOperation>)Array.Empty<ILoopOperation>();
            }

            current = chain.Call;
            chain = chain.Caller;
        }
    }

    /// <summary>True when an inner loop runs both backward() and a step: that loop is the training loop, judged on its own.</summary>
    private static bool HasNestedTrainingLoop(List<GradientEvent> backwards, List<GradientEvent> steps)
        => backwards.Any(b => b.NestedLoops.Any(inner => steps.Any(s => s.NestedLoops.Contains(inner))));

    private static bool IsInsideConditional(IOperation operation, IOperation stopAt)
    {
        for (var parent = operation.Parent; parent is not null && !ReferenceEquals(parent, stopAt); parent = parent.Parent)
        {
            if (parent is IConditionalOperation or ISwitchOperation or ICoalesceOperation)
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>
    /// True when a <c>break</c> leaves <paramref name="loop"/>: a retry loop that stops once the gradients are usable
    /// means to keep only that pass, unlike a micro-batch loop that runs every pass.
    /// </summary>
    private static bool CanBreakOut(ILoopOperation loop)
        => loop.Body is { } body
           && body.Descendants().Any(o => o is IBranchOperation { BranchKind: BranchKind.Break } branch
                                          && SymbolEqualityComparer.Default.Equals(branch.Target, loop.ExitLabel));

    /// <summary>One loop iteration's gradient events, judged optimizer by optimizer.</summary>
    private sealed class Iteration
    {
        private readonly ILoopOperation _loop;
        private readonly List<GradientEvent> _events;
        private readonly OptimizerOrigins _origins;
        private readonly TorchSymbols _torch;
        private readonly FixSafety _fixes;

        public Iteration(ILoopOperation loop, List<GradientEvent> events, OptimizerOrigins origins, TorchSymbols torch)
        {
            _fixes = new FixSafety(loop);
            _loop = loop;
            _events = events;
            _origins = origins;
            _torch = torch;
        }

        public Diagnostic? Judge(GradientEvent firstStep)
        {
            var optimizer = firstStep.Target;
            var stepIndexes = Indexes(e => e.Kind == GradientEventKind.Step && SymbolEqualityComparer.Default.Equals(e.Target, optimizer));
            var clearIndexes = Indexes(e => e.IsClear && MayClear(e, optimizer));
            var name = _fixes.OptimizerExpression(firstStep);
            var displayName = name ?? optimizer?.Name ?? "the optimizer";

            if (clearIndexes.Count == 0)
            {
                return NothingClears(firstStep, stepIndexes[0], name, displayName);
            }

            // Misplaced only when every clear that might apply is misplaced, and each one provably clears this
            // optimizer: a clear of something that may or may not be it proves nothing either way.
            var verdicts = clearIndexes.Select(i => (Index: i, Misplaced: Misplacement(i, stepIndexes))).ToList();
            if (verdicts.All(v => v.Misplaced != Misplaced.No) && clearIndexes.All(i => ProvablyClears(_events[i], optimizer)))
            {
                return ClearedTooLate(verdicts[0].Index, verdicts[0].Misplaced, stepIndexes, displayName);
            }

            return null;
        }

        private Diagnostic NothingClears(GradientEvent firstStep, int firstStepIndex, string? name, string displayName)
        {
            var backward = _events.Take(firstStepIndex).LastOrDefault(e => e.Kind == GradientEventKind.Backward)
                           ?? _events.First(e => e.Kind == GradientEventKind.Backward);
            string advice;
            var properties = ImmutableDictionary<string, string?>.Empty;
            if (IsInClosureOfStep(backward))
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
                backward.Anchor.Syntax.GetLocation(),
                additionalLocations: new[] { _loop.Syntax.GetLocation() },
                properties,
                displayName,
                $"{DescribeLoop(backward, firstStep, displayName)} but nothing in it clears the gradients, so each step applies the sum of every gradient so far; {advice}");
        }

        private Diagnostic ClearedTooLate(int clearIndex, Misplaced how, List<int> stepIndexes, string displayName)
        {
            var clear = _events[clearIndex];
            var clearText = clear.IsDirect ? clear.Operation.Syntax.ToString() : $"{clear.CalleeName}(...)";
            if (how == Misplaced.InsideAccumulationLoop)
            {
                return Diagnostic.Create(
                    Descriptors.MLP001_GradientsNotCleared,
                    clear.Anchor.Syntax.GetLocation(),
                    additionalLocations: new[] { _loop.Syntax.GetLocation() },
                    properties: null,
                    displayName,
                    $"'{clearText}' runs inside the inner loop that calls backward(), so each pass erases the gradients of the passes before it and '{displayName}.step()' applies only the last one; clear once, before the inner loop");
            }

            // The first backward() since the optimizer last stepped: moving the clear before a later one would erase
            // the gradients of the earlier ones, which the step is meant to apply as well.
            var lastStepBefore = stepIndexes.Where(s => s < clearIndex).DefaultIfEmpty(-1).Max();
            var backward = _events.Skip(lastStepBefore + 1).Take(clearIndex - lastStepBefore - 1).FirstOrDefault(e => e.Kind == GradientEventKind.Backward)
                           ?? _events.Take(clearIndex).Last(e => e.Kind == GradientEventKind.Backward);
            var properties = clear.IsDirect && backward.IsDirect && _fixes.NamesTheSameBefore(clear, backward)
                ? ImmutableDictionary<string, string?>.Empty.Add(FixProperty, MoveFix)
                : ImmutableDictionary<string, string?>.Empty;
            return Diagnostic.Create(
                Descriptors.MLP001_GradientsNotCleared,
                clear.Anchor.Syntax.GetLocation(),
                additionalLocations: new[] { _loop.Syntax.GetLocation(), backward.Anchor.Syntax.GetLocation() },
                properties,
                displayName,
                $"'{clearText}' runs after backward() and before '{displayName}.step()', so the step applies zeroed gradients; move it before backward()");
        }

        private List<int> Indexes(Func<GradientEvent, bool> predicate)
            => Enumerable.Range(0, _events.Count).Where(i => predicate(_events[i])).ToList();

        /// <summary>Could this clear touch the gradients <paramref name="optimizer"/> steps with? Unknown means yes.</summary>
        private bool MayClear(GradientEvent clear, ISymbol? optimizer)
        {
            switch (clear.Kind)
            {
                case GradientEventKind.ClearOptimizer or GradientEventKind.PossibleClear:
                    return !_origins.AreProvablyDifferent(clear.Target, optimizer);
                case GradientEventKind.ClearModule:
                    var modules = _origins.ModulesHoldingParameters(optimizer);
                    return clear.Target is null || modules.IsDefault || modules.Contains(clear.Target, SymbolEqualityComparer.Default);
                default:
                    return true;
            }
        }

        /// <summary>Does this clear certainly clear the gradients <paramref name="optimizer"/> steps with?</summary>
        private bool ProvablyClears(GradientEvent clear, ISymbol? optimizer)
        {
            if (optimizer is null || clear.Target is null)
            {
                return false;
            }

            return clear.Kind switch
            {
                GradientEventKind.ClearOptimizer => SymbolEqualityComparer.Default.Equals(clear.Target, optimizer),
                GradientEventKind.ClearModule => _origins.ModulesHoldingParameters(optimizer) is { IsDefault: false } modules
                                                 && modules.Contains(clear.Target, SymbolEqualityComparer.Default),
                _ => false,
            };
        }

        private enum Misplaced
        {
            No,
            BetweenBackwardAndStep,
            InsideAccumulationLoop,
        }

        /// <summary>
        /// A clear is misplaced when it runs after a backward() of the iteration and no backward() follows it before the
        /// optimizer's next step (the step applies zeros), or when it runs unconditionally inside an inner loop that
        /// also calls backward() while the step comes after that loop (only the last pass's gradients survive).
        /// A clear after the last step is fine (end-of-body clearing).
        /// </summary>
        private Misplaced Misplacement(int clearIndex, List<int> stepIndexes)
        {
            var nextStep = stepIndexes.FirstOrDefault(s => s > clearIndex);
            if (nextStep == 0)
            {
                return Misplaced.No;
            }

            var clear = _events[clearIndex];
            var accumulationLoop = clear.IsDirect && clear.NestedLoops.Count > 0 ? clear.NestedLoops[0] : null;
            if (accumulationLoop is not null
                && !_events[nextStep].NestedLoops.Contains(accumulationLoop)
                && _events.Any(e => e.Kind == GradientEventKind.Backward && e.NestedLoops.Contains(accumulationLoop))
                && !IsInsideConditional(clear.Operation, accumulationLoop)
                && !CanBreakOut(accumulationLoop))
            {
                return Misplaced.InsideAccumulationLoop;
            }

            var backwardBefore = _events.Take(clearIndex).Any(e => e.Kind == GradientEventKind.Backward);
            var backwardBetween = _events.Skip(clearIndex + 1).Take(nextStep - clearIndex - 1).Any(e => e.Kind == GradientEventKind.Backward);
            return backwardBefore && !backwardBetween ? Misplaced.BetweenBackwardAndStep : Misplaced.No;
        }

        /// <summary>True when the backward() runs in a closure handed to an optimizer's step(closure), directly or through a local.</summary>
        private bool IsInClosureOfStep(GradientEvent backward)
        {
            for (var parent = backward.Anchor.Parent; parent is not null && !ReferenceEquals(parent, _loop); parent = parent.Parent)
            {
                if (parent is IArgumentOperation { Parent: IInvocationOperation call } && _torch.IsOptimizerStep(call.TargetMethod))
                {
                    return true;
                }

                // Func<Tensor> closure = () => { ... backward() ... }; optimizer.step(closure);
                if (parent is IVariableDeclaratorOperation declarator
                    && _events.Any(e => e.Kind == GradientEventKind.Step && e.Operation is IInvocationOperation step
                                        && step.Arguments.Any(a => SymbolEqualityComparer.Default.Equals(a.Value.ReferencedSymbol(), declarator.Symbol))))
                {
                    return true;
                }
            }

            return false;
        }

        private string DescribeLoop(GradientEvent backward, GradientEvent step, string optimizer)
        {
            var backwardText = backward.IsDirect ? "backward()" : $"backward() (through '{backward.CalleeName}')";
            var stepText = step.IsDirect ? $"'{optimizer}.step()'" : $"'{optimizer}.step()' (through '{step.CalleeName}')";
            return $"the loop runs {backwardText} and {stepText} every iteration";
        }
    }
}
