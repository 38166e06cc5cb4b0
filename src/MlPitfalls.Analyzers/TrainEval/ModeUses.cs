using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Linq;
using System.Runtime.CompilerServices;
using System.Threading;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using Microsoft.CodeAnalysis.Operations;
using MlPitfalls.Analyzers.Infrastructure;

namespace MlPitfalls.Analyzers.TrainEval;

/// <summary>What running a module's forward pass is for, as far as the code around it shows.</summary>
internal enum ModeUseKind
{
    /// <summary>Neither shown: the rules stay quiet.</summary>
    None,

    /// <summary>
    /// Evaluation: inside a grad-disabled scope, or in a loop (or a method) that runs no backward pass and no optimizer
    /// step, directly or through a helper, and hands the output to no backward pass later.
    /// </summary>
    Evaluation,

    /// <summary>Training: its output reaches <c>backward()</c> in the same loop.</summary>
    Training,
}

/// <summary>A forward call's purpose, and the statement that shows it (where a fix switches the mode).</summary>
internal sealed class ModeUse
{
    public ModeUse(ModeUseKind kind, SyntaxNode? scope)
    {
        Kind = kind;
        Scope = scope;
    }

    public static ModeUse None { get; } = new(ModeUseKind.None, null);

    public ModeUseKind Kind { get; }

    /// <summary>
    /// For an evaluation, the statement that makes it one (the grad-disabled <c>using</c> or guard statement, or the
    /// measuring loop); for training, the innermost loop around the call.
    /// </summary>
    public SyntaxNode? Scope { get; }
}

/// <summary>
/// Classifies a module's <c>call</c>/<c>forward</c> as an evaluation or a training use, from the operation tree of the
/// member it stands in. Conservative both ways: a use whose purpose the member does not show is neither.
/// </summary>
internal static class ModeUses
{
    private const int MaxHelperDepth = 3;

    /// <summary>The module a forward call runs: the receiver of <c>model.call(x)</c>, when it is a module and not a loss.</summary>
    public static IOperation? ModuleOf(TorchSymbols torch, IInvocationOperation call)
    {
        if (!torch.IsModuleInvocation(call.TargetMethod) || call.Instance.WithoutConversions() is not { Type: { } type } receiver
            || receiver is IInstanceReferenceOperation || IsLoss(torch, type))
        {
            return null; // a module calling its own forward, or a loss module (its mode changes nothing)
        }

        return receiver;
    }

    /// <summary>What <paramref name="call"/> is for; asked by both mode rules for every forward call, answered once.</summary>
    public static ModeUse Classify(AnalysisServices services, IInvocationOperation call, CancellationToken cancellationToken)
        => (ModeUse)Classified.GetValue(call, c => ClassifyCore(services, (IInvocationOperation)c, cancellationToken));

    private static readonly ConditionalWeakTable<IOperation, object> Classified = new();

