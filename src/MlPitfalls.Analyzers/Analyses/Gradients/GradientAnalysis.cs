using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Collections.Immutable;
using System.Linq;
using System.Runtime.CompilerServices;
using System.Threading;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using Microsoft.CodeAnalysis.FlowAnalysis;
using Microsoft.CodeAnalysis.Operations;
using MlPitfalls.Analyzers.FlowAnalysis;
using MlPitfalls.Analyzers.Infrastructure;

namespace MlPitfalls.Analyzers.Analyses.Gradients;

/// <summary>
/// Gradient buffers on the dataflow engine: for each optimizer a body can name, its <see cref="GradientHistory"/> on
/// every path, and every site where the body (or a helper, local function or lambda it runs) calls backward(), steps an
/// optimizer or clears one, with the optimizer's history just before. backward() adds to every optimizer's buffers
/// (which parameters a loss reaches is not known); a step applies its optimizer's; <c>zero_grad()</c> of an optimizer,
/// of a module it holds the parameters of, or <c>p.grad = null</c> over a module's parameters clears them. Whatever
/// might clear without certainty (an optimizer that may be the same object under another name, a library call or an
/// overridable hook handed an optimizer or a module) only may clear, so it never makes a finding. A source method's
/// effect is a memoised summary: what it does to the optimizers its caller passes or shares, to the ones it cannot name,
/// and its own sites, all relative to the caller's state, so they compose at each call.
/// </summary>
internal sealed class GradientAnalysis : ValueFlowAnalysis<GradientHistory>
{
    private const string SummaryName = "gradients";

    private static readonly ConditionalWeakTable<ControlFlowGraph, GradientResult> Results = new();

    private static readonly ConditionalWeakTable<GradientResult, ConcurrentDictionary<(int, int), GradientResult>> LaterIterationResults = new();

    /// <summary>Library calls that store a delegate to run later, rather than run it (<c>callbacks.Add(() =&gt; ...)</c>).</summary>
    private static readonly ImmutableHashSet<string> StoresDelegates = ImmutableHashSet.Create(
        "Add", "Insert", "Enqueue", "Push", "AddRange", "Register", "Subscribe", "register_forward_hook", "register_forward_pre_hook", "register_backward_hook");

    private readonly AnalysisServices _services;
    private readonly OptimizerOrigins _origins;
    private readonly Dictionary<(GradientSiteKind, SyntaxNode, AccessPath?), GradientSite> _sites = new();
    private readonly CancellationToken _cancellationToken;

    /// <summary>Direct clears treated as not running (a rule's "what if these clears ran on no iteration").</summary>
    private readonly ImmutableHashSet<SyntaxNode> _ignoredClears;

    /// <summary>For a summary: the path standing for every optimizer the method cannot name; null for a member's own analysis.</summary>
    private readonly AccessPath? _others;

    private GradientAnalysis(AnalysisServices services, IOperation body, ImmutableHashSet<SyntaxNode>? ignoredClears, AccessPath? others, CancellationToken cancellationToken)
        : base(GradientHistory.Lattice)
    {
        _services = services;
        _origins = OptimizerOrigins.For(body, services);
        _ignoredClears = ignoredClears ?? ImmutableHashSet<SyntaxNode>.Empty;
        _others = others;
        _cancellationToken = cancellationToken;
    }

    private TorchSymbols Torch => _services.Torch;

    /// <summary>The gradient histories and sites of the body <paramref name="graph"/> was built for (computed once per graph).</summary>
    public static GradientResult For(AnalysisServices services, ControlFlowGraph graph, CancellationToken cancellationToken)
    {
        if (Results.TryGetValue(graph, out var cached))
        {
            return cached;
        }

        var analysis = new GradientAnalysis(services, Root(graph).OriginalOperation, ignoredClears: null, others: null, cancellationToken);
        var values = analysis.AnalyzeBody(graph, cancellationToken);
        var result = new GradientResult(values, analysis._sites.Values.ToImmutableArray());
        return Results.GetValue(graph, _ => result);
    }

