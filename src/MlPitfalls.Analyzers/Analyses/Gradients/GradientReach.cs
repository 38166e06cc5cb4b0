using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Runtime.CompilerServices;
using System.Threading;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using Microsoft.CodeAnalysis.Operations;
using MlPitfalls.Analyzers.Infrastructure;

namespace MlPitfalls.Analyzers.Analyses.Gradients;

/// <summary>What code can do to gradients, as far as the gradient analysis would care.</summary>
[Flags]
internal enum GradientReachKind
{
    /// <summary>Nothing: no summary, no graph.</summary>
    None = 0,

    /// <summary>It may run backward(), clear an optimizer or a module, or touch a parameter's <c>.grad</c>.</summary>
    Touches = 1,

    /// <summary>It may step an optimizer.</summary>
    Steps = 2,

    /// <summary>It may run code no one can read that may clear: a library call handed an optimizer or a module, a void hook or delegate.</summary>
    MayClear = 4,

    /// <summary>Everything: what is too deep to read.</summary>
    Anything = Touches | Steps | MayClear,
}

/// <summary>
/// Whether code may touch gradients, read from its bound operations and those of the source methods it calls (memoised
/// per method): the gate before the gradient analysis builds a graph or a summary. Calls are followed by their bound
/// target, not by name, so a loop over a model's layers calling <c>forward</c> is not taken for a training loop because
/// some other class's method of that name steps an optimizer.
/// </summary>
internal static class GradientReach
{
    private static readonly ConditionalWeakTable<AnalysisServices, ConcurrentDictionary<IMethodSymbol, GradientReachKind>> Methods = new();

    // The answers of the steps-only walk, kept apart: a method's "None" there says nothing of what else it does to gradients.
    private static readonly ConditionalWeakTable<AnalysisServices, ConcurrentDictionary<IMethodSymbol, GradientReachKind>> StepMethods = new();

    /// <summary>
    /// The first gate, before a method's body is bound: by name, nothing it calls can run backward(), a step, a clear, a
    /// <c>.grad</c> access or a void hook. A "no" here is certain as far as calls go by name; a "may" is settled by binding.
    /// </summary>
    private static readonly SyntacticReach ByName = new(IsMarker, unseenCodeReaches: true, sourceCreationsReach: false, onlyVoidOverridablesAreUnseen: true);

    private static bool IsMarker(CallText text)
        => text.SimplyCalled.Contains("backward") // using static torch.autograd
           || text.CalledOnReceiver.Contains("backward") || text.CalledOnReceiver.Contains("step") || text.CalledOnReceiver.Contains("zero_grad")
           || text.CalledOnReceiver.Contains("zero_") || text.ReadsGrad;

    /// <summary>What <paramref name="code"/> (a loop, a body) and the source methods it calls may do to gradients.</summary>
    public static GradientReachKind Of(AnalysisServices services, IOperation code, CancellationToken cancellationToken)
        => Walk(services, code, Question.Everything, Memo(services, Question.Everything), cancellationToken);

    /// <summary>
    /// True when <paramref name="code"/> or a source method it calls may step an optimizer. Code whose text, and that of
    /// every method it calls by name, has no step is answered without binding a callee: most loops of a model's code (over
    /// layers, data, results). A step needs a <c>step</c> call in some source text the calls lead to, which the name gate
    /// follows; what only a library may do (clear) does not step, so only the callees whose text may lead to a step are
    /// bound (a training loop's data, metrics and model helpers are not).
    /// </summary>
    public static bool MayStep(AnalysisServices services, IOperation code, CancellationToken cancellationToken)
        => StepByName.MayReach(services, code.Syntax, cancellationToken)
           && (Walk(services, code, Question.Steps, Memo(services, Question.Steps), cancellationToken) & GradientReachKind.Steps) != 0;

