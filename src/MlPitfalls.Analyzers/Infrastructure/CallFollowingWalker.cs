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
/// Lambdas are visited where they are written (and again where a local holding one is called); local functions and
/// method groups are visited where they are called or handed over as a delegate.
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
    public void Walk(IOperation root, Action<IOperation, CallChain?> visit, CancellationToken cancellationToken)
    {
        var followed = new HashSet<IMethodSymbol>(SymbolEqualityComparer.Default);
        Visit(root, chain: null, followed, visit, cancellationToken);
    }

    private void Visit(
        IOperation operation, CallChain? chain, HashSet<IMethodSymbol> followed,
        Action<IOperation, CallChain?> visit, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        if (operation is ILocalFunctionOperation)
        {
            return;
        }

        foreach (var child in operation.ChildOperations)
        {
            Visit(child, chain, followed, visit, cancellationToken);
        }

        visit(operation, chain);

        if ((chain?.Depth ?? 0) >= _maxDepth || operation.SemanticModel is not { } model)
        {
            return;
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
        if (callee is not null && body is not null && followed.Add(callee.OriginalDefinition))
        {
            Visit(body, CallChain.Push(chain, operation, callee), followed, visit, cancellationToken);
            followed.Remove(callee.OriginalDefinition); // recursion guard only: the same helper may be called twice in a loop
        }
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