    private static ModeUse ClassifyCore(AnalysisServices services, IInvocationOperation call, CancellationToken cancellationToken)
    {
        if (call.ContainingFunction() is not null)
        {
            return ModeUse.None; // in a lambda or local function: it runs wherever it is called
        }

        var torch = services.Torch;
        var loop = call.EnclosingLoop();
        if (GradDisabledAt(torch, call) is { } guard)
        {
            // Gradients off: never training (a frozen teacher or feature extractor run under no_grad). An output thrown away
            // (refreshing batch-norm statistics after weight averaging) is no evaluation either.
            return call.Parent is IExpressionStatementOperation ? ModeUse.None : new ModeUse(ModeUseKind.Evaluation, guard);
        }

        if (loop is not null && ReachesBackward(torch, call, loop.Body, services.CallTextOf(loop.Body.Syntax, cancellationToken)) && StepsAnOptimizer(services, loop, cancellationToken)
            && IsOptimized(call))
        {
            return new ModeUse(ModeUseKind.Training, loop.Syntax); // a backward pass with no optimizer step (a saliency map) trains nothing
        }

        var member = call.Root();
        if (loop is null)
        {
            // Outside any loop and any grad-disabled scope, a forward pass says nothing of its purpose: a unit test of a
            // layer's training behaviour, a shape probe, a step of a training helper whose caller runs backward (the field
            // test on TorchSharp's own tests reported dozens of such layer tests when this counted as evaluation).
            return ModeUse.None;
        }

        // In a loop that only measures (its outputs become predictions or a loss read as a number), with no backward pass
        // after it in the member (a gradient accumulated over the loop's outputs and applied after it is training).
        if (member is null || !IsMeasured(torch, call, loop.Body, services.CallTextOf(loop.Body.Syntax, cancellationToken)) || MayTrain(services, loop.Body, 0, cancellationToken))
        {
            return ModeUse.None;
        }

        var loopEnd = loop.Syntax.Span.End;
        foreach (var invocation in MemberCalls.Of(member).Invocations)
        {
            if (invocation.Syntax.SpanStart >= loopEnd && torch.IsBackward(invocation.TargetMethod) && !InLoopAfter(invocation, loop))
            {
                return ModeUse.None;
            }
        }

        return new ModeUse(ModeUseKind.Evaluation, loop.Syntax);
    }

    /// <summary>
    /// True when the parameters of the module <paramref name="call"/> runs may be what an optimizer steps: its own or a
    /// module above it (<c>model</c> for <c>model.encoder</c>) has <c>parameters()</c> or <c>named_parameters()</c> read in
    /// the member (or, for a field, in its class); a module handed in as a parameter may be, unless the member builds its
    /// optimizer itself from other modules. A frozen network whose output flows into a trained one (a perceptual loss, a
    /// target network, a detached teacher) is not trained.
    /// </summary>
    private static bool IsOptimized(IInvocationOperation call)
    {
        var chain = call.Instance.ReferencedSymbols(); // innermost first: model.encoder gives encoder, model
        if (chain.IsDefaultOrEmpty)
        {
            return false;
        }

        var calls = MemberCalls.Of(call.Root());
        if (chain.Any(symbol => calls.ParametersRead.Contains(symbol.Name)))
        {
            return true;
        }

        var root = chain[chain.Length - 1];
        switch (root)
        {
            case IParameterSymbol:
                return !calls.BuildsAnOptimizer; // the optimizer may come from the caller, unless this member builds one itself
            case IFieldSymbol or IPropertySymbol:
                return root.ContainingType?.DeclaringSyntaxReferences.Any(r => ParametersReadIn(r.GetSyntax()).Overlaps(chain.Select(c => c.Name))) == true;
            default:
                return false;
        }
    }

    /// <summary>The names whose <c>parameters()</c> or <c>named_parameters()</c> the code in <paramref name="scope"/> reads (<c>model</c>, <c>this.model</c>).</summary>
    private static HashSet<string> ParametersReadIn(SyntaxNode scope)
        => (HashSet<string>)ParametersReadCache.GetValue(scope, static s =>
        {
            var names = new HashSet<string>();
            foreach (var invocation in s.DescendantNodes().OfType<Microsoft.CodeAnalysis.CSharp.Syntax.InvocationExpressionSyntax>())
            {
                if (invocation.Expression is Microsoft.CodeAnalysis.CSharp.Syntax.MemberAccessExpressionSyntax
                    {
                        Name.Identifier.ValueText: "parameters" or "named_parameters",
                        Expression: var owner,
                    })
                {
                    switch (owner)
                    {
                        case Microsoft.CodeAnalysis.CSharp.Syntax.IdentifierNameSyntax identifier:
                            names.Add(identifier.Identifier.ValueText);
                            break;
                        case Microsoft.CodeAnalysis.CSharp.Syntax.MemberAccessExpressionSyntax access:
                            names.Add(access.Name.Identifier.ValueText);
                            break;
                    }
                }
            }

            return names;
        });

