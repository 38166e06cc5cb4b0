using System.Collections.Generic;
using System.Collections.Immutable;
using System.Linq;
using System.Threading;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using Microsoft.CodeAnalysis.FlowAnalysis;
using Microsoft.CodeAnalysis.Operations;
using MlPitfalls.Analyzers.Infrastructure;

namespace MlPitfalls.Analyzers.FlowAnalysis;

/// <summary>
/// The engine's abstract interpreter for analyses that track one kind of value per <see cref="AccessPath"/> (what a
/// tensor is, what mode a module is in, ...). It evaluates each operation tree in evaluation order, stores assigned
/// values (locals, fields, flow captures of <c>?.</c>, <c>??</c> and conditional expressions, <c>foreach</c> variables)
/// and leaves the meaning of calls and other operations to the analysis.
/// <list type="bullet">
/// <item>Local functions, and lambdas held in a local assigned once, run where they are <em>invoked</em>: their graph is
/// analysed from the caller's state, arguments bound to parameters, and their exit state and return value flow back.
/// Every lambda and local function is also analysed once on its own from an unknown state, because it may run anywhere
/// it is passed to (<c>optimizer.step(() =&gt; ...)</c>).</item>
/// <item>A call that may run user code forgets what such code could change: members and fields, and locals that a
/// lambda or local function assigns.</item>
/// <item>Every evaluated value is recorded by syntax, joined over all evaluations (loop iterations, invocations of the
/// same lambda), so a rule asks <see cref="ValueFlowResult{TValue}.ValueOf"/> for the value an expression has on every path.</item>
/// </list>
/// One instance analyses one body; it is not thread-safe.
/// </summary>
internal abstract class ValueFlowAnalysis<TValue> : ForwardDataFlow<PathState<TValue>>
{
    /// <summary>How many local functions or lambdas deep the analysis follows invocations.</summary>
    private const int MaxNesting = 4;

    /// <summary>How many entry states a local function or lambda is analysed from exactly before it runs from their join.</summary>
    private const int MaxExactRuns = 2;

    /// <summary>
    /// How deep one expression tree is evaluated (a sum of thousands of terms nests that deep); beyond it the value is
    /// unknown and the result is not trusted, rather than overflowing the stack.
    /// </summary>
    private const int MaxExpressionDepth = 400;

    private int _depth;
    private ControlFlowGraph? _factsGraph;
    private GraphFacts? _facts;

    // Made by AnalyzeBody: an instance that only answers single questions (a provenance read without the graph) needs none.
    private Dictionary<SyntaxNode, TValue> _records = null!;
    private HashSet<ControlFlowGraph> _running = null!;
    private HashSet<ControlFlowGraph> _analysedAlone = null!;
    private Dictionary<ControlFlowGraph, List<(PathState<TValue> Entry, PathState<TValue> Exit, TValue Returned)>> _invokedRuns = null!;
    private Dictionary<ControlFlowGraph, (PathState<TValue> Entry, PathState<TValue> Exit, TValue Returned)> _widenedRuns = null!;
    private Dictionary<ControlFlowRegion, (ImmutableArray<AccessPath> Written, bool Calls)> _finallyEffects = null!;
    private TValue _returned;
    private bool _converged = true;
    private CancellationToken _cancellationToken;

    protected ValueFlowAnalysis(IValueLattice<TValue> values)
        : base(new PathStateLattice<TValue>(values))
    {
        Values = values;
        _returned = values.Bottom;
    }

    protected IValueLattice<TValue> Values { get; }

    protected override PathState<TValue> HandlerEntryState => PathState<TValue>.Empty;

    /// <summary>
    /// Analyses the body <paramref name="graph"/> was built for, with every lambda and local function in it, from a state
    /// in which nothing is known (parameters, fields).
    /// </summary>
    public ValueFlowResult<TValue> AnalyzeBody(ControlFlowGraph graph, CancellationToken cancellationToken)
        => AnalyzeBody(graph, PathState<TValue>.Empty, cancellationToken);

