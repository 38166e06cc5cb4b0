using System;
using System.Collections.Generic;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.FlowAnalysis;
using Microsoft.CodeAnalysis.Operations;

namespace MlPitfalls.Analyzers.FlowAnalysis;

/// <summary>
/// Which code of a control-flow graph runs, on every path, before other code: a fact a path-insensitive record (every
/// <c>x.shape[i]</c> a body reads) needs before it may stand for "on every path here". Built on first use (block
/// dominators by Cooper, Harvey and Kennedy's iterative algorithm, and the block of each operation's syntax), so an
/// analysis that never asks pays nothing. Code outside the graph's own blocks (a lambda's or a local function's body) and
/// unreachable code precede nothing.
/// </summary>
internal sealed class Dominance
{
    private readonly ControlFlowGraph _graph;
    private Dictionary<SyntaxNode, (int Block, int Operation)>? _places;
    private int[]? _immediateDominator;
    private int[]? _postorder;

    public Dominance(ControlFlowGraph graph) => _graph = graph;

    /// <summary>True when <paramref name="earlier"/> runs before <paramref name="later"/> on every path that reaches <paramref name="later"/>.</summary>
    public bool Precedes(SyntaxNode earlier, SyntaxNode later)
    {
        EnsureBuilt();
        if (!_places!.TryGetValue(earlier, out var first) || !_places.TryGetValue(later, out var second))
        {
            return false;
        }

        if (first.Block != second.Block)
        {
            return Dominates(first.Block, second.Block);
        }

        if (first.Operation != second.Operation)
        {
            return first.Operation < second.Operation;
        }

        // One statement: operands run before the operation using them, and left before right.
        return earlier != later
               && (later.Span.Contains(earlier.Span) || (!earlier.Span.Contains(later.Span) && earlier.Span.End <= later.SpanStart));
    }

    /// <summary>True when block <paramref name="dominator"/> runs on every path from the entry to block <paramref name="block"/>.</summary>
    public bool BlockDominates(int dominator, int block)
    {
        EnsureBuilt();
        return Dominates(dominator, block);
    }

    private bool Dominates(int dominator, int block)
    {
        if (_postorder![block] < 0 || _postorder[dominator] < 0)
        {
            return false; // unreachable
        }

        for (var current = block; ; current = _immediateDominator![current])
        {
            if (current == dominator)
            {
                return true;
            }

            if (_immediateDominator![current] == current)
            {
                return false; // the entry
            }
        }
    }

    private void EnsureBuilt()
    {
        if (_places is not null)
        {
            return;
        }

        var blocks = _graph.Blocks;
        var places = new Dictionary<SyntaxNode, (int, int)>();
        foreach (var block in blocks)
        {
            for (var i = 0; i <= block.Operations.Length; i++)
            {
                var root = i < block.Operations.Length ? block.Operations[i] : block.BranchValue;
                if (root is null)
                {
                    continue;
                }

                foreach (var operation in root.DescendantsAndSelf())
                {
                    if (!places.ContainsKey(operation.Syntax))
                    {
                        places[operation.Syntax] = (block.Ordinal, i);
                    }
                }
            }
        }

        // Postorder numbers from the entry (iterative: a long method must not overflow the stack), then immediate
        // dominators to a fixed point in reverse postorder.
        var count = blocks.Length;
        var postorder = new int[count];
        var order = new List<int>(count);
        for (var i = 0; i < count; i++)
        {
            postorder[i] = -1;
        }

        var visited = new bool[count];
        var stack = new Stack<(int Block, int Next)>();
        stack.Push((0, 0));
        visited[0] = true;
        while (stack.Count > 0)
        {
            var (block, next) = stack.Pop();
            var successors = Successors(blocks[block]);
            if (next < successors.Count)
            {
                stack.Push((block, next + 1));
                var successor = successors[next];
                if (!visited[successor])
                {
                    visited[successor] = true;
                    stack.Push((successor, 0));
                }

                continue;
            }

            postorder[block] = order.Count;
            order.Add(block);
        }

        var idom = new int[count];
        for (var i = 0; i < count; i++)
        {
            idom[i] = -1;
        }

        idom[0] = 0;
        bool changed;
        do
        {
            changed = false;
            for (var k = order.Count - 1; k >= 0; k--)
            {
                var block = order[k];
                if (block == 0)
                {
                    continue;
                }

                var candidate = -1;
                foreach (var predecessor in blocks[block].Predecessors)
                {
                    var from = predecessor.Source.Ordinal;
                    if (idom[from] < 0)
                    {
                        continue;
                    }

                    candidate = candidate < 0 ? from : Intersect(candidate, from, idom, postorder);
                }

                if (candidate >= 0 && idom[block] != candidate)
                {
                    idom[block] = candidate;
                    changed = true;
                }
            }
        }
        while (changed);

        // A block only reached through exception handling has no dominator here: treat it as unreachable.
        for (var i = 0; i < count; i++)
        {
            if (idom[i] < 0)
            {
                postorder[i] = -1;
                idom[i] = i;
            }
        }

        _immediateDominator = idom;
        _postorder = postorder;
        _places = places;
    }

    private static int Intersect(int a, int b, int[] idom, int[] postorder)
    {
        while (a != b)
        {
            while (postorder[a] < postorder[b])
            {
                a = idom[a];
            }

            while (postorder[b] < postorder[a])
            {
                b = idom[b];
            }
        }

        return a;
    }

    private static List<int> Successors(BasicBlock block)
    {
        var successors = new List<int>(2);
        if (block.FallThroughSuccessor?.Destination is { } fallThrough)
        {
            successors.Add(fallThrough.Ordinal);
        }

        if (block.ConditionalSuccessor?.Destination is { } conditional)
        {
            successors.Add(conditional.Ordinal);
        }

        return successors;
    }
}