    /// <summary>
    /// The name gate for steps alone: a <c>step</c> call, or an <c>Invoke</c> (a local's lambda, which the walk runs). Virtual
    /// methods are read by their body, as <see cref="OfCall"/> reads them for steps (an unseen override may clear, not step).
    /// </summary>
    private static readonly SyntacticReach StepByName = new(
        static text => text.Called.Contains("step") || text.Called.Contains("Invoke"),
        unseenCodeReaches: false,
        sourceCreationsReach: false,
        overridablesAreReadByBody: true);

    /// <summary>What a walk is asked: everything code may do to gradients, or only whether it may step.</summary>
    private enum Question
    {
        Everything,
        Steps,
    }

    /// <summary>What calling <paramref name="method"/> may do to gradients (memoised; a method on a call cycle counts what the cycle shows).</summary>
    public static GradientReachKind Of(AnalysisServices services, IMethodSymbol method, CancellationToken cancellationToken)
        => OfMethod(services, SourceMethodBodies.DefinitionWithBody(method), Question.Everything, Memo(services, Question.Everything), cancellationToken);

    private static ConcurrentDictionary<IMethodSymbol, GradientReachKind> Memo(AnalysisServices services, Question question)
        => (question == Question.Steps ? StepMethods : Methods)
            .GetValue(services, static _ => new ConcurrentDictionary<IMethodSymbol, GradientReachKind>(SymbolEqualityComparer.Default));

    private static GradientReachKind OfMethod(
        AnalysisServices services, IMethodSymbol definition, Question question, ConcurrentDictionary<IMethodSymbol, GradientReachKind> memo,
        CancellationToken cancellationToken)
    {
        if (memo.TryGetValue(definition, out var known))
        {
            return known;
        }

        if (OnTheWay(definition) is { } onTheWay)
        {
            return onTheWay;
        }

        // A method handed an optimizer or a module may hand it on to a library that clears it, which no name shows: read it
        // (for everything; a library does not step).
        var mayReach = question == Question.Steps
            ? StepByName.MayReach(services, definition, cancellationToken)
            : HandedTrainingState(services.Torch, definition) || ByName.MayReach(services, definition, cancellationToken);
        if (!mayReach)
        {
            memo.TryAdd(definition, GradientReachKind.None);
            return GradientReachKind.None; // not bound: most of a model's code is ruled out by the names it calls
        }

        return Follow(definition, services.GetBody(definition, cancellationToken), services, question, memo, cancellationToken);
    }

    /// <summary>
    /// What a call of a local function or of a lambda held in a local may do: its body, read like a method's (memoised,
    /// with the same cycle and depth limits: local functions calling each other are read once each, not once per path).
    /// </summary>
    private static GradientReachKind OfFunction(
        IMethodSymbol function, IOperation body, AnalysisServices services, Question question, ConcurrentDictionary<IMethodSymbol, GradientReachKind> memo,
        CancellationToken cancellationToken)
    {
        if (memo.TryGetValue(function, out var known))
        {
            return known;
        }

        return OnTheWay(function) ?? Follow(function, body, services, question, memo, cancellationToken);
    }

    /// <summary>
    /// The answer for <paramref name="method"/> when the walk cannot go into it: it is being read further up (a cycle), or
    /// the calls are deeper than any summary goes; null when it can.
    /// </summary>
    private static GradientReachKind? OnTheWay(IMethodSymbol method)
    {
        var frames = t_frames ??= new List<Frame>();
        for (var i = 0; i < frames.Count; i++)
        {
            if (SymbolEqualityComparer.Default.Equals(frames[i].Method, method))
            {
                // A call back into a method being read: what the cycle reaches is found by that method's own walk. The
                // methods read since then are answered without it, so their answers are not kept.
                for (var j = i + 1; j < frames.Count; j++)
                {
                    frames[j].OnCycle = true;
                }

                return GradientReachKind.None;
            }
        }

        // Deeper than any summary goes: the analysis will not read it either, and takes it as a possible clear.
        return frames.Count >= AnalysisServices.MaxSummaryDepth ? GradientReachKind.Anything : null;
    }

