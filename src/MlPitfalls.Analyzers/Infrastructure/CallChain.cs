using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Operations;

namespace MlPitfalls.Analyzers.Infrastructure;

/// <summary>
/// The calls a walk followed to reach an operation: <c>TrainStep(batch)</c> in the loop, then <c>Backprop(loss)</c>
/// inside <c>TrainStep</c>, ... Null means the operation stands in the walked code itself.
/// </summary>
internal sealed class CallChain
{
    private CallChain(IOperation call, IMethodSymbol callee, CallChain? caller)
    {
        Call = call;
        Callee = callee;
        Caller = caller;
        Depth = caller is null ? 1 : caller.Depth + 1;
    }

    /// <summary>
    /// The innermost call: an invocation, or a method group turned into a delegate (<c>optimizer.step(Closure)</c>),
    /// whose callee contains the operation.
    /// </summary>
    public IOperation Call { get; }

    /// <summary>The method <see cref="Call"/> runs.</summary>
    public IMethodSymbol Callee { get; }

    /// <summary>The chain that led to <see cref="Call"/>, or null when <see cref="Call"/> stands in the walked code.</summary>
    public CallChain? Caller { get; }

    public int Depth { get; }

    public static CallChain Push(CallChain? chain, IOperation call, IMethodSymbol callee) => new(call, callee, chain);

    /// <summary>The call in the walked code through which the operation is reached.</summary>
    public CallChain Outermost
    {
        get
        {
            var chain = this;
            while (chain.Caller is not null)
            {
                chain = chain.Caller;
            }

            return chain;
        }
    }

    /// <summary>
    /// Translates a symbol seen inside a callee into the symbol the walked code passed for it: a parameter becomes
    /// the variable given as its argument. Returns null when the argument is not a plain variable, field or property
    /// (or there is no argument, as for a method group). Other symbols (fields, callee locals) are returned unchanged.
    /// </summary>
    public static ISymbol? MapToWalkedCode(ISymbol? symbol, CallChain? chain)
    {
        for (; chain is not null && symbol is IParameterSymbol parameter; chain = chain.Caller)
        {
            var callee = SourceMethodBodies.DefinitionWithBody(chain.Callee);
            if (!SymbolEqualityComparer.Default.Equals(parameter.ContainingSymbol.OriginalDefinition, callee))
            {
                return symbol; // a parameter of an enclosing lambda or method, not of this callee
            }

            symbol = null;
            if (chain.Call is IInvocationOperation invocation)
            {
                foreach (var argument in invocation.Arguments)
                {
                    if (argument.Parameter?.Ordinal == parameter.Ordinal)
                    {
                        symbol = argument.Value.ReferencedSymbol();
                        break;
                    }
                }
            }
        }

        return symbol;
    }
}