    private static readonly ConditionalWeakTable<SyntaxNode, object> ParametersReadCache = new();

    /// <summary>What the mode rules ask of a whole member, found in one walk of its operations.</summary>
    private sealed class MemberCalls
    {
        private static readonly ConditionalWeakTable<IOperation, MemberCalls> Cache = new();

        private MemberCalls(IOperation member)
        {
            var invocations = new List<IInvocationOperation>();
            foreach (var operation in member.DescendantsAndSelf())
            {
                if (operation is IInvocationOperation invocation)
                {
                    invocations.Add(invocation);
                }
            }

            invocations.Sort((a, b) => a.Syntax.SpanStart.CompareTo(b.Syntax.SpanStart));
            Invocations = invocations;
            ParametersRead = ParametersReadIn(member.Syntax);
            BuildsAnOptimizer = member.Syntax.DescendantNodes().OfType<Microsoft.CodeAnalysis.CSharp.Syntax.InvocationExpressionSyntax>().Any(i =>
                i.Expression is Microsoft.CodeAnalysis.CSharp.Syntax.MemberAccessExpressionSyntax { Expression: Microsoft.CodeAnalysis.CSharp.Syntax.IdentifierNameSyntax { Identifier.ValueText: "optim" } });
        }

        /// <summary>Every invocation in the member, in source order.</summary>
        public List<IInvocationOperation> Invocations { get; }

        public HashSet<string> ParametersRead { get; }

        /// <summary>True when the member creates an optimizer itself (<c>optim.Adam(...)</c>).</summary>
        public bool BuildsAnOptimizer { get; }

        public static MemberCalls Of(IOperation member) => Cache.GetValue(member, static m => new MemberCalls(m));
    }

    /// <summary>True for a loss module (TorchSharp's or a user's derived from its <c>Loss</c> base); answered once per type.</summary>
    private static bool IsLoss(TorchSymbols torch, ITypeSymbol type)
        => LossTypes.GetValue(type, t =>
        {
            for (var current = t as INamedTypeSymbol; current is not null; current = current.BaseType)
            {
                if (torch.IsInTorchSharp(current) && (current.Name == "Loss" || torch.Losses.NameOf(current) is not null))
                {
                    return Yes;
                }
            }

            return No;
        }) == Yes;

    private static readonly ConditionalWeakTable<ITypeSymbol, object> LossTypes = new();
    private static readonly object Yes = new(), No = new();

    /// <summary>True when a backward call after <paramref name="loop"/> stands in another loop of its own (another epoch's training loop).</summary>
    private static bool InLoopAfter(IOperation backward, ILoopOperation loop)
        => backward.EnclosingLoop() is { } other && other.Syntax.SpanStart >= loop.Syntax.Span.End;

    /// <summary>True when the value of <paramref name="call"/> reaches a <c>backward()</c> call in <paramref name="scope"/> (whose text is <paramref name="text"/>).</summary>
    private static bool ReachesBackward(TorchSymbols torch, IInvocationOperation call, IOperation scope, CallText text)
        => text.Called.Contains("backward") && Reaches(call, scope, invocation => torch.IsBackward(invocation.TargetMethod));

    /// <summary>
    /// True when the value of <paramref name="call"/> is measured in <paramref name="scope"/>: turned into predictions
    /// (<c>argmax</c>, <c>topk</c>), or given to a loss whose value is read (<c>item</c>, <c>ToSingle</c>, <c>ToDouble</c>):
    /// accuracy or a validation loss. A loop that only runs a forward pass (to fill batch-norm statistics, in a unit
    /// test of a layer) is no evaluation.
    /// </summary>
    private static bool IsMeasured(TorchSymbols torch, IInvocationOperation call, IOperation scope, CallText text)
        => CallsAnyOf(text, MeasuringNames) // asked for every forward call of a loop: its text rules most loops out before a walk
           && (Reaches(call, scope, invocation => invocation.TargetMethod.Name is "argmax" or "topk" || (invocation.TargetMethod.Name == "max" && invocation.Arguments.Length > 0))
               || Reaches(call, scope, invocation => IsLossCall(torch, invocation)
                                                     && Reaches(invocation, scope, read => read.TargetMethod.Name is "item" or "ToSingle" or "ToDouble" or "ToScalar")));

