using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Linq;
using System.Runtime.CompilerServices;
using System.Threading;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.FlowAnalysis;
using Microsoft.CodeAnalysis.Operations;
using MlPitfalls.Analyzers.Infrastructure;

namespace MlPitfalls.Analyzers.FlowAnalysis;

/// <summary>
/// Facts about a whole body that the engine needs at calls: which locals a lambda or local function assigns (a call may
/// run that code and change them), and which delegate locals hold one known lambda. Computed once per body, from the
/// root graph, for all analyses.
/// </summary>
internal sealed class GraphFacts
{
    private static readonly ConditionalWeakTable<ControlFlowGraph, GraphFacts> Cache = new();

    private readonly Lazy<Writes> _walked;

    /// <summary>
    /// False when the body can have no lambda, anonymous method or local function: none in the graph, and no <c>=&gt;</c>
    /// or <c>delegate</c> in its text. Then no nested function writes anything, known without walking every operation.
    /// </summary>
    private readonly bool _mayHaveNestedFunctions;

    private GraphFacts(ControlFlowGraph root)
    {
        var syntax = root.OriginalOperation.Syntax;
        var text = syntax.SyntaxTree.GetText().ToString(syntax.Span);
        _mayHaveNestedFunctions = root.LocalFunctions.Length > 0
                                  || text.IndexOf("=>", StringComparison.Ordinal) >= 0 || text.IndexOf("delegate", StringComparison.Ordinal) >= 0;
        _walked = new Lazy<Writes>(() => new Writes(root), LazyThreadSafetyMode.ExecutionAndPublication);
    }

    /// <summary>Every write of a local or parameter in the body, found by one walk of its operations, made on first use.</summary>
    private sealed class Writes
    {
        public readonly HashSet<ISymbol> ByNestedFunctions = new(SymbolEqualityComparer.Default);
        public readonly Dictionary<ISymbol, int> Counts = new(SymbolEqualityComparer.Default);

        public Writes(ControlFlowGraph root)
        {
            foreach (var operation in root.OriginalOperation.DescendantsAndSelf())
            {
                var target = operation switch
                {
                    IAssignmentOperation assignment => assignment.Target,
                    IIncrementOrDecrementOperation increment => increment.Target,
                    _ => null,
                };

                if (operation is IVariableDeclaratorOperation { Symbol: var declared } withInitializer && withInitializer.GetVariableInitializer() is not null)
                {
                    Count(declared);
                }

                if (operation is IDeconstructionAssignmentOperation deconstruction)
                {
                    foreach (var element in deconstruction.Target.DescendantsAndSelf().Where(e => e is ILocalReferenceOperation or IParameterReferenceOperation))
                    {
                        Written(element, deconstruction);
                    }
                }

                if (operation is IArgumentOperation { Parameter.RefKind: RefKind.Ref or RefKind.Out } byReference)
                {
                    Written(byReference.Value, byReference);
                }

                if (target is not null)
                {
                    Written(target, operation);
                }
            }
        }

        private void Written(IOperation target, IOperation writer)
        {
            var symbol = target switch
            {
                ILocalReferenceOperation local => (ISymbol)local.Local,
                IParameterReferenceOperation parameter => parameter.Parameter,
                _ => null,
            };

            if (symbol is null)
            {
                return;
            }

            Count(symbol);
            if (writer.ContainingFunction() is { } function && !SymbolEqualityComparer.Default.Equals(symbol.ContainingSymbol, function))
            {
                ByNestedFunctions.Add(symbol);
            }
        }

        private void Count(ISymbol symbol) => Counts[symbol] = Counts.TryGetValue(symbol, out var count) ? count + 1 : 1;
    }

    public static GraphFacts For(ControlFlowGraph graph)
    {
        var root = graph;
        while (root.Parent is not null)
        {
            root = root.Parent;
        }

        return Cache.GetValue(root, static r => new GraphFacts(r));
    }

    /// <summary>True when the body assigns <paramref name="symbol"/> (a local or parameter) anywhere, a declaration's initializer included.</summary>
    public bool IsWritten(ISymbol symbol) => _walked.Value.Counts.ContainsKey(symbol);

    /// <summary>True when some lambda or local function in the body assigns a captured local or parameter.</summary>
    public bool HasWritesByNestedFunctions => _mayHaveNestedFunctions && _walked.Value.ByNestedFunctions.Count > 0;

    /// <summary>True when a lambda or local function in the body assigns <paramref name="symbol"/> (a captured local or parameter).</summary>
    public bool IsWrittenByNestedFunction(ISymbol symbol) => _mayHaveNestedFunctions && _walked.Value.ByNestedFunctions.Contains(symbol);

    /// <summary>
    /// The lambda <paramref name="local"/> holds wherever it is invoked: the local is assigned exactly once in the whole
    /// body, to a lambda, outside any nested function. Searched for in <paramref name="graph"/> and the graphs around it.
    /// </summary>
    public IFlowAnonymousFunctionOperation? SingleLambdaOf(ILocalSymbol local, ControlFlowGraph graph)
        => _lambdas.GetOrAdd(graph, static _ => new ConcurrentDictionary<ISymbol, IFlowAnonymousFunctionOperation?>(SymbolEqualityComparer.Default))
            .GetOrAdd(local, l => FindSingleLambda((ILocalSymbol)l, graph));

    // Asked at every invocation of a delegate local, in every fixed-point iteration: the answer is found once per graph.
    private readonly ConcurrentDictionary<ControlFlowGraph, ConcurrentDictionary<ISymbol, IFlowAnonymousFunctionOperation?>> _lambdas = new();

    private IFlowAnonymousFunctionOperation? FindSingleLambda(ILocalSymbol local, ControlFlowGraph graph)
    {
        if (!_walked.Value.Counts.TryGetValue(local, out var writes) || writes != 1 || _walked.Value.ByNestedFunctions.Contains(local))
        {
            return null;
        }

        for (var current = graph; current is not null; current = current.Parent)
        {
            foreach (var block in current.Blocks)
            {
                foreach (var operation in block.Operations)
                {
                    if (operation is ISimpleAssignmentOperation { Target: ILocalReferenceOperation target } assignment
                        && SymbolEqualityComparer.Default.Equals(target.Local, local))
                    {
                        var value = assignment.Value;
                        while (value is IConversionOperation or IDelegateCreationOperation)
                        {
                            value = value is IConversionOperation conversion ? conversion.Operand : ((IDelegateCreationOperation)value).Target;
                        }

                        return value as IFlowAnonymousFunctionOperation;
                    }
                }
            }
        }

        return null;
    }
}