    /// <summary>
    /// The histories and sites in the later iterations of the loop whose first block is <paramref name="first"/> and whose
    /// last block branching back is <paramref name="last"/>: entered only from what an iteration leaves, so a finding
    /// holds on every path that has gone round the loop once. <paramref name="ignoredClears"/> are direct clears run as
    /// if they were not there. Null when no iteration goes round.
    /// </summary>
    public static GradientResult? LaterIterations(
        AnalysisServices services, ControlFlowGraph graph, GradientResult whole, int first, int last, ImmutableHashSet<SyntaxNode>? ignoredClears, CancellationToken cancellationToken)
    {
        if (ignoredClears is { Count: > 0 })
        {
            // What an iteration leaves changes too: the body runs again without the clears (asked once per loop with a
            // conditional clear, so not cached).
            var without = new GradientAnalysis(services, Root(graph).OriginalOperation, ignoredClears, others: null, cancellationToken);
            whole = new GradientResult(without.AnalyzeBody(graph, cancellationToken), ImmutableArray<GradientSite>.Empty);
        }

        if (whole.Values.Flow is not { Converged: true } flow || !flow.BackEdgeInputs[first].IsReached)
        {
            return null;
        }

        GradientResult Run()
        {
            var analysis = new GradientAnalysis(services, Root(graph).OriginalOperation, ignoredClears, others: null, cancellationToken);
            var values = analysis.AnalyzeLaterIterations(graph, first, last, flow.BackEdgeInputs[first], cancellationToken);
            return new GradientResult(values, analysis._sites.Values.ToImmutableArray());
        }

        if (ignoredClears is { Count: > 0 })
        {
            return Run();
        }

        var loops = LaterIterationResults.GetValue(whole, static _ => new ConcurrentDictionary<(int, int), GradientResult>());
        return loops.GetOrAdd((first, last), _ => Run());
    }

    /// <summary>The graph of the member a local function's graph is nested in: where the optimizers' creations are found.</summary>
    private static ControlFlowGraph Root(ControlFlowGraph graph)
    {
        while (graph.Parent is { } parent)
        {
            graph = parent;
        }

        return graph;
    }

    protected override bool MayChangeState(IInvocationOperation invocation) => false; // VisitInvocation decides what each call changes

    protected override bool IsAskedAbout(IOperation operation) => false; // rules read sites, not expression values

    protected override PathState<GradientHistory> TransferOperation(IOperation operation, PathState<GradientHistory> state, FlowContext context)
    {
        var facts = Facts(context.Graph);
        if (!facts.Relevant.Contains(operation))
        {
            return state; // tensor arithmetic, a forward pass, logging: nothing in it touches gradients or names an optimizer
        }

        state = base.TransferOperation(operation, state, context);

        // p.grad = null: discards what backward() accumulated. Any other value (p.grad = p.grad.clamp(-1, 1)) keeps them.
        if ((operation is IExpressionStatementOperation statement ? statement.Operation : operation) is ISimpleAssignmentOperation assignment
            && IsGradReference(assignment.Target))
        {
            if (assignment.Value.ConstantValue is { HasValue: true, Value: null })
            {
                ClearParameterGrads(assignment.Target, assignment, ref state);
            }
            else if (!ReadsTheSameGrad(assignment))
            {
                MaybeClearAll(assignment, ref state); // p.grad = zeros_like(p), p.grad = Combine(...): replaced, maybe by zeros
            }
        }

        return state;
    }

    protected override GradientHistory VisitInvocation(
        IInvocationOperation invocation, GradientHistory instance, ImmutableArray<GradientHistory> arguments, ref PathState<GradientHistory> state, FlowContext context)
    {
        var method = invocation.TargetMethod;
        if (Torch.IsBackward(method))
        {
            Note(GradientSiteKind.Backward, invocation, path: null, GradientHistory.Unknown, definite: true, through: null);
            state = ApplyToAll(state, GradientHistory.Backward);
            return Values.Unknown;
        }

        if (Torch.IsOptimizerStep(method))
        {
            // step(closure) evaluates the closure (zero_grad, forward, backward) before it applies the gradients.
            foreach (var argument in invocation.Arguments)
            {
                if (argument.Value.Type?.TypeKind == TypeKind.Delegate && !TryRunDelegate(argument.Value, ref state, context)
                    && argument.Value.WithoutConversions() is IDelegateCreationOperation { Target: IMethodReferenceOperation reference }
                    && SourceMethodBodies.DefinitionWithBody(reference.Method) is var closure && HasBody(closure) && !SourceMethodBodies.IsIterator(closure, _cancellationToken))
                {
                    SourceCall(reference, closure, reference.Instance, ImmutableArray<IArgumentOperation>.Empty, context, ref state); // step(Closure)
                }
            }

            Step(ReceiverPath(invocation.Instance, context), invocation, ref state);
            return Values.Unknown;
        }

        if (Torch.IsOptimizerZeroGrad(method))
        {
            Clear(ReceiverPath(invocation.Instance, context), invocation, definite: true, through: null, ref state);
            return Values.Unknown;
        }

        if (Torch.IsModuleZeroGrad(method))
        {
            ClearModule(Resolve(invocation.Instance, context), invocation, ref state);
            return Values.Unknown;
        }

        if (method.Name == "zero_" && Resolve(invocation.Instance, context) is { } gradReference && IsGradReference(gradReference))
        {
            ClearParameterGrads(gradReference, invocation, ref state);
            return Values.Unknown;
        }

        if (method.Name.EndsWith("_", StringComparison.Ordinal) && Resolve(invocation.Instance, context) is { } written && IsGradReference(written))
        {
            MaybeClearAll(invocation, ref state); // p.grad.fill_(0), p.grad.mul_(0): may zero the gradients in place
            return Values.Unknown;
        }

        if (Torch.IsInTorchSharp(method))
        {
            return Values.Unknown; // TorchSharp's own methods clear nothing else (clip_grad_norm_, to(), scheduler.step())
        }

        if (IsForEachStepOfSourceIterator(invocation))
        {
            state = PathState<GradientHistory>.Empty; // the iterator's code runs here, and no summary says what it does
            return Values.Unknown;
        }

        var definition = SourceMethodBodies.DefinitionWithBody(method);
        var hasBody = HasBody(definition) && method.MethodKind != MethodKind.DelegateInvoke;
        if (hasBody && !SourceMethodBodies.IsIterator(definition, _cancellationToken))
        {
            SourceCall(invocation, definition, invocation.Instance, invocation.Arguments, context, ref state);
        }
        else if (!hasBody)
        {
            LibraryCall(invocation, context, ref state);
        }

        // A void hook a subclass or a delegate may fill in (protected virtual void OnBatchStart(), onBatchStart?.Invoke())
        // may clear, whatever its own body does.
        var overridable = (method.IsVirtual || method.IsAbstract || (method.IsOverride && !method.IsSealed)) && !method.ContainingType.IsSealed;
        if (method.ReturnsVoid && ((overridable && !definition.DeclaringSyntaxReferences.IsEmpty) || method.MethodKind == MethodKind.DelegateInvoke))
        {
            MaybeClearAll(invocation, ref state);
        }

        return Values.Unknown;
    }