    /// <summary>Analyses the body <paramref name="graph"/> was built for from <paramref name="entry"/> (a summary's seeded parameters and fields).</summary>
    public ValueFlowResult<TValue> AnalyzeBody(ControlFlowGraph graph, PathState<TValue> entry, CancellationToken cancellationToken)
    {
        Start(cancellationToken);
        var (flow, returned) = RunGraph(graph, entry, nesting: 0);
        return new ValueFlowResult<TValue>(_records, returned, _converged, Values, flow);
    }

    /// <summary>
    /// The values in a loop's later iterations: the blocks <paramref name="first"/> (the loop's first block) to
    /// <paramref name="last"/> (the last block branching back to it) run from <paramref name="entry"/>, the state the
    /// loop's back edges bring in <see cref="ValueFlowResult{TValue}.Flow"/> of the whole body. What a rule reads here
    /// holds on every path that has gone round the loop at least once, which the whole body's join with the first
    /// entry cannot say (the classic mode bug: train() before the epoch loop, eval() at the end of each epoch).
    /// </summary>
    public ValueFlowResult<TValue> AnalyzeLaterIterations(ControlFlowGraph graph, int first, int last, PathState<TValue> entry, CancellationToken cancellationToken)
    {
        Start(cancellationToken);
        _running.Add(graph);
        var flow = Run(graph, entry, first, last, cancellationToken);
        _running.Remove(graph);
        _converged &= flow.Converged;
        return new ValueFlowResult<TValue>(_records, Values.Unknown, _converged, Values, flow);
    }

    private void Start(CancellationToken cancellationToken)
    {
        _cancellationToken = cancellationToken;
        _records = new Dictionary<SyntaxNode, TValue>();
        _running = new HashSet<ControlFlowGraph>();
        _analysedAlone = new HashSet<ControlFlowGraph>();
        _invokedRuns = new Dictionary<ControlFlowGraph, List<(PathState<TValue>, PathState<TValue>, TValue)>>();
        _widenedRuns = new Dictionary<ControlFlowGraph, (PathState<TValue>, PathState<TValue>, TValue)>();
        _finallyEffects = new Dictionary<ControlFlowRegion, (ImmutableArray<AccessPath> Written, bool Calls)>();
        _converged = true;
    }

    /// <summary>The value of a call the engine does not run itself: the analysis' meaning of library and source methods.</summary>
    protected abstract TValue VisitInvocation(
        IInvocationOperation invocation, TValue instance, ImmutableArray<TValue> arguments, ref PathState<TValue> state, FlowContext context);

    /// <summary>True when the call can run user code that changes fields or captured locals (the default); false for known library calls.</summary>
    protected virtual bool MayChangeState(IInvocationOperation invocation) => true;

    /// <summary>The value of a path nothing was stored at (a field read, <c>x.T</c> on a tracked <c>x</c>, ...).</summary>
    protected virtual TValue ReadUntracked(IOperation reference, AccessPath path, PathState<TValue> state, FlowContext context) => Values.Unknown;

    /// <summary>
    /// <see cref="ReadUntracked(IOperation, AccessPath, PathState{TValue}, FlowContext)"/> for an analysis that gives an
    /// untracked variable a value at its first read and keeps it (the shape analysis names the dimensions of a tensor it
    /// meets for the first time, so that every later read of the variable speaks of the same dimensions).
    /// </summary>
    protected virtual TValue ReadUntracked(IOperation reference, AccessPath path, ref PathState<TValue> state, FlowContext context)
        => ReadUntracked(reference, path, state, context);

    /// <summary>
    /// Whether rules may ask <see cref="ValueFlowResult{TValue}.ValueOf"/> about <paramref name="operation"/>: only those
    /// are recorded (every evaluation writes a record, which dominates the cost of an analysis whose values live on a
    /// few expressions).
    /// </summary>
    protected virtual bool IsAskedAbout(IOperation operation) => true;

    /// <summary>The value of any other operation, given its children's values in evaluation order.</summary>
    protected virtual TValue VisitOther(IOperation operation, List<TValue> children, FlowContext context) => Values.Unknown;

    /// <summary>
    /// <see cref="VisitOther(IOperation, List{TValue}, FlowContext)"/> for an analysis that learns about a variable by
    /// reading it (the shape analysis: <c>x.shape[1]</c> names a dimension of whatever <c>x</c> holds from then on).
    /// </summary>
    protected virtual TValue VisitOther(IOperation operation, List<TValue> children, ref PathState<TValue> state, FlowContext context)
        => VisitOther(operation, children, context);