    /// <summary>Reads <paramref name="body"/> (null: no body the walk can see, which may clear) for <paramref name="method"/> and keeps the answer unless a cycle cut it.</summary>
    private static GradientReachKind Follow(
        IMethodSymbol method, IOperation? body, AnalysisServices services, Question question, ConcurrentDictionary<IMethodSymbol, GradientReachKind> memo,
        CancellationToken cancellationToken)
    {
        var frames = t_frames ??= new List<Frame>();
        var frame = new Frame(method);
        frames.Add(frame);
        GradientReachKind reach;
        try
        {
            reach = body is null ? GradientReachKind.MayClear : Walk(services, body, question, memo, cancellationToken);
        }
        finally
        {
            frames.RemoveAt(frames.Count - 1);
        }

        if (!frame.OnCycle || reach == GradientReachKind.Anything)
        {
            memo.TryAdd(method, reach);
        }

        return reach;
    }

    [ThreadStatic]
    private static List<Frame>? t_frames;

    private sealed class Frame
    {
        public Frame(IMethodSymbol method) => Method = method;

        public IMethodSymbol Method { get; }

        /// <summary>True when its walk met a call back into a method read below it: its answer may lack what that one reaches.</summary>
        public bool OnCycle { get; set; }
    }

    private static GradientReachKind Walk(
        AnalysisServices services, IOperation code, Question question, ConcurrentDictionary<IMethodSymbol, GradientReachKind> memo,
        CancellationToken cancellationToken)
    {
        var torch = services.Torch;
        var reach = GradientReachKind.None;
        var enough = question == Question.Steps ? GradientReachKind.Steps : GradientReachKind.Anything;
        foreach (var operation in code.DescendantsAndSelf())
        {
            cancellationToken.ThrowIfCancellationRequested();
            switch (operation)
            {
                case IInvocationOperation invocation:
                    reach |= OfCall(services, invocation, question, memo, cancellationToken);
                    break;
                case IPropertyReferenceOperation { Property: var property } when question == Question.Everything && torch.IsGradProperty(property):
                    reach |= GradientReachKind.Touches;
                    break;
            }

            if ((reach & enough) == enough)
            {
                break;
            }
        }

        return reach;
    }

    private static GradientReachKind OfCall(
        AnalysisServices services, IInvocationOperation invocation, Question question, ConcurrentDictionary<IMethodSymbol, GradientReachKind> memo,
        CancellationToken cancellationToken)
    {
        var torch = services.Torch;
        var method = invocation.TargetMethod;
        if (torch.IsOptimizerStep(method))
        {
            return GradientReachKind.Steps;
        }

        if (torch.IsInTorchSharp(method))
        {
            return question == Question.Everything && (torch.IsBackward(method) || method.Name is "zero_grad" or "zero_") ? GradientReachKind.Touches : GradientReachKind.None;
        }

        var definition = SourceMethodBodies.DefinitionWithBody(method);
        var overridable = (method.IsVirtual || method.IsAbstract || (method.IsOverride && !method.IsSealed)) && !method.ContainingType.IsSealed;
        var reach = GradientReachKind.None;
        if (method.MethodKind == MethodKind.LocalFunction)
        {
            // Its body runs here; it is part of the code walked only when declared in it (a loop calling a local function
            // declared before it is not).
            return LocalFunctionBodies(invocation).TryGetValue(method.OriginalDefinition, out var body)
                ? OfFunction(method.OriginalDefinition, body, services, question, memo, cancellationToken)
                : reach;
        }

        // Code the walk cannot read (as the analysis reads it): a void delegate or overridable hook may clear, and a call
        // into a library or an abstract member handed an optimizer, a module or its parameters may.
        var inSource = services.DeclaredHere(definition);
        if (question == Question.Everything
            && ((method.ReturnsVoid && (method.MethodKind == MethodKind.DelegateInvoke || (overridable && inSource)))
                || ((!inSource || definition.IsAbstract) && !IsKnownNotToClear(method) && HandsOverTrainingState(torch, invocation))))
        {
            reach |= GradientReachKind.MayClear;
        }

        if (method.MethodKind != MethodKind.DelegateInvoke && !definition.IsAbstract && inSource)
        {
            reach |= OfMethod(services, definition, question, memo, cancellationToken);
        }
        else if (method.MethodKind == MethodKind.DelegateInvoke && invocation.Instance is ILocalReferenceOperation { Local: var local })
        {
            // step() on a local holding a lambda written before the loop: the analysis runs the lambda there.
            foreach (var lambda in LambdasHeldBy(local, invocation))
            {
                reach |= OfFunction(lambda.Symbol, lambda.Body, services, question, memo, cancellationToken);
            }
        }

        return reach;
    }