    private static readonly string[] MeasuringNames = { "argmax", "topk", "max", "item", "ToSingle", "ToDouble", "ToScalar" };

    private static bool CallsAnyOf(CallText text, string[] names)
    {
        foreach (var name in names)
        {
            if (text.Called.Contains(name))
            {
                return true;
            }
        }

        return false;
    }

    private static bool IsLossCall(TorchSymbols torch, IInvocationOperation invocation)
    {
        var method = invocation.TargetMethod;
        if (SymbolEqualityComparer.Default.Equals(method.ContainingType, torch.Functional))
        {
            return method.Name.EndsWith("_loss", System.StringComparison.Ordinal) || method.Name.Contains("cross_entropy") || method.Name == "kl_div";
        }

        return torch.IsModuleInvocation(method) && invocation.Instance?.Type is { } type && IsLoss(torch, type);
    }

    /// <summary>
    /// True when the value of <paramref name="source"/> reaches an invocation <paramref name="sink"/> accepts in
    /// <paramref name="scope"/>: as its receiver or an argument, directly or through locals assigned from it (through
    /// other locals too).
    /// </summary>
    private static bool Reaches(IOperation source, IOperation scope, System.Func<IInvocationOperation, bool> sink)
    {
        var sinks = new List<IInvocationOperation>();
        var assignments = new List<(ISymbol Local, IOperation Value)>();
        foreach (var operation in scope.DescendantsAndSelf())
        {
            switch (operation)
            {
                case var _ when operation.Syntax.Span.End < source.Syntax.Span.End:
                    break; // only what ends after the call in the scope's text can receive its value (one iteration's worth)
                case IInvocationOperation invocation when invocation != source && sink(invocation):
                    sinks.Add(invocation);
                    break;
                case IVariableDeclaratorOperation declarator when declarator.GetVariableInitializer() is { } initializer:
                    assignments.Add((declarator.Symbol, initializer.Value));
                    break;
                case IAssignmentOperation { Target: ILocalReferenceOperation target } assignment:
                    assignments.Add((target.Local, assignment.Value));
                    break;
                case IDeconstructionAssignmentOperation deconstruction:
                    foreach (var local in deconstruction.Target.DescendantsAndSelf().OfType<ILocalReferenceOperation>())
                    {
                        assignments.Add((local.Local, deconstruction.Value));
                    }

                    break;
            }
        }

        if (sinks.Count == 0)
        {
            return false;
        }

        var tainted = new HashSet<ISymbol>(SymbolEqualityComparer.Default);
        bool Carries(IOperation value)
            => value.Syntax.Span.Contains(source.Syntax.Span)
               || value.DescendantsAndSelf().Any(o => o is ILocalReferenceOperation reference && tainted.Contains(reference.Local));

        for (var changed = true; changed;)
        {
            changed = false;
            foreach (var (local, value) in assignments)
            {
                if (!tainted.Contains(local) && Carries(value))
                {
                    tainted.Add(local);
                    changed = true;
                }
            }
        }

        return sinks.Any(found => (found.Instance is { } receiver && Carries(receiver)) || found.Arguments.Any(a => Carries(a.Value)));
    }