    /// <summary>
    /// A call into code the analysis cannot read: handed an optimizer, it may clear it; handed a module or its parameters,
    /// it may clear them, whichever optimizer holds them. Libraries known not to clear (LINQ, collections, strings,
    /// console, logging) are not asked. A lambda handed over may run there, unless the call stores it for later.
    /// </summary>
    private void LibraryCall(IInvocationOperation invocation, FlowContext context, ref PathState<GradientHistory> state)
    {
        var method = invocation.TargetMethod;
        foreach (var argument in invocation.Arguments)
        {
            if (argument.Value.Type?.TypeKind == TypeKind.Delegate && !StoresDelegates.Contains(method.Name))
            {
                var ran = state;
                if (TryRunDelegate(argument.Value, ref ran, context))
                {
                    state = Lattice.Join(state, ran); // it may run there, or not at all
                }
            }
        }

        if (GradientReach.IsKnownNotToClear(method) || method.MethodKind == MethodKind.DelegateInvoke)
        {
            return;
        }

        foreach (var argument in invocation.Arguments)
        {
            var value = Resolve(argument.Value, context);
            if (Torch.IsOptimizer(value?.Type))
            {
                Clear(AccessPath.Of(value), invocation, definite: false, through: null, ref state);
            }
            else if (Torch.IsModule(value?.Type) || (value is IInvocationOperation call && Torch.IsModuleParameters(call.TargetMethod)))
            {
                MaybeClearAll(invocation, ref state);
            }
        }
    }

    private void Step(AccessPath? optimizer, IInvocationOperation step, ref PathState<GradientHistory> state)
    {
        var key = KeyOf(optimizer);
        Note(GradientSiteKind.Step, step, optimizer, key is { } known ? HistoryOf(state, known) : GradientHistory.Unknown, definite: true, through: null);
        state = Apply(state, key, GradientHistory.Step, GradientHistory.MaybeStep);
    }

    /// <summary>A clear of <paramref name="optimizer"/> (the optimizer as the body names it, or a module key) at <paramref name="clear"/>.</summary>
    private void Clear(AccessPath? optimizer, IOperation clear, bool definite, string? through, ref PathState<GradientHistory> state)
    {
        var key = KeyOf(optimizer);
        Note(GradientSiteKind.Clear, clear, optimizer, key is { } known ? HistoryOf(state, known) : GradientHistory.Unknown, definite, through);
        if (definite && through is null && OutermostInvocation is null && _ignoredClears.Contains(clear.Syntax))
        {
            return;
        }

        state = Apply(state, key, definite ? GradientHistory.Clear : GradientHistory.MaybeClear, GradientHistory.MaybeClear);
    }

    /// <summary>
    /// Where the history of <paramref name="optimizer"/>'s gradients is kept. Gradients live in parameters, not in the
    /// optimizer object: every optimizer one expression builds from <c>model.parameters()</c> steps the same buffers,
    /// whether it is created once, on each pass of the loop, in each call of a helper, or copied to another variable. So an
    /// optimizer whose single creation the code shows, from a module it names, is kept under that creation; any other under
    /// its own path.
    /// </summary>
    private AccessPath? KeyOf(AccessPath? optimizer)
    {
        if (optimizer is not { } path || path.IsCreation)
        {
            return optimizer;
        }

        if (!_keys.TryGetValue(path, out var key))
        {
            var creation = Torch.IsOptimizer(TypeOf(path)) ? _origins.CreationOf(SymbolOf(path)) : null;
            var modules = _origins.ModulesBuiltFrom(creation);
            _keys[path] = key = modules.IsDefault || modules.IsEmpty ? path : AccessPath.ForCreation(creation!.Syntax);
        }

        return key;
    }

