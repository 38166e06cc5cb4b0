using System;
using System.Collections.Generic;
using System.Linq;
using System.Threading;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Operations;

namespace MlPitfalls.Analyzers.Infrastructure;

/// <summary>
/// Visits every operation of a body in evaluation order (operands before the operation that uses them, so the
/// closure passed to <c>step(closure)</c> is visited before the step), and follows calls into methods and local
/// functions declared in the same compilation, so a rule sees what a helper called from a loop does.
/// A lambda handed to a call is visited where it is written; one kept to run later (stored in a field or property, added
/// to a collection, subscribed to an event) is not, and one held in a local that is called is visited where the local
/// is called (a local only handed on, <c>lbfgs.step(closure)</c>, is visited where it is written). Local
/// functions and method groups are visited where they are called or handed over as a delegate.
/// </summary>
internal sealed class CallFollowingWalker
{
    /// <summary>How many calls deep a walk follows; deep enough for helper → helper → torch, bounded for speed.</summary>
    public const int DefaultMaxDepth = 3;

    private readonly SourceMethodBodies _bodies;
    private readonly int _maxDepth;

    public CallFollowingWalker(SourceMethodBodies bodies, int maxDepth = DefaultMaxDepth)
    {
        _bodies = bodies;
        _maxDepth = maxDepth;
    }

