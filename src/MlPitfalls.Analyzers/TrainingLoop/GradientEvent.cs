using System.Collections.Generic;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Operations;
using MlPitfalls.Analyzers.Infrastructure;

namespace MlPitfalls.Analyzers.TrainingLoop;

internal enum GradientEventKind
{
    /// <summary><c>loss.backward()</c>: adds into every parameter's .grad.</summary>
    Backward,

    /// <summary><c>optimizer.step()</c>: applies the parameters' .grad.</summary>
    Step,

    /// <summary><c>optimizer.zero_grad()</c>.</summary>
    ClearOptimizer,

    /// <summary>
    /// A call we cannot see into that may clear the optimizer it is handed (target) or any (target null): enough to
    /// stay silent, never proof that a clear stands in the wrong place.
    /// </summary>
    PossibleClear,

    /// <summary><c>module.zero_grad()</c>, or <c>p.grad = null</c> for each <c>p</c> of <c>module.parameters()</c>.</summary>
    ClearModule,

    /// <summary><c>p.grad.zero_()</c> or <c>p.grad = null</c>: manual clearing, not tied to one optimizer.</summary>
    ClearParameterGrad,
}

/// <summary>One gradient-related operation of a loop iteration, in the order the iteration runs them.</summary>
internal sealed class GradientEvent
{
    public GradientEvent(
        GradientEventKind kind, ISymbol? target, IOperation operation, CallChain? chain, IReadOnlyList<ILoopOperation> nestedLoops)
    {
        Kind = kind;
        Target = target;
        Operation = operation;
        Chain = chain;
        Anchor = chain?.Outermost.Call ?? operation;
        CalleeName = chain is null ? null : NameOf(chain.Outermost);
        NestedLoops = nestedLoops;
    }

    /// <summary>
    /// The name the loop calls the callee by: the method's, or for a lambda held in a variable (<c>step()</c>, which
    /// runs <c>Invoke</c>) the variable's.
    /// </summary>
    private static string NameOf(CallChain call)
        => call.Callee.MethodKind == MethodKind.DelegateInvoke && call.Call is IInvocationOperation { Instance: { } instance } && instance.ReferencedSymbol() is { } held
            ? held.Name
            : call.Callee.Name;

    public GradientEventKind Kind { get; }

    /// <summary>The optimizer or module acted on, as the loop sees it; null when not a plain variable, field or property.</summary>
    public ISymbol? Target { get; }

    /// <summary>The TorchSharp call (or assignment) itself, possibly inside a helper the loop calls.</summary>
    public IOperation Operation { get; }

    /// <summary>The calls the loop makes to reach <see cref="Operation"/>; null for a direct event.</summary>
    public CallChain? Chain { get; }

    /// <summary>Where the loop itself runs the event: <see cref="Operation"/>, or the call in the loop body that reaches it.</summary>
    public IOperation Anchor { get; }

    /// <summary>The method called in the loop body that reaches the event; null for a direct event.</summary>
    public string? CalleeName { get; }

    /// <summary>Loops inside the analysed loop (in its body or in helpers) that enclose the event.</summary>
    public IReadOnlyList<ILoopOperation> NestedLoops { get; }

    public bool IsClear => Kind is GradientEventKind.ClearOptimizer or GradientEventKind.PossibleClear or GradientEventKind.ClearModule
        or GradientEventKind.ClearParameterGrad;

    /// <summary>True when the event is written directly in the loop, not reached through a call.</summary>
    public bool IsDirect => ReferenceEquals(Operation, Anchor);
}