    protected override PathState<TValue> TransferOperation(IOperation operation, PathState<TValue> state, FlowContext context)
    {
        Evaluate(operation, ref state, context);
        return state;
    }

    protected override PathState<TValue> TransferBranchValue(IOperation branchValue, PathState<TValue> state, FlowContext context)
    {
        var value = Evaluate(branchValue, ref state, context);
        if (context.IsReturn)
        {
            _returned = Values.Join(_returned, value);
        }

        return state;
    }

    protected override PathState<TValue> AfterFinally(PathState<TValue> state, ControlFlowRegion finallyRegion, ControlFlowGraph graph)
    {
        if (!_finallyEffects.TryGetValue(finallyRegion, out var effects))
        {
            var written = ImmutableArray.CreateBuilder<AccessPath>();
            var calls = false;
            for (var ordinal = finallyRegion.FirstBlockOrdinal; ordinal <= finallyRegion.LastBlockOrdinal; ordinal++)
            {
                var block = graph.Blocks[ordinal];
                foreach (var operation in block.Operations)
                {
                    CollectEffects(operation, written, ref calls);
                }

                if (block.BranchValue is { } branchValue)
                {
                    CollectEffects(branchValue, written, ref calls);
                }
            }

            effects = (written.ToImmutable(), calls);
            _finallyEffects[finallyRegion] = effects;
        }

        foreach (var path in effects.Written)
        {
            state = state.Forget(path.IsPrefixOf);
        }

        return effects.Calls ? ForgetWhatCallsCanChange(state, graph) : state;
    }

    private void CollectEffects(IOperation root, ImmutableArray<AccessPath>.Builder written, ref bool calls)
    {
        foreach (var operation in root.DescendantsAndSelf())
        {
            switch (operation)
            {
                case IAssignmentOperation assignment when AccessPath.Of(assignment.Target) is { } target:
                    written.Add(target);
                    break;
                case IIncrementOrDecrementOperation increment when AccessPath.Of(increment.Target) is { } target:
                    written.Add(target);
                    break;
                case IDeconstructionAssignmentOperation deconstruction:
                    written.AddRange(WrittenPaths(deconstruction));
                    break;
                case IArgumentOperation { Parameter.RefKind: RefKind.Ref or RefKind.Out } byReference when AccessPath.Of(byReference.Value) is { } target:
                    written.Add(target);
                    break;
                case IInvocationOperation invocation when MayChangeState(invocation):
                    calls = true;
                    break;
            }
        }
    }

    protected override PathState<TValue> LeaveRegion(PathState<TValue> state, ControlFlowRegion region)
    {
        if (state.Values.Count == 0 || (region.Locals.IsEmpty && region.CaptureIds.IsEmpty))
        {
            return state;
        }

        return state.Forget(path => path.IsScopedTo(region));
    }

    /// <summary>Evaluates <paramref name="operation"/> in evaluation order, applying its effects to <paramref name="state"/>.</summary>
    protected TValue Evaluate(IOperation operation, ref PathState<TValue> state, FlowContext context)
    {
        if (_depth >= MaxExpressionDepth)
        {
            _converged = false;
            return Values.Unknown;
        }

        _depth++;
        try
        {
            return EvaluateCore(operation, ref state, context);
        }
        finally
        {
            _depth--;
        }
    }

