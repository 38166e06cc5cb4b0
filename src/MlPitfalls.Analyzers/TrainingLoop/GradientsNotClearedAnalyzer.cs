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
/// is not reported twice.
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

        var walker = new CallFollowingWalker(new SourceMethodBodies(context.Compilation));
        context.RegisterOperationAction(c => AnalyzeLoop(c, torch, walker), OperationKind.Loop);
    }

    private static void AnalyzeLoop(OperationAnalysisContext context, TorchSymbols torch, CallFollowingWalker walker)
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

        foreach (var optimizerSteps in steps.GroupBy(s => s.Target, SymbolEqualityComparer.Default))
        {
            var diagnostic = Judge(loop, events, optimizerSteps.First(), torch);
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
        walker.Walk(
            loop.Body,
            (operation, chain) =>
            {
                var (kind, target) = Classify(operation, torch);
                if (kind is { } eventKind)
                {
                    events.Add(new GradientEvent(
                        eventKind,
                        CallChain.MapToWalkedCode(target, chain),
                        operation,
                        anchor: chain?.Outermost ?? operation,
                        NestedLoopsBetween(operation, chain, loop)));
                }
            },
            cancellationToken);
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
                    return (GradientEventKind.ClearParameterGrad, null);
                }

                return ClassifyOpaqueCall(invocation, torch);

            case ISimpleAssignmentOperation assignment when IsGradReference(assignment.Target, torch):
                // p.grad = null (or any replacement of the gradient tensor) discards what backward() accumulated.
                return (GradientEventKind.ClearParameterGrad, null);

            default:
                return (null, null);
        }
    }

    /// <summary>
    /// A call into code we cannot read (another library, an abstract or interface member) that is handed an optimizer
    /// may well clear it; assume it does rather than risk a false warning. TorchSharp's own methods are known not to.
    /// </summary>
    private static (GradientEventKind? Kind, ISymbol? Target) ClassifyOpaqueCall(IInvocationOperation invocation, TorchSymbols torch)
    {
        var method = invocation.TargetMethod;
        var readable = method.DeclaringSyntaxReferences.Length > 0 && !method.IsAbstract;
        if (readable || SymbolEqualityComparer.Default.Equals(method.ContainingAssembly, torch.Tensor.ContainingAssembly))
        {
            return (null, null);
        }

        foreach (var argument in invocation.Arguments)
        {
            var value = argument.Value.WithoutConversions();
            if (torch.IsOptimizer(value?.Type))
            {
                return (GradientEventKind.ClearOptimizer, value.ReferencedSymbol());
            }
        }

        return (null, null);
    }

    private static bool IsGradReference(IOperation? operation, TorchSymbols torch)
        => operation.WithoutConversions() is IPropertyReferenceOperation property && torch.IsGradProperty(property.Property);

    /// <summary>The loops strictly inside <paramref name="loop"/> that enclose an event, following the call chain back out.</summary>
    private static IReadOnlyList<IOperation> NestedLoopsBetween(IOperation operation, CallChain? chain, ILoopOperation loop)
    {
        List<IOperation>? nested = null;
        var current = operation;
        while (true)
        {
            for (var parent = current.Parent; parent is not null; parent = parent.Parent)
            {
                if (ReferenceEquals(parent, loop))
                {
                    return nested ?? (IReadOnlyList<IOperation>)Array.Empty<IOperation>();
                }

                if (parent is ILoopOperation)
                {
                    (nested ??= new List<IOperation>()).Add(parent);
                }
            }

            if (chain is null)
            {
                return nested ?? (IReadOnlyList<IOperation>)Array.Empty<IOperation>();
            }

            current = chain.Call;
            chain = chain.Caller;
        }
    }

    /// <summary>True when an inner loop runs both backward() and a step: that loop is the training loop, judged on its own.</summary>
    private static bool HasNestedTrainingLoop(List<GradientEvent> backwards, List<GradientEvent> steps)
        => backwards.Any(b => b.NestedLoops.Any(inner => steps.Any(s => s.NestedLoops.Contains(inner))));

    private static Diagnostic? Judge(ILoopOperation loop, List<GradientEvent> events, GradientEvent firstStep, TorchSymbols torch)
    {
        var optimizer = firstStep.Target;
        var stepIndexes = Enumerable.Range(0, events.Count)
            .Where(i => events[i].Kind == GradientEventKind.Step && SymbolEqualityComparer.Default.Equals(events[i].Target, optimizer))
            .ToList();
        Lazy<ISymbol?> sourceModule = new(() => FindSourceModule(optimizer, loop, torch));
        var clearIndexes = Enumerable.Range(0, events.Count)
            .Where(i => events[i].IsClear && Clears(events[i], optimizer, sourceModule))
            .ToList();

        var name = OptimizerExpression(loop, firstStep);
        var displayName = name ?? optimizer?.Name ?? "the optimizer";

        if (clearIndexes.Count == 0)
        {
            var firstStepIndex = stepIndexes[0];
            var backward = events.Take(firstStepIndex).LastOrDefault(e => e.Kind == GradientEventKind.Backward)
                           ?? events.First(e => e.Kind == GradientEventKind.Backward);
            var advice = name is null
                ? "call the optimizer's zero_grad() at the start of each iteration"
                : $"call '{name}.zero_grad()' at the start of each iteration";
            var properties = name is null
                ? ImmutableDictionary<string, string?>.Empty
                : ImmutableDictionary<string, string?>.Empty.Add(FixProperty, InsertFix).Add(OptimizerProperty, name);
            return Diagnostic.Create(
                Descriptors.MLP001_GradientsNotCleared,
                backward.Anchor.Syntax.GetLocation(),
                additionalLocations: new[] { loop.Syntax.GetLocation() },
                properties,
                displayName,
                $"{DescribeLoop(backward, firstStep, displayName)} but nothing in it clears the gradients, so each step applies the sum of every gradient so far; {advice}");
        }

        if (clearIndexes.All(i => IsBetweenBackwardAndStep(events, i, stepIndexes)))
        {
            var clear = events[clearIndexes[0]];
            var backward = events.Take(clearIndexes[0]).Last(e => e.Kind == GradientEventKind.Backward);
            var canMove = clear.IsDirect && backward.IsDirect;
            var properties = canMove
                ? ImmutableDictionary<string, string?>.Empty.Add(FixProperty, MoveFix)
                : ImmutableDictionary<string, string?>.Empty;
            var clearText = clear.IsDirect ? clear.Operation.Syntax.ToString() : $"{CalleeName(clear)}(...)";
            return Diagnostic.Create(
                Descriptors.MLP001_GradientsNotCleared,
                clear.Anchor.Syntax.GetLocation(),
                additionalLocations: new[] { loop.Syntax.GetLocation(), backward.Anchor.Syntax.GetLocation() },
                properties,
                displayName,
                $"'{clearText}' runs after backward() and before '{displayName}.step()', so the step applies zeroed gradients; move it before backward()");
        }

        return null;
    }

    private static string DescribeLoop(GradientEvent backward, GradientEvent step, string optimizer)
    {
        var backwardText = backward.IsDirect ? "backward()" : $"backward() (through '{CalleeName(backward)}')";
        var stepText = step.IsDirect ? $"'{optimizer}.step()'" : $"'{optimizer}.step()' (through '{CalleeName(step)}')";
        return $"the loop runs {backwardText} and {stepText} every iteration";
    }

    private static string CalleeName(GradientEvent gradientEvent)
        => gradientEvent.Anchor is IInvocationOperation call ? call.TargetMethod.Name : "a helper";

    /// <summary>Does clearing event <paramref name="clear"/> clear the gradients <paramref name="optimizer"/> steps with?</summary>
    private static bool Clears(GradientEvent clear, ISymbol? optimizer, Lazy<ISymbol?> sourceModule)
    {
        var comparer = SymbolEqualityComparer.Default;
        switch (clear.Kind)
        {
            case GradientEventKind.ClearOptimizer:
                return clear.Target is null || optimizer is null || comparer.Equals(clear.Target, optimizer);
            case GradientEventKind.ClearModule:
                // Unless the optimizer provably holds another module's parameters, module.zero_grad() clears them.
                return clear.Target is null || sourceModule.Value is null || comparer.Equals(clear.Target, sourceModule.Value);
            default:
                return true;
        }
    }

    /// <summary>
    /// True when a clear runs after a backward() of the iteration and no backward() follows it before the optimizer's
    /// next step: the step then applies zeroed gradients. A clear after the last step is fine (end-of-body clearing).
    /// </summary>
    private static bool IsBetweenBackwardAndStep(List<GradientEvent> events, int clearIndex, List<int> stepIndexes)
    {
        var nextStep = stepIndexes.FirstOrDefault(s => s > clearIndex);
        if (nextStep == 0)
        {
            return false;
        }

        var backwardBefore = events.Take(clearIndex).Any(e => e.Kind == GradientEventKind.Backward);
        var backwardBetween = events.Skip(clearIndex + 1).Take(nextStep - clearIndex - 1).Any(e => e.Kind == GradientEventKind.Backward);
        return backwardBefore && !backwardBetween;
    }

    /// <summary>
    /// The module whose parameters() the optimizer was built from, when its creation is visible in the method holding
    /// the loop (<c>var opt = torch.optim.Adam(generator.parameters())</c>); null when unknown.
    /// </summary>
    private static ISymbol? FindSourceModule(ISymbol? optimizer, ILoopOperation loop, TorchSymbols torch)
    {
        if (optimizer is null)
        {
            return null;
        }

        var root = (IOperation)loop;
        while (root.Parent is not null)
        {
            root = root.Parent;
        }

        ISymbol? found = null;
        foreach (var operation in root.Descendants())
        {
            var value = operation switch
            {
                IVariableDeclaratorOperation declarator when SymbolEqualityComparer.Default.Equals(declarator.Symbol, optimizer)
                    => declarator.Initializer?.Value,
                ISimpleAssignmentOperation assignment when SymbolEqualityComparer.Default.Equals(assignment.Target.ReferencedSymbol(), optimizer)
                    => assignment.Value,
                _ => null,
            };
            if (value is null)
            {
                continue;
            }

            var module = ModuleWhoseParametersAreUsed(value, torch);
            if (module is null || (found is not null && !SymbolEqualityComparer.Default.Equals(found, module)))
            {
                return null;
            }

            found = module;
        }

        return found;
    }

    private static ISymbol? ModuleWhoseParametersAreUsed(IOperation creation, TorchSymbols torch)
    {
        var arguments = creation.WithoutConversions() switch
        {
            IInvocationOperation invocation => invocation.Arguments,
            IObjectCreationOperation construction => construction.Arguments,
            _ => ImmutableArray<IArgumentOperation>.Empty,
        };
        foreach (var argument in arguments)
        {
            if (argument.Value.WithoutConversions() is IInvocationOperation call
                && torch.IsModuleParameters(call.TargetMethod))
            {
                return call.ResolvedReceiver().ReferencedSymbol();
            }
        }

        return null;
    }

    /// <summary>
    /// An expression naming the optimizer that can be written as the first statement of the loop body, or null when
    /// there is none (the optimizer is computed, or only visible inside a helper).
    /// </summary>
    private static string? OptimizerExpression(ILoopOperation loop, GradientEvent step)
    {
        if (step.IsDirect)
        {
            var receiver = ((IInvocationOperation)step.Operation).ResolvedReceiver();
            return receiver.IsSimpleReference() ? receiver!.Syntax.ToString() : null;
        }

        var optimizer = step.Target;
        if (optimizer is null || loop.SemanticModel is null || loop.Body is null)
        {
            return null;
        }

        var visible = loop.SemanticModel.LookupSymbols(loop.Body.Syntax.SpanStart, name: optimizer.Name);
        return visible.Any(s => SymbolEqualityComparer.Default.Equals(s, optimizer)) ? optimizer.Name : null;
    }
}