    /// <summary>Calls <paramref name="visit"/> for each operation reached from <paramref name="root"/>.</summary>
    /// <remarks>
    /// Iterative, with its own stack: a left-deep expression (a long <c>a + b + c + ...</c>) would otherwise recurse once
    /// per operand, and a stack overflow takes the whole IDE process down, not just this analyzer.
    /// </remarks>
    public void Walk(IOperation root, Action<IOperation, CallChain?> visit, CancellationToken cancellationToken)
    {
        var followed = new HashSet<IMethodSymbol>(SymbolEqualityComparer.Default);
        var pending = new Stack<Pending>();
        var children = new List<IOperation>();
        pending.Push(new Pending(root, chain: null, childrenDone: false, leaving: null));
        while (pending.Count > 0)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var next = pending.Pop();
            if (next.Operation is not { } operation)
            {
                if (next.Leaving is { } left)
                {
                    followed.Remove(left); // recursion guard only: the same helper may be called twice in a loop
                }

                continue;
            }

            if (!next.ChildrenDone)
            {
                if (operation is ILocalFunctionOperation)
                {
                    continue;
                }

                // Operands first: the operation comes back once all of its children (pushed above it) are done.
                pending.Push(new Pending(operation, next.Chain, childrenDone: true, leaving: null));
                children.Clear();
                foreach (var child in operation.ChildOperations) // the struct enumerator: AddRange would box one per operation
                {
                    if (!IsStoredForLater(child))
                    {
                        children.Add(child);
                    }
                }

                for (var i = children.Count - 1; i >= 0; i--)
                {
                    pending.Push(new Pending(children[i], next.Chain, childrenDone: false, leaving: null));
                }

                continue;
            }

            visit(operation, next.Chain);
            if (FollowedBody(operation, next.Chain, cancellationToken) is var (callee, body) && followed.Add(callee.OriginalDefinition))
            {
                pending.Push(new Pending(operation: null, chain: null, childrenDone: false, leaving: callee.OriginalDefinition));
                pending.Push(new Pending(body, CallChain.Push(next.Chain, operation, callee), childrenDone: false, leaving: null));
            }
        }
    }

    /// <summary>
    /// True for a lambda kept to run later rather than run where it is written: stored in a field or property, or in a
    /// local that is called (followed where it is called), added to a collection (<c>callbacks.Add(...)</c>) or
    /// subscribed to an event. A lambda handed to any other call (<c>step(closure)</c>, <c>ForEach</c>) is taken to
    /// run there.
    /// </summary>
    private static bool IsStoredForLater(IOperation operation)
    {
        if (operation is not (IDelegateCreationOperation { Target: IAnonymousFunctionOperation } or IAnonymousFunctionOperation))
        {
            return false;
        }

        var user = operation.Parent;
        while (user is IConversionOperation or IDelegateCreationOperation)
        {
            user = user.Parent;
        }

        return user switch
        {
            // A local that is called is followed where it is called; one only handed on (lbfgs.step(closure)) runs there.
            IVariableInitializerOperation { Parent: IVariableDeclaratorOperation { Symbol: var local } } => IsCalled(local, user),
            IVariableInitializerOperation or ISimpleAssignmentOperation or IEventAssignmentOperation or ICompoundAssignmentOperation => true,
            IArgumentOperation { Parent: IInvocationOperation { TargetMethod.Name: "Add" or "Insert" or "Enqueue" or "Push" or "AddRange" or "Register" or "Subscribe" } } => true,
            _ => false,
        };
    }

    private static bool IsCalled(ILocalSymbol local, IOperation within)
    {
        var root = within;
        while (root.Parent is not null)
        {
            root = root.Parent;
        }

        return root.Descendants().Any(o => o is IInvocationOperation { TargetMethod.MethodKind: MethodKind.DelegateInvoke, Instance: ILocalReferenceOperation { Local: var called } }
                                           && SymbolEqualityComparer.Default.Equals(called, local));
    }

    /// <summary>True when the walk follows <paramref name="invocation"/> of a delegate into the lambda it holds (so its effects are seen, not guessed).</summary>
    public bool FollowsDelegate(IInvocationOperation invocation, CallChain? chain, CancellationToken cancellationToken)
        => invocation.TargetMethod.MethodKind == MethodKind.DelegateInvoke && FollowedBody(invocation, chain, cancellationToken) is not null;

    /// <summary>The method <paramref name="operation"/> runs and its body, when it is one the walk follows.</summary>
    private (IMethodSymbol Callee, IOperation Body)? FollowedBody(IOperation operation, CallChain? chain, CancellationToken cancellationToken)
    {
        if ((chain?.Depth ?? 0) >= _maxDepth || operation.SemanticModel is not { } model)
        {
            return null;
        }

        var (callee, body) = operation switch
        {
            IInvocationOperation { TargetMethod.MethodKind: MethodKind.DelegateInvoke } invocation
                => (invocation.TargetMethod, LambdaAssignedTo(invocation.Instance.ReferencedSymbol() as ILocalSymbol, invocation)),
            IInvocationOperation invocation
                => (invocation.TargetMethod, _bodies.GetBody(invocation.TargetMethod, model, cancellationToken)),
            // A method group handed over as a delegate, e.g. optimizer.step(Closure): it runs where it is handed over.
            IDelegateCreationOperation { Target: IMethodReferenceOperation reference }
                => (reference.Method, _bodies.GetBody(reference.Method, model, cancellationToken)),
            _ => (null, null),
        };
        return callee is not null && body is not null ? (callee, body) : null;
    }

    /// <summary>One entry of the walk's stack: an operation to expand or visit, or the end of a followed call.</summary>
    private readonly struct Pending
    {
        public Pending(IOperation? operation, CallChain? chain, bool childrenDone, IMethodSymbol? leaving)
        {
            Operation = operation;
            Chain = chain;
            ChildrenDone = childrenDone;
            Leaving = leaving;
        }

        public IOperation? Operation { get; }

        public CallChain? Chain { get; }

        /// <summary>True once the operation's children have been visited: the operation itself is next.</summary>
        public bool ChildrenDone { get; }

        /// <summary>Set on the entry that marks the end of a followed call's body.</summary>
        public IMethodSymbol? Leaving { get; }
    }

    /// <summary>
    /// For <c>clear()</c> where <c>clear</c> is a local initialised with a lambda in the same method
    /// (<c>Action clear = () => opt.zero_grad();</c>), the lambda's body; otherwise null.
    /// </summary>
    private static IOperation? LambdaAssignedTo(ILocalSymbol? local, IOperation invocation)
    {
        if (local is null)
        {
            return null;
        }

        var root = invocation;
        while (root.Parent is not null)
        {
            root = root.Parent;
        }

        foreach (var declarator in root.Descendants().OfType<IVariableDeclaratorOperation>())
        {
            if (SymbolEqualityComparer.Default.Equals(declarator.Symbol, local))
            {
                var value = declarator.Initializer?.Value.WithoutConversions();
                return value is IDelegateCreationOperation { Target: IAnonymousFunctionOperation lambda } ? lambda.Body : null;
            }
        }

        return null;
    }
}