    /// <summary>The local functions of the body holding <paramref name="call"/>, with their bodies (found in one pass per body).</summary>
    private static Dictionary<IMethodSymbol, IOperation> LocalFunctionBodies(IOperation call)
    {
        return LocalFunctions.GetValue(call.Root(), static root =>
        {
            var bodies = new Dictionary<IMethodSymbol, IOperation>(SymbolEqualityComparer.Default);
            foreach (var operation in root.Descendants())
            {
                if (operation is ILocalFunctionOperation { Body: { } body } declared)
                {
                    bodies[declared.Symbol] = body;
                }
            }

            return bodies;
        });
    }

    private static readonly ConditionalWeakTable<IOperation, Dictionary<IMethodSymbol, IOperation>> LocalFunctions = new();

    /// <summary>The lambdas the body holding <paramref name="use"/> assigns to <paramref name="local"/>.</summary>
    private static IEnumerable<IAnonymousFunctionOperation> LambdasHeldBy(ILocalSymbol local, IOperation use)
    {
        foreach (var operation in use.Root().Descendants())
        {
            var value = operation switch
            {
                IVariableDeclaratorOperation declarator when SymbolEqualityComparer.Default.Equals(declarator.Symbol, local) => declarator.GetVariableInitializer()?.Value,
                ISimpleAssignmentOperation { Target: ILocalReferenceOperation target } assignment when SymbolEqualityComparer.Default.Equals(target.Local, local) => assignment.Value,
                _ => null,
            };

            if (value.WithoutConversions() is IDelegateCreationOperation { Target: IAnonymousFunctionOperation lambda })
            {
                yield return lambda;
            }
        }
    }

    /// <summary>
    /// Library code that is handed a module or its parameters without being able to clear gradients: LINQ and collections
    /// (<c>model.parameters().ToArray()</c>, seen in real TorchSharp examples), strings and formatting, console, debug and
    /// file output, logging. Delegates and reflection may run anything and are not in the list.
    /// </summary>
    public static bool IsKnownNotToClear(IMethodSymbol method)
    {
        var space = method.ContainingNamespace?.ToDisplayString() ?? "";
        return space is "System.Linq" or "System.Collections.Generic" or "System.Collections" or "System.Collections.Concurrent"
                   or "System.Collections.Immutable" or "System.Collections.ObjectModel" or "System.Text" or "System.IO" or "System.Diagnostics"
                   or "System.Runtime.CompilerServices" or "Microsoft.Extensions.Logging"
               || (space == "System" && method.ContainingType?.Name is "String" or "Console" or "Math" or "MathF" or "Convert" or "Array" or "Tuple" or "ValueTuple" or "Object");
    }

    private static bool HandedTrainingState(TorchSymbols torch, IMethodSymbol method)
    {
        foreach (var parameter in method.Parameters)
        {
            if (torch.IsOptimizer(parameter.Type) || torch.IsModule(parameter.Type))
            {
                return true;
            }
        }

        return false;
    }

    private static bool HandsOverTrainingState(TorchSymbols torch, IInvocationOperation invocation)
    {
        foreach (var argument in invocation.Arguments)
        {
            var value = argument.Value.WithoutConversions();
            if (torch.IsOptimizer(value?.Type) || torch.IsModule(value?.Type)
                || (value is IInvocationOperation call && torch.IsModuleParameters(call.TargetMethod)))
            {
                return true;
            }
        }

        return false;
    }
}
