using System.Collections.Generic;
using System.Linq;
using System.Runtime.CompilerServices;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.FlowAnalysis;
using Microsoft.CodeAnalysis.CSharp.Syntax;

namespace MlPitfalls.Analyzers.FlowAnalysis;

/// <summary>
/// A graph's loops (each first block and the last block branching back to it, outermost first), which block each
/// statement-level operation is in, and what runs on every pass of a loop: made once per graph, since every rule that
/// judges a loop's later iterations asks (the mode rules for each training use, MLP001 for each loop).
/// </summary>
internal sealed class LoopTable
{
    private static readonly ConditionalWeakTable<ControlFlowGraph, LoopTable> Tables = new();

    private readonly Dictionary<SyntaxNode, int> _blockOfSyntax = new();

    private readonly ControlFlowGraph _graph;

    private LoopTable(ControlFlowGraph graph)
    {
        _graph = graph;
        var loops = new List<(int, int)>();
        foreach (var block in graph.Blocks)
        {
            foreach (var operation in block.Operations)
            {
                _blockOfSyntax[operation.Syntax] = block.Ordinal;
            }

            if (block.BranchValue is { } value)
            {
                _blockOfSyntax[value.Syntax] = block.Ordinal;
            }

            var last = -1;
            foreach (var predecessor in block.Predecessors)
            {
                if (predecessor.Source.Ordinal >= block.Ordinal && predecessor.Source.Ordinal > last)
                {
                    last = predecessor.Source.Ordinal;
                }
            }

            if (last >= 0)
            {
                loops.Add((block.Ordinal, last));
            }
        }

        Loops = loops;
    }

    public IReadOnlyList<(int Header, int Last)> Loops { get; }

    public static LoopTable For(ControlFlowGraph graph) => Tables.GetValue(graph, static g => new LoopTable(g));

    /// <summary>The block of the statement-level operation <paramref name="syntax"/> stands in (the nearest enclosing one a block holds).</summary>
    public int? BlockOf(SyntaxNode syntax)
    {
        for (var node = syntax; node is not null; node = node.Parent)
        {
            if (_blockOfSyntax.TryGetValue(node, out var ordinal))
            {
                return ordinal;
            }
        }

        return null;
    }

    /// <summary>
    /// The loop of <paramref name="loopStatement"/> (a <c>for</c>, <c>foreach</c>, <c>while</c> or <c>do</c>): the largest of
    /// the graph's loops whose code all stands in the statement; null when the graph has none (a loop that never goes round).
    /// </summary>
    public (int Header, int Last)? RangeOf(SyntaxNode loopStatement)
    {
        _ranges ??= LoopStatements();
        return _ranges.TryGetValue(loopStatement, out var range) ? range : null;
    }

    private Dictionary<SyntaxNode, (int Header, int Last)>? _ranges;

    /// <summary>
    /// Each loop statement's loop: for every loop of the graph, the innermost loop statement around its first code whose span
    /// holds all of its code; a statement whose code two loops share keeps the larger. Made once per graph (a long method
    /// asks for each of its loops).
    /// </summary>
    private Dictionary<SyntaxNode, (int Header, int Last)> LoopStatements()
    {
        var ranges = new Dictionary<SyntaxNode, (int Header, int Last)>();
        foreach (var loop in Loops)
        {
            var spans = new List<SyntaxNode>();
            for (var ordinal = loop.Header; ordinal <= loop.Last; ordinal++)
            {
                var block = _graph.Blocks[ordinal];
                foreach (var operation in block.Operations.Append(block.BranchValue))
                {
                    if (operation is not null)
                    {
                        spans.Add(operation.Syntax);
                    }
                }
            }

            if (spans.Count == 0)
            {
                continue;
            }

            for (var node = spans[0]; node is not null; node = node.Parent)
            {
                if (node is ForStatementSyntax or CommonForEachStatementSyntax or WhileStatementSyntax or DoStatementSyntax
                    && spans.TrueForAll(s => s.SyntaxTree == node.SyntaxTree && node.Span.Contains(s.Span)))
                {
                    if (!ranges.TryGetValue(node, out var known) || loop.Last - loop.Header > known.Last - known.Header)
                    {
                        ranges[node] = loop;
                    }

                    break;
                }
            }
        }

        return ranges;
    }

    /// <summary>
    /// True when the statement-level code at <paramref name="syntax"/> runs on every pass of <paramref name="loop"/> that goes
    /// round: its block comes before every branch back to the loop's first block. A <c>continue</c> or an <c>if</c> that
    /// can skip it makes it false.
    /// </summary>
    public bool RunsOnEveryPass(SyntaxNode syntax, (int Header, int Last) loop)
    {
        if (BlockOf(syntax) is not { } block || block < loop.Header || block > loop.Last)
        {
            return false;
        }

        var dominance = _dominance ??= new Dominance(_graph);
        var any = false;
        foreach (var predecessor in _graph.Blocks[loop.Header].Predecessors)
        {
            var source = predecessor.Source.Ordinal;
            if (source >= loop.Header && source <= loop.Last)
            {
                any = true;
                if (!dominance.BlockDominates(block, source))
                {
                    return false;
                }
            }
        }

        return any;
    }

    private Dominance? _dominance;

    /// <summary>
    /// True when a pass of <paramref name="loop"/> can leave it part way (a <c>break</c>, a <c>return</c>, a <c>goto</c>
    /// out): a branch from inside the loop to a block outside it, other than from the first block (a <c>while</c>'s or
    /// <c>for</c>'s condition, a <c>foreach</c>'s <c>MoveNext()</c>) or the last (a <c>do</c>'s condition).
    /// </summary>
    public bool CanLeaveMidPass((int Header, int Last) loop)
    {
        for (var ordinal = loop.Header + 1; ordinal < loop.Last; ordinal++)
        {
            var block = _graph.Blocks[ordinal];
            foreach (var branch in new[] { block.FallThroughSuccessor, block.ConditionalSuccessor })
            {
                if (branch?.Destination is { } destination && (destination.Ordinal < loop.Header || destination.Ordinal > loop.Last))
                {
                    return true;
                }
            }
        }

        return false;
    }
}