    private TValue EvaluateCore(IOperation operation, ref PathState<TValue> state, FlowContext context)
    {
        TValue value;
        switch (operation)
        {
            case ISimpleAssignmentOperation assignment:
                value = Evaluate(assignment.Value, ref state, context);
                Assign(assignment.Target, value, ref state, context);
                break;
            case IFlowCaptureOperation capture:
                value = Evaluate(capture.Value, ref state, context);
                state = state.Set(AccessPath.ForCapture(capture.Id), value, Values);
                break;
            case IFlowCaptureReferenceOperation reference:
                value = state.Get(AccessPath.ForCapture(reference.Id), Values);
                break;
            case IConversionOperation conversion:
                value = Evaluate(conversion.Operand, ref state, context);
                break;
            case IInvocationOperation invocation:
                value = EvaluateInvocation(invocation, ref state, context);
                break;
            case IFlowAnonymousFunctionOperation lambda:
                AnalyseAlone(context.Graph.GetAnonymousFunctionControlFlowGraphInScope(lambda), context);
                value = Values.Unknown;
                break;
            case IDeconstructionAssignmentOperation { Target: var target, Value: var tupleValue }
                when TupleElements(target) is { } targets && TupleElements(tupleValue) is { } values && targets.Length == values.Length:
                // var (b, c) = (x.shape[0], x.shape[1]): each element is assigned its own value, all evaluated first.
                var elementValues = new TValue[values.Length];
                for (var i = 0; i < values.Length; i++)
                {
                    elementValues[i] = Evaluate(values[i], ref state, context);
                }

                for (var i = 0; i < targets.Length; i++)
                {
                    Assign(targets[i], elementValues[i], ref state, context);
                }

                value = Values.Unknown;
                break;
            case ICompoundAssignmentOperation or IIncrementOrDecrementOperation or IDeconstructionAssignmentOperation:
                EvaluateChildren(operation, ref state, context);
                value = Values.Unknown;
                foreach (var written in WrittenPaths(operation))
                {
                    state = state.Forget(written.IsPrefixOf);
                }

                break;
            case ILocalReferenceOperation or IParameterReferenceOperation or IFieldReferenceOperation or IPropertyReferenceOperation
                when AccessPath.Of(operation) is { } path:
                value = state.Values.TryGetValue(path, out var stored) ? stored : ReadUntracked(operation, path, ref state, context);
                break;
            default:
                var children = EvaluateChildren(operation, ref state, context);
                value = VisitOther(operation, children, ref state, context);
                break;
        }

        if ((!operation.IsImplicit || operation is IFlowCaptureReferenceOperation) && IsAskedAbout(operation))
        {
            Record(operation.Syntax, value);
        }

        return value;
    }

    private List<TValue> EvaluateChildren(IOperation operation, ref PathState<TValue> state, FlowContext context)
    {
        var values = new List<TValue>();
        foreach (var child in operation.ChildOperations)
        {
            values.Add(Evaluate(child, ref state, context));
        }

        return values;
    }

    private void Assign(IOperation target, TValue value, ref PathState<TValue> state, FlowContext context)
    {
        if (target is ILocalReferenceOperation { Local.IsRef: true })
        {
            state = state.Forget(static _ => true); // a ref local may alias any variable or field
            return;
        }

        if (target is IDeclarationExpressionOperation declaration)
        {
            target = declaration.Expression; // a local declared by a deconstruction
        }

        if (AccessPath.Of(target) is { } path)
        {
            state = state.Set(path, value, Values);
        }
        else
        {
            EvaluateChildren(target, ref state, context); // a[i] = v: evaluate a and i
            if (target is IArrayElementReferenceOperation { ArrayReference: var array } && AccessPath.Of(array) is { } arrayPath)
            {
                state = state.Forget(arrayPath.IsPrefixOf); // what was known of the array's elements no longer holds
            }
        }
    }

    /// <summary>The elements of a tuple written or read element by element (<c>(a, b)</c>, <c>var (a, b)</c>); null for anything else or a nested tuple.</summary>
    private static ImmutableArray<IOperation>? TupleElements(IOperation operation)
    {
        operation = operation.WithoutConversions()!;
        if (operation is IDeclarationExpressionOperation declaration)
        {
            operation = declaration.Expression;
        }

        if (operation is not ITupleOperation tuple)
        {
            return null;
        }

        foreach (var element in tuple.Elements)
        {
            if (element.WithoutConversions() is ITupleOperation or IDeclarationExpressionOperation { Expression: ITupleOperation })
            {
                return null;
            }
        }

        return tuple.Elements;
    }