    /// <summary>
    /// The statement that turns gradients off where <paramref name="operation"/> runs, when they are: the
    /// <c>using (no_grad())</c> statement around it, a <c>using var _ = no_grad();</c> in an enclosing block, or a bare
    /// <c>set_grad_enabled(false);</c> statement earlier in the member (it stays off until enabled again). The nearest
    /// guard decides; null when gradients are on or not known to be off.
    /// </summary>
    private static SyntaxNode? GradDisabledAt(TorchSymbols torch, IOperation operation)
    {
        for (IOperation? current = operation, parent = operation.Parent; parent is not null; current = parent, parent = parent.Parent)
        {
            switch (parent)
            {
                case IUsingOperation @using when current != @using.Resources && GuardIn(torch, @using.Resources) is { } enabled:
                    return enabled ? null : @using.Syntax;
                case IBlockOperation block:
                    for (var i = block.Operations.IndexOf(current!) - 1; i >= 0; i--)
                    {
                        var statement = block.Operations[i];
                        var guard = statement switch
                        {
                            IUsingDeclarationOperation declaration => GuardIn(torch, declaration.DeclarationGroup),
                            IExpressionStatementOperation { Operation: IInvocationOperation call } => torch.GradEnabledBy(call),
                            _ => null,
                        };

                        if (guard is { } enabled)
                        {
                            return enabled ? null : statement.Syntax;
                        }
                    }

                    break;
                case IAnonymousFunctionOperation or ILocalFunctionOperation:
                    return null;
            }
        }

        return null;
    }

    private static bool? GuardIn(TorchSymbols torch, IOperation? resources)
    {
        if (resources is null)
        {
            return null;
        }

        foreach (var operation in resources.DescendantsAndSelf())
        {
            if (operation is IInvocationOperation call && torch.GradEnabledBy(call) is { } enabled)
            {
                return enabled;
            }
        }

        return null;
    }

