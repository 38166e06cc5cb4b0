using System.Collections.Generic;
using System.Collections.Immutable;
using System.Threading;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.FlowAnalysis;

namespace MlPitfalls.Analyzers.FlowAnalysis;

/// <summary>
/// A forward dataflow analysis over Roslyn's <see cref="ControlFlowGraph"/>: a worklist over basic blocks that runs
/// each block's operations through <see cref="TransferOperation"/> and joins the states of the branches meeting at a
/// block until nothing changes (a fixed point, so loop back edges carry what one iteration leaves to the next).
/// Exceptions are handled conservatively: a catch, filter or finally handler may be entered from anywhere in its try
/// block, so it starts from <see cref="HandlerEntryState"/>; a branch that leaves through finally handlers passes
/// through <see cref="AfterFinally"/>.
/// </summary>
internal abstract class ForwardDataFlow<TState>
{
    protected ForwardDataFlow(ILattice<TState> lattice) => Lattice = lattice;

    public ILattice<TState> Lattice { get; }

    /// <summary>The state a catch, filter or finally handler starts in (it may be entered from any point of its try block).</summary>
    protected abstract TState HandlerEntryState { get; }

    /// <summary>The effect of one operation of a block (a statement-level operation of <see cref="BasicBlock.Operations"/>).</summary>
    protected abstract TState TransferOperation(IOperation operation, TState state, FlowContext context);

    /// <summary>
    /// The effect of a block's branch value: a condition, a switch value, a thrown exception or the value a
    /// <c>return</c> gives back (then <see cref="FlowContext.IsReturn"/> is true).
    /// </summary>
    protected virtual TState TransferBranchValue(IOperation branchValue, TState state, FlowContext context)
        => TransferOperation(branchValue, state, context);

    /// <summary>
    /// The state after a branch has run <paramref name="finallyRegion"/> on its way out of a try block. The handler
    /// body itself is analysed from <see cref="HandlerEntryState"/>; this decides what its effects do to <paramref name="state"/>.
    /// </summary>
    protected abstract TState AfterFinally(TState state, ControlFlowRegion finallyRegion, ControlFlowGraph graph);

    /// <summary>
    /// The state along one way out of a block that branches on its <see cref="BasicBlock.BranchValue"/>: the conditional
    /// branch when <paramref name="conditional"/> (taken when the value is <see cref="BasicBlock.ConditionKind"/>), else
    /// the fall-through. An analysis whose effect depends on the outcome (a <c>foreach</c>'s <c>MoveNext()</c>: the
    /// iterator ran to its next <c>yield</c>, or to its end) refines the state here.
    /// </summary>
    /// <remarks>
    /// <paramref name="arrived"/> splits the block's input by where it came from (the state before its operations), for
    /// an effect that differs between the first time a loop's head is reached and the times after.
    /// </remarks>
    protected virtual TState AlongBranch(ControlFlowGraph graph, BasicBlock block, TState state, BranchInputs arrived, bool conditional) => state;

    /// <summary>A block's input split by the edges it came along: from earlier blocks, or back from later ones (a loop's back edges).</summary>
    protected readonly struct BranchInputs
    {
        public BranchInputs(TState forward, TState back)
        {
            Forward = forward;
            Back = back;
        }

        public TState Forward { get; }

        public TState Back { get; }
    }

    /// <summary>
    /// The state once a branch has left <paramref name="region"/>: what only lived in it (its locals, its flow captures)
    /// can be dropped, which keeps states, joins and comparisons as small as what is in scope.
    /// </summary>
    protected virtual TState LeaveRegion(TState state, ControlFlowRegion region) => state;

    /// <summary>Runs the analysis over <paramref name="graph"/> from <paramref name="entry"/> to a fixed point.</summary>
    public FlowResult<TState> Run(ControlFlowGraph graph, TState entry, CancellationToken cancellationToken)
        => Run(graph, entry, 0, graph.Blocks.Length - 1, cancellationToken);

    /// <summary>
    /// Runs the analysis over the blocks <paramref name="first"/> to <paramref name="last"/> only, entering at
    /// <paramref name="first"/> with <paramref name="entry"/>: a loop's later iterations, entered from the state its back
    /// edges bring (<see cref="FlowResult{TState}.BackEdgeInputs"/>), without the path that enters it the first time.
    /// Branches to blocks outside the range are not followed.
    /// </summary>
    public FlowResult<TState> Run(ControlFlowGraph graph, TState entry, int first, int last, CancellationToken cancellationToken)
    {
        var blocks = graph.Blocks;
        var inputs = new TState[blocks.Length];
        var backEdgeInputs = new TState[blocks.Length];
        var forwardInputs = new TState[blocks.Length];
        for (var i = 0; i < inputs.Length; i++)
        {
            inputs[i] = Lattice.Bottom;
            backEdgeInputs[i] = Lattice.Bottom;
            forwardInputs[i] = Lattice.Bottom;
        }

        var worklist = new SortedSet<int>();
        var range = (First: first, Last: last);
        inputs[first] = entry;
        worklist.Add(first);
        SeedHandlers(graph.Root, inputs, worklist, range);

        // Lattices here have finite height, so the loop ends; the cap keeps a bug in a lattice from becoming a hang.
        var budget = (blocks.Length * 32) + 64;
        var exit = Lattice.Bottom;
        while (worklist.Count > 0)
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (--budget < 0)
            {
                return new FlowResult<TState>(ImmutableArray.Create(inputs), ImmutableArray.Create(backEdgeInputs), Lattice.Bottom, converged: false);
            }

            var ordinal = worklist.Min;
            worklist.Remove(ordinal);
            var block = blocks[ordinal];
            var state = inputs[ordinal];
            if (block.Kind == BasicBlockKind.Exit)
            {
                exit = state;
                continue;
            }

            var context = new FlowContext(graph, block, isReturn: false, cancellationToken);
            foreach (var operation in block.Operations)
            {
                state = TransferOperation(operation, state, context);
            }

            if (block.BranchValue is { } branchValue)
            {
                var isReturn = block.FallThroughSuccessor?.Semantics == ControlFlowBranchSemantics.Return;
                state = TransferBranchValue(branchValue, state, new FlowContext(graph, block, isReturn, cancellationToken));
            }

            if (block.ConditionalSuccessor is not null)
            {
                // What arrived from before the loop the block may head, and what came round it (in a run of a loop's later
                // iterations, the entry state came round too).
                var arrived = new BranchInputs(forwardInputs[ordinal], ordinal == first && first != 0 ? Lattice.Join(backEdgeInputs[ordinal], entry) : backEdgeInputs[ordinal]);
                Propagate(block.FallThroughSuccessor, AlongBranch(graph, block, state, arrived, conditional: false), inputs, backEdgeInputs, forwardInputs, worklist, graph, range);
                Propagate(block.ConditionalSuccessor, AlongBranch(graph, block, state, arrived, conditional: true), inputs, backEdgeInputs, forwardInputs, worklist, graph, range);
            }
            else
            {
                Propagate(block.FallThroughSuccessor, state, inputs, backEdgeInputs, forwardInputs, worklist, graph, range);
            }
        }