    private TValue EvaluateInvocation(IInvocationOperation invocation, ref PathState<TValue> state, FlowContext context)
    {
        var instance = invocation.Instance is { } receiver ? Evaluate(receiver, ref state, context) : Values.Unknown;
        var arguments = ImmutableArray.CreateBuilder<TValue>(invocation.Arguments.Length);
        foreach (var argument in invocation.Arguments)
        {
            var value = Evaluate(argument.Value, ref state, context);
            arguments.Add(value);
        }

        foreach (var argument in invocation.Arguments)
        {
            if (argument.Parameter?.RefKind is RefKind.Ref or RefKind.Out && AccessPath.Of(argument.Value) is { } written)
            {
                state = state.Forget(written.IsPrefixOf);
            }
        }

        if (InvokedGraph(invocation, context) is { } invoked && _running.Count < MaxNesting && !_running.Contains(invoked.Graph))
        {
            var entry = state;
            for (var i = 0; i < invocation.Arguments.Length; i++)
            {
                if (invocation.Arguments[i].Parameter is { } parameter && parameter.Ordinal < invoked.Parameters.Length)
                {
                    entry = entry.Set(AccessPath.ForSymbol(invoked.Parameters[parameter.Ordinal]), arguments[i], Values);
                }
            }

            _invocations.Add(invocation);
            try
            {
                var (exit, returned) = RunInvoked(invoked.Graph, entry);
                state = exit.IsReached ? exit : state;
                return returned;
            }
            finally
            {
                _invocations.RemoveAt(_invocations.Count - 1);
            }
        }

        if (MayChangeState(invocation))
        {
            state = ForgetWhatCallsCanChange(state, context.Graph);
        }

        return VisitInvocation(invocation, instance, arguments.MoveToImmutable(), ref state, context);
    }

    /// <summary>
    /// The call in the analysed body's own graph that runs the local function or lambda being analysed now (through any
    /// calls nested in it); null while the body's own code runs. A rule names what such a call does by this call.
    /// </summary>
    protected IInvocationOperation? OutermostInvocation => _invocations.Count > 0 ? _invocations[0] : null;

    private readonly List<IInvocationOperation> _invocations = new();

    /// <summary>
    /// Runs the function <paramref name="delegateValue"/> denotes here, from <paramref name="state"/>, as if called at
    /// this point: a lambda written in place, a local function handed over as a method group, or a local holding one
    /// known lambda. For an analysis that knows a call runs its delegate argument there (an optimizer's
    /// <c>step(closure)</c>). False, with the state unchanged, when the function is not known or runs already.
    /// </summary>
    protected bool TryRunDelegate(IOperation delegateValue, ref PathState<TValue> state, FlowContext context)
    {
        var value = delegateValue.WithoutConversions();
        while (value is IDelegateCreationOperation creation)
        {
            value = creation.Target.WithoutConversions();
        }

        var graph = value switch
        {
            IFlowAnonymousFunctionOperation lambda => context.Graph.GetAnonymousFunctionControlFlowGraphInScope(lambda, context.CancellationToken),
            IMethodReferenceOperation { Method.MethodKind: MethodKind.LocalFunction } reference => LocalFunctionGraph(reference.Method, context)?.Graph,
            ILocalReferenceOperation { Local: var local } when FactsOf(context.Graph).SingleLambdaOf(local, context.Graph) is { } held
                => context.Graph.GetAnonymousFunctionControlFlowGraphInScope(held, context.CancellationToken),
            _ => null,
        };

        if (graph is null || _running.Count >= MaxNesting || _running.Contains(graph))
        {
            return false;
        }

        var (exit, _) = RunInvoked(graph, state);
        state = exit.IsReached ? exit : state;
        return true;
    }