    // Asked at every step, clear and site of every pass of the fixed point: each path's key is found once per analysis.
    private readonly Dictionary<AccessPath, AccessPath> _keys = new();

    /// <summary>The modules whose parameters the optimizers kept under <paramref name="key"/> hold; default when not known.</summary>
    private ImmutableArray<ISymbol> ModulesOf(AccessPath key)
        => key.Creation is { } creation
            ? _origins.ModulesBuiltFrom(_services.SemanticModel(creation.SyntaxTree)?.GetOperation(creation, _cancellationToken).WithoutConversions())
            : _origins.ModulesHoldingParameters(SymbolOf(key));

    /// <summary>
    /// The history kept under <paramref name="key"/>: what the state holds; for buffers a summary has not named yet, what
    /// it did to every optimizer it does not name (a backward() reached them too); otherwise "as they were where the
    /// analysis started", which a summary composes with the caller's state.
    /// </summary>
    /// <remarks>
    /// In a summary the stand-in for unnamed optimizers is always in the state, unless the state was forgotten (a catch
    /// handler is entered from anywhere in its try block, a source iterator ran): then nothing is known.
    /// </remarks>
    private GradientHistory HistoryOf(PathState<GradientHistory> state, AccessPath key)
        => state.Values.TryGetValue(key, out var history) ? history
            : _others is not { } others ? GradientHistory.Unchanged
            : state.Values.TryGetValue(others, out var unnamed) ? unnamed
            : GradientHistory.Unknown;

    private static ITypeSymbol? TypeOf(AccessPath path)
        => SymbolOf(path) switch
        {
            ILocalSymbol local => local.Type,
            IParameterSymbol parameter => parameter.Type,
            IFieldSymbol field => field.Type,
            IPropertySymbol property => property.Type,
            _ => null,
        };

    /// <summary>
    /// False when the buffers kept under the two keys are certainly different: optimizers created by different expressions
    /// (two networks of a GAN). The summary's stand-in for the optimizers it cannot name is apart from every path a caller
    /// can map: the caller knows which of its own may be the same.
    /// </summary>
    private bool MayShareBuffers(AccessPath key, AccessPath other)
    {
        if (key.Equals(other))
        {
            return true;
        }

        if (_others is { } others && (key.Equals(others) || other.Equals(others)))
        {
            var named = key.Equals(others) ? other : key;
            return named.Root is ILocalSymbol or null;
        }

        if (key.IsCreation && other.IsCreation)
        {
            return false; // kept under one creation each: different expressions
        }

        return key.IsCreation || other.IsCreation || !_origins.AreProvablyDifferent(SymbolOf(key), SymbolOf(other));
    }

    /// <summary>
    /// True when the cleared module may be a part of one of <paramref name="modules"/>: reached through it
    /// (<c>model.encoder</c> through <c>model</c>), or held by a local (<c>foreach (var m in model.children())</c>, a copy).
    /// A module named by a parameter or field other than those (a GAN's other network) is not.
    /// </summary>
    private static bool PartOf(IOperation? module, ImmutableArray<ISymbol> modules)
    {
        var chain = module.ReferencedSymbols();
        return chain.IsDefault || chain[chain.Length - 1] is ILocalSymbol // a module a local holds (a child, a copy): maybe a part
               || chain.Any(symbol => modules.Contains(symbol, SymbolEqualityComparer.Default));
    }