    /// <summary>True when <paramref name="loop"/> or a loop around it steps an optimizer, directly or through a source helper.</summary>
    private static bool StepsAnOptimizer(AnalysisServices services, ILoopOperation loop, CancellationToken cancellationToken)
    {
        for (var current = loop; current is not null; current = current.EnclosingLoop())
        {
            if (Calls(services, current.Body, Question.Steps, 0, cancellationToken))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>
    /// True when <paramref name="scope"/> may run a backward pass or an optimizer step: directly, through a source helper
    /// (followed <see cref="MaxHelperDepth"/> calls deep), or through a call whose code is not known (virtual, abstract,
    /// delegate, deeper helpers).
    /// </summary>
    private static bool MayTrain(AnalysisServices services, IOperation scope, int depth, CancellationToken cancellationToken)
        => Calls(services, scope, Question.MayTrain, depth, cancellationToken);

    /// <summary>
    /// True when the member around <paramref name="use"/> may run a backward pass or an optimizer step in a statement
    /// between <paramref name="start"/> and the use, directly or through a helper.
    /// </summary>
    public static bool MayTrainBefore(AnalysisServices services, IOperation use, int start, CancellationToken cancellationToken)
    {
        foreach (var invocation in MemberCalls.Of(use.Root()).Invocations)
        {
            if (invocation.Syntax.SpanStart >= use.Syntax.SpanStart)
            {
                break; // in source order: nothing later lies between
            }

            if (invocation.Syntax.SpanStart >= start && invocation.Syntax.Span.End <= use.Syntax.SpanStart
                && Calls(services, invocation, Question.MayTrain, 0, cancellationToken))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>What <see cref="Calls"/> looks for.</summary>
    private enum Question
    {
        /// <summary>A backward pass or an optimizer step; a call whose code is not known may be one.</summary>
        MayTrain,

        /// <summary>An optimizer step; a call whose code is not known is not counted.</summary>
        Steps,
    }

    /// <summary>
    /// The answer to <paramref name="question"/> for <paramref name="scope"/>: its calls, directly or through a source
    /// helper (followed <see cref="MaxHelperDepth"/> calls deep); a call whose code is not known (virtual, abstract,
    /// delegate, deeper helpers) counts only for <see cref="Question.MayTrain"/>.
    /// </summary>
    private static bool Calls(AnalysisServices services, IOperation scope, Question question, int depth, CancellationToken cancellationToken)
    {
        var torch = services.Torch;
        var unknown = question == Question.MayTrain;
        foreach (var operation in scope.DescendantsAndSelf())
        {
            if (operation is not IInvocationOperation invocation)
            {
                continue;
            }

            var method = invocation.TargetMethod;
            if (torch.IsOptimizerStep(method) || (question == Question.MayTrain && torch.IsBackward(method)))
            {
                return true;
            }

            if (torch.IsInTorchSharp(method) || method.MethodKind is MethodKind.LocalFunction)
            {
                continue; // a local function's body is in the scope already
            }

            var definition = SourceMethodBodies.DefinitionWithBody(method);
            if (definition.DeclaringSyntaxReferences.IsEmpty)
            {
                if (method.MethodKind == MethodKind.DelegateInvoke && unknown)
                {
                    return true;
                }

                continue; // a library outside TorchSharp does not train a model
            }

            if (!(question == Question.MayTrain ? TrainReach : StepReach).MayReach(services, definition, cancellationToken))
            {
                continue; // its text shows it cannot step or train: not bound to learn it
            }

            if (depth >= MaxHelperDepth || ((method.IsVirtual || method.IsAbstract || method.IsOverride) && !method.IsSealed && !method.ContainingType.IsSealed)
                || services.GetBody(definition, cancellationToken) is not { } body)
            {
                if (unknown)
                {
                    return true;
                }

                continue;
            }

            if (CallsInHelper(services, definition, body, question, depth + 1, cancellationToken))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>
    /// <see cref="Calls"/> on a helper's body, remembered per helper and question for a walk's first level (a helper is
    /// asked about at every forward call in every loop that calls it); deeper walks are not remembered, since their
    /// answer depends on the depth left.
    /// </summary>
    private static bool CallsInHelper(AnalysisServices services, IMethodSymbol helper, IOperation body, Question question, int depth, CancellationToken cancellationToken)
    {
        if (depth != 1)
        {
            return Calls(services, body, question, depth, cancellationToken);
        }

        var answers = HelperAnswers.GetValue(services, static _ => new ConcurrentDictionary<(ISymbol, Question), bool>(HelperKeyComparer.Instance));
        return answers.GetOrAdd((helper, question), _ => Calls(services, body, question, depth, cancellationToken));
    }

    private static readonly ConditionalWeakTable<AnalysisServices, ConcurrentDictionary<(ISymbol, Question), bool>> HelperAnswers = new();

    /// <summary>Helpers that may step an optimizer: their text, or a callee's, names <c>step</c> (unseen code does not count, as in <see cref="Calls"/>).</summary>
    private static readonly SyntacticReach StepReach = new(
        static text => (text.Mentions & MarkerNames.Step) != 0, unseenCodeReaches: false, sourceCreationsReach: false);

    /// <summary>Helpers that may train: their text, or a callee's, names <c>step</c> or <c>backward</c>, or they call code the syntax cannot follow.</summary>
    private static readonly SyntacticReach TrainReach = new(
        static text => (text.Mentions & (MarkerNames.Step | MarkerNames.Backward)) != 0, unseenCodeReaches: true, sourceCreationsReach: false);

    private sealed class HelperKeyComparer : IEqualityComparer<(ISymbol Helper, Question Question)>
    {
        public static readonly HelperKeyComparer Instance = new();

        public bool Equals((ISymbol Helper, Question Question) x, (ISymbol Helper, Question Question) y)
            => SymbolEqualityComparer.Default.Equals(x.Helper, y.Helper) && x.Question == y.Question;

        public int GetHashCode((ISymbol Helper, Question Question) obj) => SymbolEqualityComparer.Default.GetHashCode(obj.Helper) ^ (int)obj.Question;
    }
}