    private (PathState<TValue> Exit, TValue Returned) RunInvoked(ControlFlowGraph graph, PathState<TValue> entry)
    {
        if (!_invokedRuns.TryGetValue(graph, out var runs))
        {
            _invokedRuns[graph] = runs = new List<(PathState<TValue>, PathState<TValue>, TValue)>();
        }

        foreach (var run in runs)
        {
            if (Lattice.Equals(run.Entry, entry))
            {
                return (run.Exit, run.Returned);
            }
        }

        if (runs.Count >= MaxExactRuns)
        {
            // A local function called in a loop of a local function called in a loop (a training step inside an epoch
            // helper) meets a new entry state on every pass of every enclosing fixed point: runs multiply with the depth.
            // From here on it runs from the join of every entry it met, which only grows (finite height), and whatever
            // it yields holds for each of them.
            var widened = entry;
            foreach (var run in runs)
            {
                widened = Lattice.Join(widened, run.Entry);
            }

            if (_widenedRuns.TryGetValue(graph, out var last))
            {
                widened = Lattice.Join(widened, last.Entry);
                if (Lattice.Equals(widened, last.Entry))
                {
                    return (last.Exit, last.Returned);
                }
            }

            var (widenedFlow, widenedReturned) = RunGraph(graph, widened, _running.Count + 1);
            _widenedRuns[graph] = (widened, widenedFlow.Exit, widenedReturned);
            return (widenedFlow.Exit, widenedReturned);
        }

        var (flow, returned) = RunGraph(graph, entry, _running.Count + 1);
        runs.Add((entry, flow.Exit, returned));
        return (flow.Exit, returned);
    }

    private void AnalyseAlone(ControlFlowGraph graph, FlowContext context)
    {
        if (_analysedAlone.Contains(graph))
        {
            return;
        }

        if (_running.Count >= MaxNesting)
        {
            _converged = false; // a lambda that may run anywhere was not analysed: nothing found may be trusted
            return;
        }

        _analysedAlone.Add(graph);
        _detached++;
        try
        {
            RunGraph(graph, PathState<TValue>.Empty, _running.Count + 1);
        }
        finally
        {
            _detached--;
        }
    }

    /// <summary>
    /// True while a lambda or local function is analysed on its own, from a state in which nothing is known, because it
    /// may run wherever it is handed to: what an analysis sees there says nothing about the body's own paths.
    /// </summary>
    protected bool RunsDetached => _detached > 0;

    private int _detached;

    private (FlowResult<PathState<TValue>> Flow, TValue Returned) RunGraph(ControlFlowGraph graph, PathState<TValue> entry, int nesting)
    {
        var outerReturned = _returned;
        _returned = Values.Bottom;
        _running.Add(graph);
        try
        {
            var flow = Run(graph, entry, _cancellationToken);
            _converged &= flow.Converged;
            var returned = _returned;
            foreach (var localFunction in graph.LocalFunctions)
            {
                var nested = graph.GetLocalFunctionControlFlowGraph(localFunction, _cancellationToken);
                if (_analysedAlone.Contains(nested))
                {
                    continue;
                }

                if (nesting >= MaxNesting)
                {
                    _converged = false;
                    continue;
                }

                _analysedAlone.Add(nested);
                _detached++;
                try
                {
                    RunGraph(nested, PathState<TValue>.Empty, nesting + 1);
                }
                finally
                {
                    _detached--;
                }
            }

            return (flow, returned);
        }
        finally
        {
            _running.Remove(graph);
            _returned = outerReturned;
        }
    }

    /// <summary>What user code run by a call could change: any member path, and the locals a lambda or local function assigns.</summary>
    protected PathState<TValue> ForgetWhatCallsCanChange(PathState<TValue> state, ControlFlowGraph graph)
    {
        var facts = FactsOf(graph);
        if (state.MemberPaths == 0 && !facts.HasWritesByNestedFunctions)
        {
            return state;
        }

        return state.Forget(path => path.Root is { } root && (!path.IsVariable || facts.IsWrittenByNestedFunction(root)));
    }

    /// <summary>
    /// The facts of <paramref name="graph"/>'s body, kept by this analysis: every call that may run user code asks, and
    /// the shared table need not be consulted each time.
    /// </summary>
    protected GraphFacts FactsOf(ControlFlowGraph graph)
    {
        if (!ReferenceEquals(graph, _factsGraph))
        {
            _facts = GraphFacts.For(graph);
            _factsGraph = graph;
        }

        return _facts!;
    }

    private void Record(SyntaxNode syntax, TValue value)
        => _records[syntax] = _records.TryGetValue(syntax, out var previous) ? Values.Join(previous, value) : value;