        return new FlowResult<TState>(ImmutableArray.Create(inputs), ImmutableArray.Create(backEdgeInputs), exit, converged: true);
    }

    private void Propagate(
        ControlFlowBranch? branch, TState state, TState[] inputs, TState[] backEdgeInputs, TState[] forwardInputs, SortedSet<int> worklist, ControlFlowGraph graph, (int First, int Last) range)
    {
        if (branch?.Destination is not { } destination)
        {
            return; // leaves the graph by throwing, or ends a finally handler (its continuation is AfterFinally)
        }

        if (destination.Ordinal < range.First || destination.Ordinal > range.Last)
        {
            return; // leaves the part of the graph being run (a loop's exit, in a run of its later iterations)
        }

        foreach (var finallyRegion in branch.FinallyRegions)
        {
            state = AfterFinally(state, finallyRegion, graph);
        }

        foreach (var left in branch.LeavingRegions)
        {
            state = LeaveRegion(state, left);
        }

        if (branch.Source.Ordinal >= destination.Ordinal)
        {
            // Blocks are laid out in source order, so a branch back to an earlier block (or the same one) closes a loop.
            backEdgeInputs[destination.Ordinal] = Lattice.Join(backEdgeInputs[destination.Ordinal], state);
        }
        else
        {
            forwardInputs[destination.Ordinal] = Lattice.Join(forwardInputs[destination.Ordinal], state);
        }

        var joined = Lattice.Join(inputs[destination.Ordinal], state);
        if (!Lattice.Equals(joined, inputs[destination.Ordinal]))
        {
            inputs[destination.Ordinal] = joined;
            worklist.Add(destination.Ordinal);
        }
    }

    private void SeedHandlers(ControlFlowRegion region, TState[] inputs, SortedSet<int> worklist, (int First, int Last) range)
    {
        if (region.Kind is ControlFlowRegionKind.Catch or ControlFlowRegionKind.Filter or ControlFlowRegionKind.Finally
            && region.FirstBlockOrdinal >= range.First && region.FirstBlockOrdinal <= range.Last)
        {
            inputs[region.FirstBlockOrdinal] = Lattice.Join(inputs[region.FirstBlockOrdinal], HandlerEntryState);
            worklist.Add(region.FirstBlockOrdinal);
        }

        foreach (var nested in region.NestedRegions)
        {
            SeedHandlers(nested, inputs, worklist, range);
        }
    }
}

/// <summary>Where a transfer function runs: the graph and block, and whether the operation is a returned value.</summary>
internal readonly struct FlowContext
{
    public FlowContext(ControlFlowGraph graph, BasicBlock block, bool isReturn, CancellationToken cancellationToken)
    {
        Graph = graph;
        Block = block;
        IsReturn = isReturn;
        CancellationToken = cancellationToken;
    }

    public ControlFlowGraph Graph { get; }

    public BasicBlock Block { get; }

    /// <summary>True while transferring the value a <c>return</c> statement (or an expression body) gives back.</summary>
    public bool IsReturn { get; }

    public CancellationToken CancellationToken { get; }
}

/// <summary>The fixed point of a run: the state at the start of every block and at the exit.</summary>
internal sealed class FlowResult<TState>
{
    public FlowResult(ImmutableArray<TState> blockInputs, ImmutableArray<TState> backEdgeInputs, TState exit, bool converged)
    {
        BlockInputs = blockInputs;
        BackEdgeInputs = backEdgeInputs;
        Exit = exit;
        Converged = converged;
    }

    /// <summary>The state on entry to each block, by ordinal; the lattice's bottom for blocks no path reaches.</summary>
    public ImmutableArray<TState> BlockInputs { get; }

    /// <summary>
    /// The state each block receives along back edges only (branches from itself or a later block, which close a loop):
    /// what one iteration of a loop leaves for the next, for the loop's first block; the lattice's bottom elsewhere.
    /// </summary>
    public ImmutableArray<TState> BackEdgeInputs { get; }

    /// <summary>The state at the exit block: the join over every path that returns normally.</summary>
    public TState Exit { get; }

    /// <summary>False when the run stopped at its iteration cap: nothing it found may be trusted.</summary>
    public bool Converged { get; }
}
