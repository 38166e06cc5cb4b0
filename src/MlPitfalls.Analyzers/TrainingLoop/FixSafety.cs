using System.Linq;
using MlPitfalls.Analyzers.Infrastructure;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Operations;

namespace MlPitfalls.Analyzers.TrainingLoop;

/// <summary>
/// What the MLP001 fixes may write for one loop: the optimizer's name as the first statement of the body, and whether a
/// misplaced clear can move up to backward(). Every doubt means no fix: a fix that does not compile, or that clears
/// another object, is worse than none (the diagnostic still says what to do).
/// </summary>
internal sealed class FixSafety
{
    private readonly ILoopOperation _loop;

    public FixSafety(ILoopOperation loop) => _loop = loop;

    /// <summary>
    /// An expression naming the optimizer that can be written as the first statement of the loop body, or null when
    /// there is none (the optimizer is computed, or only visible inside a helper).
    /// </summary>
    public string? OptimizerExpression(GradientEvent step)
    {
        var receiver = ReceiverAsTheLoopSeesIt(((IInvocationOperation)step.Operation).ResolvedReceiver(), step.Chain);
        if (!receiver.IsSimpleReference() || receiver.ReferencedSymbols() is not { IsDefault: false } names || !names.All(IsSameAtStartOfBody))
        {
            return null;
        }

        // Written in the loop body (the step itself, or the argument handed to the helper): valid there as written.
        var body = _loop.Body.Syntax;
        if (receiver!.Syntax.SyntaxTree == body.SyntaxTree && body.Span.Contains(receiver.Syntax.Span))
        {
            return receiver.Syntax.ToString();
        }

        // A member of this (or a variable a local function or lambda captures): usable by its name if that name
        // reaches the same symbol at the loop (a private field of a base class does not).
        var optimizer = receiver.ReferencedSymbol();
        if (optimizer is null || _loop.SemanticModel is null
            || receiver is IFieldReferenceOperation { Instance: not (null or IInstanceReferenceOperation) }
            || receiver is IPropertyReferenceOperation { Instance: not (null or IInstanceReferenceOperation) })
        {
            return null;
        }

        var visible = _loop.SemanticModel.LookupSymbols(body.SpanStart, name: optimizer.Name);
        return visible.Any(s => SymbolEqualityComparer.Default.Equals(s, optimizer)) ? optimizer.Name : null;
    }

    /// <summary>
    /// The step's receiver translated, call by call, into what it is in the loop's own code: a helper's parameter
    /// becomes the argument passed for it, a member of <c>this</c> stays itself while each call is on <c>this</c>,
    /// a captured variable stays itself through a local function or lambda. Null when it is none of these:
    /// <c>other.TrainStep(x)</c> steps other's optimizer, which the helper's field name does not reach at the loop.
    /// </summary>
    private static IOperation? ReceiverAsTheLoopSeesIt(IOperation? receiver, CallChain? chain)
    {
        for (; chain is not null && receiver is not null; chain = chain.Caller)
        {
            receiver = receiver.WithoutConversions();
            var callee = SourceMethodBodies.DefinitionWithBody(chain.Callee);
            if (receiver is IParameterReferenceOperation parameter
                && SymbolEqualityComparer.Default.Equals(parameter.Parameter.ContainingSymbol.OriginalDefinition, callee))
            {
                receiver = chain.Call is IInvocationOperation invocation
                    ? invocation.Arguments.FirstOrDefault(a => a.Parameter?.Ordinal == parameter.Parameter.Ordinal)?.Value
                    : null;
                continue;
            }

            var sameFrame = callee.MethodKind is MethodKind.LocalFunction or MethodKind.DelegateInvoke;
            var callOnThis = chain.Call switch
            {
                IInvocationOperation invocation => invocation.Instance is IInstanceReferenceOperation,
                IDelegateCreationOperation { Target: IMethodReferenceOperation reference } => reference.Instance is IInstanceReferenceOperation,
                _ => false,
            };
            var keeps = Root(receiver) switch
            {
                null => true,                                           // a static member means the same everywhere
                IInstanceReferenceOperation => sameFrame || callOnThis, // this.opt is the caller's only on the same object
                _ => sameFrame,                                         // a captured local is the caller's own variable
            };
            if (!keeps)
            {
                return null;
            }
        }

        return receiver;
    }

    /// <summary>What a chain of member accesses starts from: <c>this</c>, a variable, or null for a static member.</summary>
    private static IOperation? Root(IOperation? receiver)
    {
        var current = receiver.WithoutConversions();
        while (current is IFieldReferenceOperation or IPropertyReferenceOperation)
        {
            current = current.MemberInstance();
        }

        return current;
    }

    /// <summary>
    /// True when <paramref name="symbol"/>, written as the first statement of the loop body, is the object the loop
    /// steps: not declared inside the body (a local, an inner loop's variable, a lambda parameter: the inserted line
    /// would not compile) and not assigned there (it would clear the previous optimizer, or null on the first pass).
    /// </summary>
    private bool IsSameAtStartOfBody(ISymbol symbol)
    {
        var body = _loop.Body;
        if (symbol is ILocalSymbol or IParameterSymbol
            && symbol.DeclaringSyntaxReferences.Any(r => r.SyntaxTree == body.Syntax.SyntaxTree && body.Syntax.Span.Contains(r.Span)))
        {
            return false;
        }

        return !body.Descendants().Any(operation => Assigns(operation, symbol));
    }

    /// <summary>
    /// True when the clear, moved up to <paramref name="backward"/>, still names the same optimizer or module: nothing
    /// its receiver reads is declared or assigned from the backward() statement on.
    /// </summary>
    public bool NamesTheSameBefore(GradientEvent clear, GradientEvent backward)
    {
        var names = clear.Operation is IInvocationOperation invocation ? invocation.ResolvedReceiver().ReferencedSymbols() : default;
        if (names.IsDefault)
        {
            return false;
        }

        var from = backward.Anchor.Syntax.SpanStart;
        var to = clear.Anchor.Syntax.SpanStart;
        return !names.Any(name => name is ILocalSymbol && name.DeclaringSyntaxReferences.Any(r => r.Span.Start >= from))
               && !_loop.Body.Descendants().Any(o => o.Syntax.SpanStart >= from && o.Syntax.SpanStart < to && names.Any(name => Assigns(o, name)));
    }

    /// <summary>True when <paramref name="operation"/> assigns <paramref name="symbol"/> (=, ??=, +=, deconstruction, out or ref).</summary>
    private static bool Assigns(IOperation operation, ISymbol symbol)
    {
        var assigned = operation switch
        {
            IAssignmentOperation assignment => assignment.Target,
            IArgumentOperation { Parameter.RefKind: RefKind.Out or RefKind.Ref } argument => argument.Value,
            _ => null,
        };
        return assigned is ITupleOperation tuple
            ? tuple.Elements.Any(e => SymbolEqualityComparer.Default.Equals(e.ReferencedSymbol(), symbol))
            : SymbolEqualityComparer.Default.Equals(assigned.ReferencedSymbol(), symbol);
    }
}