    private static IEnumerable<AccessPath> WrittenPaths(IOperation operation)
    {
        switch (operation)
        {
            case ICompoundAssignmentOperation compound when AccessPath.Of(compound.Target) is { } target:
                yield return target;
                break;
            case IIncrementOrDecrementOperation increment when AccessPath.Of(increment.Target) is { } target:
                yield return target;
                break;
            case IDeconstructionAssignmentOperation deconstruction:
                foreach (var element in deconstruction.Target.DescendantsAndSelf())
                {
                    if (element is ILocalReferenceOperation or IParameterReferenceOperation or IFieldReferenceOperation or IPropertyReferenceOperation
                        && AccessPath.Of(element) is { } path)
                    {
                        yield return path;
                    }
                }

                break;
        }
    }

    /// <summary>The graph an invocation runs when it calls a local function or a lambda held in a local assigned once.</summary>
    private InvokedFunction? InvokedGraph(IInvocationOperation invocation, FlowContext context)
    {
        var method = invocation.TargetMethod;
        if (method.MethodKind == MethodKind.LocalFunction)
        {
            return LocalFunctionGraph(method, context);
        }

        if (method.MethodKind == MethodKind.DelegateInvoke && invocation.Instance is ILocalReferenceOperation { Local: var local }
            && FactsOf(context.Graph).SingleLambdaOf(local, context.Graph) is { } lambda)
        {
            return new InvokedFunction(context.Graph.GetAnonymousFunctionControlFlowGraphInScope(lambda, context.CancellationToken), lambda.Symbol.Parameters);
        }

        return null;
    }

    /// <summary>The graph of a local function declared in the running graph or one around it, when it runs where it is called.</summary>
    private static InvokedFunction? LocalFunctionGraph(IMethodSymbol method, FlowContext context)
    {
        var definition = method.OriginalDefinition;
        if (definition.IsAsync || definition.DeclaringSyntaxReferences.Any(r => r.GetSyntax(context.CancellationToken) is LocalFunctionStatementSyntax function && SourceMethodBodies.IsIterator(function)))
        {
            return null; // its body runs while it is enumerated, or after an await: not at the call
        }

        for (var graph = context.Graph; graph is not null; graph = graph.Parent)
        {
            if (graph.LocalFunctions.Contains(definition, SymbolEqualityComparer.Default))
            {
                return new InvokedFunction(graph.GetLocalFunctionControlFlowGraph(definition, context.CancellationToken), definition.Parameters);
            }
        }

        return null;
    }

    private sealed class InvokedFunction
    {
        public InvokedFunction(ControlFlowGraph graph, ImmutableArray<IParameterSymbol> parameters)
        {
            Graph = graph;
            Parameters = parameters;
        }

        public ControlFlowGraph Graph { get; }

        public ImmutableArray<IParameterSymbol> Parameters { get; }
    }
}

/// <summary>What a <see cref="ValueFlowAnalysis{TValue}"/> found in one body.</summary>
internal sealed class ValueFlowResult<TValue>
{
    private readonly IReadOnlyDictionary<SyntaxNode, TValue> _records;
    private readonly IValueLattice<TValue> _lattice;

    public ValueFlowResult(
        IReadOnlyDictionary<SyntaxNode, TValue> records, TValue returned, bool converged, IValueLattice<TValue> lattice, FlowResult<PathState<TValue>>? flow = null)
    {
        _records = records;
        _lattice = lattice;
        Returned = converged ? returned : lattice.Unknown;
        Converged = converged;
        Flow = flow;
    }

    /// <summary>The fixed point over the body's own graph (block states, back-edge states, exit state); null when not run on a graph.</summary>
    public FlowResult<PathState<TValue>>? Flow { get; }

    /// <summary>The join of every value the body returns (the lattice's bottom when it never returns a value).</summary>
    public TValue Returned { get; }

    /// <summary>False when a graph hit the engine's iteration cap; every answer is then <c>Unknown</c>.</summary>
    public bool Converged { get; }

    /// <summary>
    /// The value <paramref name="expression"/> has whenever it is evaluated, joined over every path and every run that
    /// reaches it; <c>Unknown</c> when it was never evaluated (unreachable code) or the analysis did not converge.
    /// </summary>
    public TValue ValueOf(SyntaxNode expression)
        => Converged && _records.TryGetValue(expression, out var value) ? value : _lattice.Unknown;
}