    /// <summary>True for <c>p.grad = p.grad.clamp(-1, 1)</c>: the new value is computed from the gradients it replaces (clipping keeps them).</summary>
    private static bool ReadsTheSameGrad(ISimpleAssignmentOperation assignment)
    {
        var target = assignment.Target.WithoutConversions() as IPropertyReferenceOperation;
        var owner = target?.Instance.ReferencedSymbol();
        foreach (var part in assignment.Value.DescendantsAndSelf())
        {
            if (part is IPropertyReferenceOperation read && SymbolEqualityComparer.Default.Equals(read.Property, target?.Property)
                && owner is not null && SymbolEqualityComparer.Default.Equals(read.Instance.ReferencedSymbol(), owner))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>
    /// <c>module.zero_grad()</c> (or <c>p.grad = null</c> over its parameters): clears every optimizer built from the
    /// module's parameters (or its parent's), may clear any whose parameters are not known, and leaves the rest.
    /// </summary>
    private void ClearModule(IOperation? module, IOperation clear, ref PathState<GradientHistory> state)
    {
        var symbol = module.ReferencedSymbol();
        foreach (var key in OptimizerPaths(state))
        {
            var modules = ModulesOf(key);
            if (symbol is not null && !modules.IsDefault && modules.Contains(symbol, SymbolEqualityComparer.Default))
            {
                Clear(key, clear, definite: true, through: null, ref state); // SGD(model.head.parameters()) is cleared by model or head
            }
            else if (symbol is null || modules.IsDefault || PartOf(module, modules))
            {
                // An optimizer whose parameters are not known, or a part of its module (model.encoder of SGD(model.parameters())).
                Clear(key, clear, definite: false, through: null, ref state);
            }
        }
    }

    /// <summary>
    /// <c>p.grad = null</c> / <c>p.grad.zero_()</c> for each <c>p</c> of <c>foreach (var p in model.parameters())</c>
    /// clears <c>model</c>'s gradients, exactly like <c>model.zero_grad()</c>; otherwise it may clear any optimizer's.
    /// </summary>
    private void ClearParameterGrads(IOperation gradReference, IOperation clear, ref PathState<GradientHistory> state)
    {
        var parameter = (((IPropertyReferenceOperation)gradReference.WithoutConversions()!).Instance.WithoutConversions() as ILocalReferenceOperation)?.Local;
        ClearModule(parameter is null ? null : ModuleIteratedBy(parameter), clear, ref state);
    }

    /// <summary>The module <c>m</c> of <c>foreach (var p in m.parameters())</c> declaring <paramref name="local"/>; null otherwise.</summary>
    private IOperation? ModuleIteratedBy(ILocalSymbol local)
    {
        foreach (var reference in local.DeclaringSyntaxReferences)
        {
            if (reference.GetSyntax(_cancellationToken) is ForEachStatementSyntax loop
                && _services.SemanticModel(loop.SyntaxTree)?.GetOperation(loop.Expression, _cancellationToken).WithoutConversions() is IInvocationOperation collection
                && Torch.IsModuleParameters(collection.TargetMethod))
            {
                return collection.ResolvedReceiver();
            }
        }

        return null;
    }

    private void MaybeClearAll(IOperation clear, ref PathState<GradientHistory> state)
    {
        foreach (var path in OptimizerPaths(state))
        {
            Clear(path, clear, definite: false, through: null, ref state);
        }
    }

    /// <summary>
    /// <paramref name="effect"/> on <paramref name="path"/>, and <paramref name="onAliases"/> on every other optimizer the
    /// state names that may be the same object; <paramref name="onAliases"/> on all of them when the path is not known.
    /// </summary>
    private PathState<GradientHistory> Apply(PathState<GradientHistory> state, AccessPath? path, GradientHistory effect, GradientHistory onAliases)
    {
        var result = state;
        foreach (var other in OptimizerPaths(state))
        {
            if (path is not { } target || (!other.Equals(target) && MayShareBuffers(target, other)))
            {
                result = result.Set(other, state.Get(other, Values).Then(onAliases), Values);
            }
        }

        return path is { } known ? result.Set(known, HistoryOf(state, known).Then(effect), Values) : result;
    }

    private PathState<GradientHistory> ApplyToAll(PathState<GradientHistory> state, GradientHistory effect)
    {
        var result = state;
        foreach (var path in OptimizerPaths(state))
        {
            result = result.Set(path, state.Get(path, Values).Then(effect), Values);
        }

        return result;
    }

    /// <summary>The optimizers the state names (not flow captures, which hold a value read earlier).</summary>
    private static List<AccessPath> OptimizerPaths(PathState<GradientHistory> state)
    {
        var paths = new List<AccessPath>(state.Values.Count);
        foreach (var pair in state.Values)
        {
            if (pair.Key.Root is not null || pair.Key.IsCreation)
            {
                paths.Add(pair.Key);
            }
        }

        return paths;
    }

    private void Note(GradientSiteKind kind, IOperation operation, AccessPath? path, GradientHistory before, bool definite, string? through)
        => Note(kind, operation, path, KeyOf(path), path is { } named ? SymbolOf(named)?.Name : null, before, definite, through);

    private void Note(
        GradientSiteKind kind, IOperation operation, AccessPath? path, AccessPath? key, string? optimizerName, GradientHistory before, bool definite, string? through)
    {
        if (RunsDetached)
        {
            return; // a lambda or local function analysed from an unknown state: its sites are judged where it runs
        }

        var outer = OutermostInvocation;
        var anchor = outer?.Syntax ?? operation.Syntax;
        through ??= outer is null ? null : NameOf(outer);
        var identity = (kind, anchor, path ?? key);
        if (!_sites.TryGetValue(identity, out var site))
        {
            _sites[identity] = site = new GradientSite(kind, anchor, path, key, optimizerName, through, definite);
        }

        site.Add(before, definite);
    }

    /// <summary>The name the body calls a function by: the method's, or for a lambda held in a variable (<c>step()</c> runs <c>Invoke</c>) the variable's.</summary>
    private static string NameOf(IInvocationOperation call)
        => call.TargetMethod.MethodKind == MethodKind.DelegateInvoke && call.Instance.ReferencedSymbol() is { } held ? held.Name : call.TargetMethod.Name;

    private bool HasBody(IMethodSymbol definition) => !definition.IsAbstract && !definition.IsExtern && _services.DeclaredHere(definition);

    /// <summary>
    /// A source method's summary applied where <paramref name="call"/> runs it (an invocation, or a method group handed to
    /// <c>step</c>), on <paramref name="receiver"/> with <paramref name="arguments"/>.
    /// </summary>
    private void SourceCall(
        IOperation call, IMethodSymbol definition, IOperation? receiver, ImmutableArray<IArgumentOperation> arguments, FlowContext context, ref PathState<GradientHistory> state)
    {
        var effects = Effects(definition);
        if (effects.Opaque)
        {
            MaybeClearAll(call, ref state); // recursion, or a body too large: what it does is not known
            return;
        }

        if (effects.IsNone)
        {
            return;
        }

        var before = state;
        var through = definition.Name;
        foreach (var site in effects.Sites)
        {
            if (site.Kind == GradientSiteKind.Backward)
            {
                Note(GradientSiteKind.Backward, call, path: null, GradientHistory.Unknown, definite: true, through);
            }
            else if (site.Key is { } calleeKey && KeyOf(MapToCaller(receiver, arguments, calleeKey, context)) is { } callerKey)
            {
                var callerPath = site.Path is { } calleePath ? MapToCaller(receiver, arguments, calleePath, context) : null;
                Note(site.Kind, call, callerPath, callerKey, site.OptimizerName, HistoryOf(before, callerKey).Then(site.Before), site.Definite, through);
            }
        }

        var result = before;
        var mapped = new List<(AccessPath Path, GradientHistory Effect)>();
        var unmapped = GradientHistory.Bottom;
        foreach (var (calleePath, effect) in effects.Changes)
        {
            if (KeyOf(MapToCaller(receiver, arguments, calleePath, context)) is { } callerKey)
            {
                mapped.Add((callerKey, effect));
                result = result.Set(callerKey, HistoryOf(before, callerKey).Then(effect), Values);
            }
            else
            {
                unmapped = unmapped.Join(effect); // an optimizer of another object the caller does not name
            }
        }

        foreach (var path in OptimizerPaths(before))
        {
            if (mapped.Any(m => m.Path.Equals(path)))
            {
                continue;
            }

            // An optimizer the method does not name: what it does to those; or, when it may be one the method does name
            // under another name, that too.
            var effect = effects.Others;
            if (!unmapped.IsBottom)
            {
                effect = effect.Join(unmapped);
            }

            foreach (var (other, otherEffect) in mapped)
            {
                if (MayShareBuffers(path, other))
                {
                    effect = effect.Join(otherEffect);
                }
            }

            result = result.Set(path, before.Get(path, Values).Then(effect), Values);
        }

        state = result;
    }

    /// <summary>The caller's name for an optimizer a summary names (a creation names the same objects everywhere).</summary>
    private static AccessPath? MapToCaller(IOperation? instance, ImmutableArray<IArgumentOperation> arguments, AccessPath calleePath, FlowContext context)
        => calleePath.IsCreation
            ? calleePath
            : SummaryPaths.MapToCaller(calleePath, instance, arguments, receiverPath: null, operation => Resolve(operation, context));

    private GradientEffects Effects(IMethodSymbol definition)
    {
        var services = _services;
        var reach = GradientReach.Of(services, definition, _cancellationToken);
        if (reach == GradientReachKind.None)
        {
            return GradientEffects.None; // a model's parts, data loading, metrics: nothing in them touches gradients
        }

        if ((reach & (GradientReachKind.Touches | GradientReachKind.Steps)) == 0)
        {
            // It only runs code that may clear (a hook, a library handed the model): a summary could only say "may clear",
            // which is what the caller takes from an unknown one, without its graph.
            return GradientEffects.Unknown;
        }

        return services.GetSummary(SummaryName, definition, (graph, token) => Summarize(services, definition, graph, token), GradientEffects.Unknown, _cancellationToken);
    }

    private static GradientEffects Summarize(AnalysisServices services, IMethodSymbol method, ControlFlowGraph graph, CancellationToken cancellationToken)
    {
        var torch = services.Torch;
        var others = AccessPath.ForSymbol(method); // no variable is rooted at a method: a name for every optimizer the body cannot name
        var analysis = new GradientAnalysis(services, graph.OriginalOperation, ignoredClears: null, others, cancellationToken);
        var seeds = ImmutableDictionary.CreateBuilder<AccessPath, GradientHistory>();
        seeds[others] = GradientHistory.Unchanged;
        foreach (var parameter in method.Parameters)
        {
            if (torch.IsOptimizer(parameter.Type))
            {
                seeds[analysis.KeyOf(AccessPath.ForSymbol(parameter))!.Value] = GradientHistory.Unchanged;
            }
        }

        if (!method.IsStatic && method.ContainingType is { } type)
        {
            foreach (var (member, memberType) in SummaryPaths.InstanceStorage(type))
            {
                if (torch.IsOptimizer(memberType))
                {
                    seeds[analysis.KeyOf(AccessPath.ForSymbol(member))!.Value] = GradientHistory.Unchanged;
                }
            }
        }

        var result = analysis.AnalyzeBody(graph, PathState<GradientHistory>.Create(seeds.ToImmutable()), cancellationToken);
        if (!result.Converged || result.Flow is not { } flow)
        {
            return GradientEffects.Unknown;
        }

        var sites = analysis._sites.Values.Where(s => s.Kind == GradientSiteKind.Backward || s.Key is { } key && !key.IsLocalToMethod).ToImmutableArray();
        if (!flow.Exit.IsReached)
        {
            return new GradientEffects(opaque: false, ImmutableArray<(AccessPath, GradientHistory)>.Empty, GradientHistory.Unchanged, sites);
        }

        var facts = analysis.FactsOf(graph);
        var changes = ImmutableArray.CreateBuilder<(AccessPath, GradientHistory)>();
        foreach (var pair in flow.Exit.Values)
        {
            if (pair.Key.Equals(others) || (pair.Key.Root is null && !pair.Key.IsCreation) || pair.Key.Root is ILocalSymbol || pair.Value.Equals(GradientHistory.Unchanged))
            {
                continue;
            }

            var value = pair.Key.Root is IParameterSymbol parameter && facts.IsWritten(parameter) ? GradientHistory.Unknown : pair.Value;
            changes.Add((pair.Key, value));
        }

        foreach (var seed in seeds.Keys)
        {
            if (!seed.Equals(others) && !flow.Exit.Values.ContainsKey(seed))
            {
                changes.Add((seed, GradientHistory.Unknown)); // forgotten on the way: reassigned, or passed by reference
            }
        }

        return new GradientEffects(opaque: false, changes.ToImmutable(), flow.Exit.Get(others, GradientHistory.Lattice), sites);
    }

    /// <summary>
    /// The optimizer a receiver names: a local, parameter, field or property chain, seen through the flow capture that
    /// <c>optimizer?.step()</c> makes; null when computed.
    /// </summary>
    private static AccessPath? ReceiverPath(IOperation? receiver, FlowContext context)
        => Resolve(receiver, context) is { } resolved and not IInstanceReferenceOperation ? AccessPath.Of(resolved) : null;

    /// <summary>What a flow capture reference stands for, when the graph captures one value for it (<c>a?.b()</c>); the operation itself otherwise.</summary>
    private static IOperation? Resolve(IOperation? operation, FlowContext context)
    {
        operation = operation.WithoutConversions();
        return operation is IFlowCaptureReferenceOperation reference && CapturesOf(context.Graph).TryGetValue(reference.Id, out var captured)
            ? captured
            : operation;
    }

    private static Dictionary<CaptureId, IOperation> CapturesOf(ControlFlowGraph graph)
        => Captures.GetValue(graph, static g =>
        {
            var values = new Dictionary<CaptureId, IOperation>();
            var repeated = new HashSet<CaptureId>();
            foreach (var block in g.Blocks)
            {
                foreach (var operation in block.Operations)
                {
                    if (operation is IFlowCaptureOperation capture && !repeated.Contains(capture.Id))
                    {
                        if (values.ContainsKey(capture.Id))
                        {
                            values.Remove(capture.Id);
                            repeated.Add(capture.Id); // a ?? b, c ? x : y: more than one value
                        }
                        else
                        {
                            values[capture.Id] = capture.Value.WithoutConversions()!;
                        }
                    }
                }
            }

            return values;
        });

    private static readonly ConditionalWeakTable<ControlFlowGraph, Dictionary<CaptureId, IOperation>> Captures = new();

    /// <summary>The symbol an optimizer path ends at, which is what the optimizer origins know: <c>trainer.opt</c>: opt.</summary>
    private static ISymbol? SymbolOf(AccessPath path) => path.Members.IsEmpty ? path.Root : path.Members[path.Members.Length - 1];

    private bool IsGradReference(IOperation? operation)
        => operation.WithoutConversions() is IPropertyReferenceOperation property && Torch.IsGradProperty(property.Property);

    /// <summary>
    /// True for the <c>MoveNext()</c> a <c>foreach</c> makes over a source iterator that may touch gradients: the
    /// iterator's code up to its next <c>yield</c> runs there (<c>foreach (var batch in Batches(optimizer))</c>).
    /// </summary>
    private bool IsForEachStepOfSourceIterator(IInvocationOperation invocation)
    {
        if (!invocation.IsImplicit || invocation.TargetMethod.Name != "MoveNext"
            || invocation.Syntax.FirstAncestorOrSelf<CommonForEachStatementSyntax>() is not { } loop
            || _services.SemanticModel(loop.SyntaxTree) is not { } model)
        {
            return false;
        }

        if (model.GetSymbolInfo(loop.Expression, _cancellationToken).Symbol is not IMethodSymbol { DeclaringSyntaxReferences.IsEmpty: false } iterator
            || !SourceMethodBodies.IsIterator(iterator, _cancellationToken))
        {
            return false;
        }

        return GradientReach.Of(_services, iterator, _cancellationToken) != GradientReachKind.None;
    }

    private GraphGradientFacts Facts(ControlFlowGraph graph)
    {
        if (!ReferenceEquals(graph, _factsGraph))
        {
            _facts = GraphFactsCache.GetValue(graph, g => new GraphGradientFacts(Torch, g));
            _factsGraph = graph;
        }

        return _facts!;
    }

    private ControlFlowGraph? _factsGraph;
    private GraphGradientFacts? _facts;

    private static readonly ConditionalWeakTable<ControlFlowGraph, GraphGradientFacts> GraphFactsCache = new();

    /// <summary>Which statement-level operations of a graph can touch gradients or name an optimizer, found once per graph.</summary>
    private sealed class GraphGradientFacts
    {
        public GraphGradientFacts(TorchSymbols torch, ControlFlowGraph graph)
        {
            foreach (var block in graph.Blocks)
            {
                foreach (var operation in block.Operations.Append(block.BranchValue))
                {
                    if (operation is not null && operation.DescendantsAndSelf().Any(part => IsRelevant(torch, part)))
                    {
                        Relevant.Add(operation);
                    }
                }
            }
        }

        private static bool IsRelevant(TorchSymbols torch, IOperation part)
            => part switch
            {
                IInvocationOperation invocation => !torch.IsInTorchSharp(invocation.TargetMethod) || invocation.TargetMethod.Name is "backward" or "step" or "zero_grad" or "zero_"
                                                   || (invocation.TargetMethod.Name.EndsWith("_", StringComparison.Ordinal)
                                                       && invocation.Instance is IFlowCaptureReferenceOperation or IPropertyReferenceOperation { Property.Name: "grad" }),
                IFlowCaptureOperation capture => torch.IsOptimizer(capture.Value.Type),
                IAssignmentOperation or IDeconstructionAssignmentOperation => torch.IsOptimizer(part.Type)
                                                                                                     || part is ISimpleAssignmentOperation { Target: IPropertyReferenceOperation { Property.Name: "grad" } },
                IFlowAnonymousFunctionOperation => true,
                _ => false,
            };

        /// <summary>Operations whose evaluation can change an optimizer's gradients or what a path names.</summary>
        public HashSet<IOperation> Relevant { get; } = new();
    }

    /// <summary>What a source method does to gradients, relative to its caller's state.</summary>
    private sealed class GradientEffects
    {
        public GradientEffects(bool opaque, ImmutableArray<(AccessPath Path, GradientHistory Effect)> changes, GradientHistory others, ImmutableArray<GradientSite> sites)
        {
            Opaque = opaque;
            Changes = changes;
            Others = others;
            Sites = sites;
        }

        /// <summary>Not known (recursion, a body too large): the caller takes it as a possible clear of everything.</summary>
        public static GradientEffects Unknown { get; } = new(opaque: true, ImmutableArray<(AccessPath, GradientHistory)>.Empty, GradientHistory.Unknown, ImmutableArray<GradientSite>.Empty);

        /// <summary>Touches no gradients.</summary>
        public static GradientEffects None { get; } = new(opaque: false, ImmutableArray<(AccessPath, GradientHistory)>.Empty, GradientHistory.Unchanged, ImmutableArray<GradientSite>.Empty);

        public bool Opaque { get; }

        public bool IsNone => ReferenceEquals(this, None);

        /// <summary>The optimizers the method names (its parameters, its object's fields, paths through them) and what it does to each.</summary>
        public ImmutableArray<(AccessPath Path, GradientHistory Effect)> Changes { get; }

        /// <summary>What it does to every optimizer it does not name (backward() reaches them all).</summary>
        public GradientHistory Others { get; }

        /// <summary>Its backward(), step and clear sites on optimizers the caller can name, with histories relative to the call.</summary>
        public ImmutableArray<GradientSite> Sites { get; }
    }
}

/// <summary>What the gradient analysis found in one body (or in a loop's later iterations).</summary>
internal sealed class GradientResult
{
    public GradientResult(ValueFlowResult<GradientHistory> values, ImmutableArray<GradientSite> sites)
    {
        Values = values;
        Sites = values.Converged ? sites : ImmutableArray<GradientSite>.Empty;
    }

    public ValueFlowResult<GradientHistory> Values { get; }

    /// <summary>Every backward(), step and clear site reached; none when the analysis did not converge (nothing may be trusted).</summary>
    public ImmutableArray<GradientSite> Sites { get; }
}
