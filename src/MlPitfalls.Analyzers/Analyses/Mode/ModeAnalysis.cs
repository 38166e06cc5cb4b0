using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Collections.Immutable;
using System.Linq;
using System.Runtime.CompilerServices;
using System.Threading;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using Microsoft.CodeAnalysis.FlowAnalysis;
using Microsoft.CodeAnalysis.Operations;
using MlPitfalls.Analyzers.FlowAnalysis;
using MlPitfalls.Analyzers.Infrastructure;

namespace MlPitfalls.Analyzers.Analyses.Mode;

/// <summary>
/// Train/eval mode on the dataflow engine: for each module a body can name (a local, parameter, field, <c>model.encoder</c>,
/// the body's own <c>this</c>), whether it is in training or evaluation mode on every path. A new module is in training
/// mode; <c>train()</c>/<c>train(true)</c> and <c>eval()</c>/<c>train(false)</c> set the mode of the module and of every
/// module under it; <c>train(flag)</c> makes it unknown. Setting a mode makes every other module the body names unknown
/// (it may be the same object, or contain it), except the modules under the one set. A source method's effect on the
/// modes of its receiver, its parameters and its fields is a memoised summary applied at each call; a call that can run
/// code the analysis does not see (a delegate argument, a virtual or iterator method, a body too large) forgets every mode.
/// </summary>
internal sealed class ModeAnalysis : ValueFlowAnalysis<ModuleMode>
{
    private const string SummaryName = "mode";

    private static readonly ConditionalWeakTable<ControlFlowGraph, ValueFlowResult<ModuleMode>> Results = new();

    /// <summary>
    /// Source methods that may switch a mode or run code this analysis forgets every mode at: their text names
    /// <c>train</c>, <c>eval</c> or <c>apply</c>, creates a delegate or a source object with arguments (a guard),
    /// disposes at a <c>using</c> (other than TorchSharp's own scopes, see <see cref="CallText.DisposesOtherThanTorchScope"/>) or
    /// runs a <c>finally</c>; virtual methods count as switching.
    /// </summary>
    private static readonly SyntacticReach SwitchReach = new(
        static text => (text.Mentions & (MarkerNames.Train | MarkerNames.Eval | MarkerNames.Apply)) != 0
                       || text.HasLambda || text.HasFinally || text.DisposesOtherThanTorchScope,
        unseenCodeReaches: true,
        sourceCreationsReach: true);

    private static readonly ImmutableHashSet<string> SameModuleMethods = ImmutableHashSet.Create(
        "to", "cuda", "cpu", "@float", "@double", "half", "bfloat16", "type", "to_type", "float", "double");

    private readonly AnalysisServices _services;
    private readonly INamedTypeSymbol? _thisType;
    private readonly CancellationToken _cancellationToken;

    /// <summary>Set when the body set the mode of a module it cannot name (<c>GetModel().eval()</c>): its summary then forgets every mode.</summary>
    private bool _setUnnamed;

    /// <summary>
    /// For an iterator's summary: the state the body resumes from after each <c>yield return</c>: the summary's seeds
    /// (what reaches the next <c>yield</c> or the end is what one later step of the enumeration does), or none (only
    /// the first step is followed); null for other bodies.
    /// </summary>
    private PathState<ModuleMode>? _resumeAfterYield;

    /// <summary>For an iterator's summary: the join of the states at its <c>yield return</c>s (since the previous one).</summary>
    private PathState<ModuleMode> _atYields = PathState<ModuleMode>.Empty;

    private bool _reachedYield;

    /// <summary>For a summary: the roots its seeds name (parameters, fields, <c>this</c>); null for a member's own analysis.</summary>
    private ImmutableHashSet<ISymbol>? _seedRoots;

    /// <summary>
    /// Set when a summarized body switched a module its seeds do not name (a static field, <c>session.Model</c> through a
    /// parameter that is not a module): no change in the summary would carry it, so the summary forgets every mode.
    /// </summary>
    private bool _setOutsideSeeds;

    private void NoteSet(AccessPath path)
    {
        if (_seedRoots is not null && path.Root is { } root and not ILocalSymbol && !_seedRoots.Contains(root))
        {
            _setOutsideSeeds = true;
        }
    }

    private ModeAnalysis(AnalysisServices services, INamedTypeSymbol? thisType, CancellationToken cancellationToken)
        : base(ModuleMode.Lattice)
    {
        _services = services;
        _thisType = thisType;
        _cancellationToken = cancellationToken;
    }

    private TorchSymbols Torch => _services.Torch;

    /// <summary>The mode of every module expression in the body <paramref name="graph"/> was built for (computed once per graph).</summary>
    public static ValueFlowResult<ModuleMode> For(AnalysisServices services, ISymbol owner, ControlFlowGraph graph, CancellationToken cancellationToken)
    {
        if (Results.TryGetValue(graph, out var cached))
        {
            return cached;
        }

        var result = new ModeAnalysis(services, owner.ContainingType, cancellationToken).AnalyzeBody(graph, cancellationToken);
        return Results.GetValue(graph, _ => result);
    }

    /// <summary>
    /// The modes in the later iterations of the loop whose first block is <paramref name="first"/> and whose last block
    /// branching back is <paramref name="last"/>: entered only from what an iteration leaves (see
    /// <see cref="ValueFlowAnalysis{TValue}.AnalyzeLaterIterations"/>). Null when no iteration goes round.
    /// </summary>
    public static ValueFlowResult<ModuleMode>? LaterIterations(
        AnalysisServices services, ISymbol owner, ControlFlowGraph graph, ValueFlowResult<ModuleMode> whole, int first, int last, CancellationToken cancellationToken)
    {
        if (whole.Flow is not { Converged: true } flow || !flow.BackEdgeInputs[first].IsReached)
        {
            return null;
        }

        // Every training use in the loop asks: the loop is run once.
        var loops = LaterIterationResults.GetValue(whole, static _ => new ConcurrentDictionary<int, ValueFlowResult<ModuleMode>>());
        return loops.GetOrAdd(
            first,
            _ => new ModeAnalysis(services, owner.ContainingType, cancellationToken).AnalyzeLaterIterations(graph, first, last, flow.BackEdgeInputs[first], cancellationToken));
    }

    private static readonly ConditionalWeakTable<ValueFlowResult<ModuleMode>, ConcurrentDictionary<int, ValueFlowResult<ModuleMode>>> LaterIterationResults = new();

    protected override bool MayChangeState(IInvocationOperation invocation) => false; // VisitInvocation decides what each call changes

    /// <summary>Rules ask for the mode of module expressions only (the receiver of a forward call).</summary>
    protected override bool IsAskedAbout(IOperation operation)
        => operation is ILocalReferenceOperation or IParameterReferenceOperation or IFieldReferenceOperation or IPropertyReferenceOperation
           && IsModule(Torch, operation.Type);

    /// <summary>A module type, or a type parameter constrained to one (<c>TModel : Module&lt;Tensor, Tensor&gt;</c>).</summary>
    private static bool IsModule(TorchSymbols torch, ITypeSymbol? type)
        => torch.IsModule(type) || (type is ITypeParameterSymbol parameter && parameter.ConstraintTypes.Any(torch.IsModule));

    protected override ModuleMode VisitInvocation(
        IInvocationOperation invocation, ModuleMode instance, ImmutableArray<ModuleMode> arguments, ref PathState<ModuleMode> state, FlowContext context)
    {
        var method = invocation.TargetMethod;
        if (IsModeSetter(method))
        {
            var receiver = ReceiverPath(invocation.Instance);
            SetMode(receiver, ModeSetBy(invocation), ref state);
            return Values.Unknown;
        }

        foreach (var argument in invocation.Arguments)
        {
            if (argument.ArgumentKind != ArgumentKind.DefaultValue && !argument.Value.ConstantValue.HasValue
                && (argument.Value.WithoutConversions() is IDelegateCreationOperation or IAnonymousFunctionOperation or IFlowAnonymousFunctionOperation
                    || argument.Value.Type?.TypeKind == TypeKind.Delegate))
            {
                state = PathState<ModuleMode>.Empty; // the delegate may run anywhere inside the call
                return Values.Unknown;
            }
        }

        if (Torch.IsInTorchSharp(method))
        {
            return TorchSharpCall(invocation, method, instance, arguments, ref state);
        }

        if (MayRunUnseenSourceCode(invocation))
        {
            state = PathState<ModuleMode>.Empty; // IDisposable.Dispose of a user guard that restores the mode, an interface call
            return Values.Unknown;
        }

        if (SourceMethodBodies.DefinitionWithBody(method).DeclaringSyntaxReferences.IsEmpty)
        {
            return Values.Unknown; // a library outside TorchSharp does not set a module's mode
        }

        return SourceCall(invocation, method, ref state);
    }

    protected override ModuleMode VisitOther(IOperation operation, List<ModuleMode> children, FlowContext context)
        => operation is IObjectCreationOperation { Type: { } type } creation && Torch.IsModule(type)
            ? NewModule(type, creation.Syntax)
            : Values.Unknown;

    protected override PathState<ModuleMode> TransferOperation(IOperation operation, PathState<ModuleMode> state, FlowContext context)
    {
        if (_resumeAfterYield is { } resume && operation is IReturnOperation { Kind: OperationKind.YieldReturn })
        {
            state = base.TransferOperation(operation, state, context);
            _atYields = _reachedYield ? Lattice.Join(_atYields, state) : state;
            _reachedYield = true;
            return resume; // the caller's loop body runs here, and the next step starts from what it left
        }

        var facts = Facts(context.Graph);
        if (!facts.Relevant.Contains(operation))
        {
            return state; // tensor arithmetic, logging, a loss: nothing in it can name a module or run code that switches one
        }

        state = base.TransferOperation(operation, state, context);
        return facts.CreatesGuards.Contains(operation) ? PathState<ModuleMode>.Empty : state;
    }

    /// <summary>What the mode analysis needs to know about a graph's statement-level operations, found once per graph.</summary>
    private GraphModeFacts Facts(ControlFlowGraph graph)
    {
        // Asked for every operation: the shared table is consulted once per graph, and no closure is made per operation.
        if (!ReferenceEquals(graph, _modeFactsGraph))
        {
            _modeFacts = GraphFactsCache.GetValue(graph, g => new GraphModeFacts(this, g));
            _modeFactsGraph = graph;
        }

        return _modeFacts!;
    }

    private ControlFlowGraph? _modeFactsGraph;
    private GraphModeFacts? _modeFacts;

    private static readonly ConditionalWeakTable<ControlFlowGraph, GraphModeFacts> GraphFactsCache = new();

    private sealed class GraphModeFacts
    {
        public GraphModeFacts(ModeAnalysis analysis, ControlFlowGraph graph)
        {
            var torch = analysis.Torch;
            foreach (var block in graph.Blocks)
            {
                foreach (var operation in block.Operations.Append(block.BranchValue))
                {
                    if (operation is null)
                    {
                        continue;
                    }

                    var relevant = false;
                    foreach (var part in operation.DescendantsAndSelf())
                    {
                        switch (part)
                        {
                            // A module value (read, written, created, captured, returned) or a call that is not TorchSharp's
                            // (a source helper's summary, a delegate, a Dispose) makes the operation one to evaluate.
                            case var _ when IsModule(torch, part.Type):
                            case IInvocationOperation invocation when !torch.IsInTorchSharp(invocation.TargetMethod):
                            case IFlowAnonymousFunctionOperation or IObjectCreationOperation:
                                relevant = true;
                                break;
                        }

                        if (part is IObjectCreationOperation { Constructor: { } constructor } made && !torch.IsInTorchSharp(constructor)
                            && !constructor.DeclaringSyntaxReferences.IsEmpty && made.Arguments.Any(a => IsModule(torch, a.Value.Type)))
                        {
                            CreatesGuards.Add(operation);
                        }
                    }

                    if (relevant)
                    {
                        Relevant.Add(operation);
                    }
                }
            }
        }

        /// <summary>Operations whose evaluation can change or read a module's mode.</summary>
        public HashSet<IOperation> Relevant { get; } = new();

        /// <summary>
        /// Operations that create a source object given a module: its constructor may switch the module's mode (a guard
        /// whose constructor calls eval()), and no summary follows constructors, so every mode is forgotten there.
        /// </summary>
        public HashSet<IOperation> CreatesGuards { get; } = new();
    }


    /// <summary>
    /// A finally handler that may switch a mode (<c>finally { model.train(); }</c>) or run code the analysis does not see
    /// leaves every mode unknown after the try: the engine runs handler bodies from an unknown state, so their effects on
    /// what the try left cannot be applied one by one.
    /// </summary>
    protected override PathState<ModuleMode> AfterFinally(PathState<ModuleMode> state, ControlFlowRegion finallyRegion, ControlFlowGraph graph)
    {
        for (var ordinal = finallyRegion.FirstBlockOrdinal; ordinal <= finallyRegion.LastBlockOrdinal; ordinal++)
        {
            var block = graph.Blocks[ordinal];
            foreach (var operation in block.Operations.Append(block.BranchValue))
            {
                if (operation?.DescendantsAndSelf().Any(o => o is IInvocationOperation call && MayChangeModes(call)) == true)
                {
                    return PathState<ModuleMode>.Empty;
                }
            }
        }

        return base.AfterFinally(state, finallyRegion, graph);
    }

    /// <summary>True for a call that may switch some module's mode: a mode setter, TorchSharp's <c>apply</c>, or any source code.</summary>
    private bool MayChangeModes(IInvocationOperation call)
    {
        var method = call.TargetMethod;
        return IsModeSetter(method) || (Torch.IsInTorchSharp(method) ? method.Name == "apply" : MayRunUnseenSourceCode(call) || !SourceMethodBodies.DefinitionWithBody(method).DeclaringSyntaxReferences.IsEmpty);
    }

    /// <summary>
    /// True for the <c>Dispose()</c> a <c>using</c> makes of resources that library calls created (<c>torch.no_grad()</c>,
    /// <c>NewDisposeScope()</c>, a file): typed <c>IDisposable</c>, but no user code runs.
    /// </summary>
    private bool DisposesLibraryResource(IInvocationOperation invocation)
    {
        if (!invocation.IsImplicit)
        {
            return false;
        }

        var statement = invocation.Syntax.FirstAncestorOrSelf<SyntaxNode>(n => n is UsingStatementSyntax or LocalDeclarationStatementSyntax);
        var resources = statement switch
        {
            UsingStatementSyntax { Statement: var body } usingStatement when !body.Span.Contains(invocation.Syntax.Span)
                => usingStatement.Expression is { } expression ? new[] { expression } : usingStatement.Declaration?.Variables.Select(v => v.Initializer?.Value).ToArray(),
            LocalDeclarationStatementSyntax { UsingKeyword.RawKind: not 0 } declaration => declaration.Declaration.Variables.Select(v => v.Initializer?.Value).ToArray(),
            _ => null,
        };

        if (resources is not { Length: > 0 })
        {
            return false;
        }

        if ((invocation.SemanticModel ?? _services.SemanticModel(invocation.Syntax.SyntaxTree)) is not { } model)
        {
            return false;
        }

        return resources.All(resource => resource is InvocationExpressionSyntax or ObjectCreationExpressionSyntax
                                         && model.GetSymbolInfo(resource).Symbol is IMethodSymbol { DeclaringSyntaxReferences.IsEmpty: true });
    }

    /// <summary>The calls a <c>foreach</c> makes on its own (GetEnumerator, MoveNext, Current, Dispose): implicit, in the statement's head.</summary>
    private static bool IsForEachMachinery(IInvocationOperation invocation)
        => invocation.IsImplicit
           && invocation.Syntax.FirstAncestorOrSelf<CommonForEachStatementSyntax>() is { } loop
           && !loop.Statement.Span.Contains(invocation.Syntax.Span);

    /// <summary>
    /// True for a call outside TorchSharp that dispatches through an interface or a virtual method to a type declared in
    /// source (its code runs, but no summary says which): <c>IDisposable.Dispose()</c> at the end of a <c>using</c>.
    /// </summary>
    private bool MayRunUnseenSourceCode(IInvocationOperation invocation)
    {
        var method = invocation.TargetMethod;
        if (!(method.IsAbstract || method.IsVirtual || method.ContainingType.TypeKind == TypeKind.Interface) || method.IsStatic
            || IsForEachMachinery(invocation) || DisposesLibraryResource(invocation))
        {
            return false; // a foreach's own enumerator calls (GetEnumerator, MoveNext, Dispose) do not switch modes
        }

        // A collection's enumerator behind an interface (foreach over IReadOnlyList) is library code; a disposable behind
        // one may be a user guard.
        var receiverType = invocation.Instance.WithoutConversions()?.Type;
        return receiverType is null or { TypeKind: TypeKind.TypeParameter } || !receiverType.DeclaringSyntaxReferences.IsEmpty
               || (receiverType.TypeKind == TypeKind.Interface && receiverType.Name is "IDisposable" or "IAsyncDisposable"
                   && receiverType.ContainingNamespace?.Name == "System");
    }

    /// <summary>
    /// A module the state does not name: what the module above it was set to, or, for a field its class never switches
    /// out of training mode, training (<see cref="FieldModes"/>).
    /// </summary>
    protected override ModuleMode ReadUntracked(IOperation reference, AccessPath path, PathState<ModuleMode> state, FlowContext context)
    {
        var inherited = Inherited(path, state);
        return inherited.Is(ModeKind.Unknown) && reference is IFieldReferenceOperation { Field: var field, Instance: null or IInstanceReferenceOperation }
            ? FieldModes.ModeOf(_services, field, _cancellationToken)
            : inherited;
    }

    /// <summary>
    /// The mode of a module the state does not name, from the nearest module above it that it does: <c>train()</c> and
    /// <c>eval()</c> recurse into registered children, and a new module's children are new too. Setting a child's own
    /// mode stores the child's path.
    /// </summary>
    private ModuleMode Inherited(AccessPath path, PathState<ModuleMode> state)
    {
        if (state.Values.Count == 0 || path.Root is not { } root)
        {
            return Values.Unknown;
        }

        for (var length = path.Members.Length - 1; length >= 0; length--)
        {
            if (state.Values.TryGetValue(AccessPath.ForSymbol(root).Append(path.Members.Take(length)), out var stored))
            {
                return stored;
            }
        }

        return _thisType is not null && IsMemberOfThis(path) && state.Values.TryGetValue(AccessPath.ForThis(_thisType), out var ofThis)
            ? ofThis
            : Values.Unknown;
    }

    private ModuleMode TorchSharpCall(
        IInvocationOperation invocation, IMethodSymbol method, ModuleMode instance, ImmutableArray<ModuleMode> arguments, ref PathState<ModuleMode> state)
    {
        if (method.Name == "apply" && Torch.IsModule(method.ContainingType))
        {
            state = PathState<ModuleMode>.Empty; // runs a callback on every module under the receiver
            return Values.Unknown;
        }

        if (!Torch.IsModule(method.ReturnType))
        {
            return Values.Unknown;
        }

        if (method.IsStatic && !method.IsExtensionMethod && SymbolEqualityComparer.Default.Equals(method.ContainingType, Torch.Nn))
        {
            return NewModule(method.ReturnType, invocation.Syntax); // nn.Linear(...), nn.Sequential(...): a new module
        }

        if (SameModuleMethods.Contains(method.Name))
        {
            // model.to(device) returns the module it moved: an extension method's receiver is its first argument.
            return method.IsExtensionMethod ? (arguments.IsEmpty ? Values.Unknown : arguments[0]) : instance;
        }

        return Values.Unknown;
    }

    private ModuleMode NewModule(ITypeSymbol type, SyntaxNode creation)
        => OverridesTrain(type) || (type is INamedTypeSymbol named && FieldModes.ConstructorsSwitchModes(_services, named, _cancellationToken))
            ? Values.Unknown
            : ModuleMode.Of(ModeKind.Train, creation);

    private bool IsModeSetter(IMethodSymbol method)
        => method.Name is "train" or "eval" && Torch.IsModule(method.ContainingType)
            && (Torch.IsInTorchSharp(method) || method.IsOverride);

    /// <summary>The mode a <c>train(...)</c>/<c>eval()</c> call sets: unknown for a flag, or for a module whose type overrides <c>train</c>.</summary>
    private ModuleMode ModeSetBy(IInvocationOperation invocation)
    {
        var method = invocation.TargetMethod;
        if (!Torch.IsInTorchSharp(method) || (invocation.Instance.WithoutConversions()?.Type is { } type && OverridesTrain(type)))
        {
            return Values.Unknown; // a user train(bool) may keep some modules in another mode on purpose
        }

        if (method.Name == "eval")
        {
            return ModuleMode.Of(ModeKind.Eval, invocation.Syntax);
        }

        var flag = invocation.Arguments.FirstOrDefault(a => a.Parameter?.Type.SpecialType == SpecialType.System_Boolean);
        if (flag is null || flag.ArgumentKind == ArgumentKind.DefaultValue)
        {
            return ModuleMode.Of(ModeKind.Train, invocation.Syntax);
        }

        return flag.Value.ConstantValue is { HasValue: true, Value: bool on }
            ? ModuleMode.Of(on ? ModeKind.Train : ModeKind.Eval, invocation.Syntax)
            : Values.Unknown;
    }

    private AccessPath? ReceiverPath(IOperation? instance)
    {
        var receiver = instance.WithoutConversions();
        return receiver is IInstanceReferenceOperation ? (_thisType is null ? null : AccessPath.ForThis(_thisType)) : AccessPath.Of(receiver);
    }

    /// <summary>
    /// Sets <paramref name="path"/>'s mode and that of every module under it. Every other module the state names may be
    /// the same object under another name, or contain it: their modes become unknown.
    /// </summary>
    private void SetMode(AccessPath? path, ModuleMode mode, ref PathState<ModuleMode> state)
    {
        if (path is not { } target)
        {
            _setUnnamed = true;
            state = PathState<ModuleMode>.Empty;
            return;
        }

        NoteSet(target);

        var values = ImmutableDictionary.CreateBuilder<AccessPath, ModuleMode>();
        foreach (var pair in state.Values)
        {
            if (IsUnder(pair.Key, target))
            {
                values[pair.Key] = mode;
            }
            else if (pair.Key.Root is null)
            {
                values[pair.Key] = pair.Value; // a flow capture holds a value already read
            }
        }

        if (!Values.Equals(mode, Values.Unknown))
        {
            values[target] = mode;
        }
        else
        {
            values.Remove(target);
        }

        state = PathState<ModuleMode>.Create(values.ToImmutable());
    }

    /// <summary>True when <paramref name="path"/> is <paramref name="parent"/> or a module under it.</summary>
    private bool IsUnder(AccessPath path, AccessPath parent)
        => parent.IsPrefixOf(path) || (parent.IsThis && IsMemberOfThis(path));

    private static bool IsMemberOfThis(AccessPath path) => path.Root is IFieldSymbol { IsStatic: false } or IPropertySymbol { IsStatic: false };

    private ModuleMode SourceCall(IInvocationOperation invocation, IMethodSymbol method, ref PathState<ModuleMode> state)
    {
        var effects = Effects(method);
        if (effects.IsIterator)
        {
            // An iterator's body runs while it is enumerated, not at the call: a foreach over the call applies it step by
            // step (AlongBranch); any other use (LINQ, a list, a local, a foreach's own GetEnumerator) enumerates it where
            // the analysis cannot see.
            if (invocation.IsImplicit || !IsForEachCollection(invocation.Syntax))
            {
                state = PathState<ModuleMode>.Empty;
            }

            return Values.Unknown;
        }

        if (effects.Opaque)
        {
            state = PathState<ModuleMode>.Empty;
            return Values.Unknown;
        }

        state = ApplyAt(invocation, effects.Changes, state);
        return effects.Returned.Kinds is ModeKind.Train or ModeKind.Eval ? ModuleMode.Of(effects.Returned.Kinds, invocation.Syntax) : Values.Unknown;
    }

    /// <summary>A summary's <paramref name="changes"/> applied at <paramref name="invocation"/>, in the caller's names; every mode forgotten when one cannot be named.</summary>
    private PathState<ModuleMode> ApplyAt(IInvocationOperation invocation, ImmutableArray<(AccessPath Path, ModuleMode Effect)> changes, PathState<ModuleMode> state)
    {
        if (changes.IsEmpty)
        {
            return state;
        }

        var mapped = new List<(AccessPath Path, ModuleMode Effect)>();
        foreach (var (calleePath, effect) in changes)
        {
            if (MapToCaller(invocation, calleePath) is not { } callerPath)
            {
                return PathState<ModuleMode>.Empty; // the method sets the mode of a module this body cannot name
            }

            mapped.Add((callerPath, effect));
        }

        return Apply(state, mapped, invocation.Syntax);
    }

    /// <summary>True for the collection expression of a (synchronous) <c>foreach</c>: <c>foreach (var x in Batches(model))</c>.</summary>
    private static bool IsForEachCollection(SyntaxNode expression)
    {
        var node = expression;
        while (node.Parent is ParenthesizedExpressionSyntax parenthesized)
        {
            node = parenthesized;
        }

        return node.Parent is CommonForEachStatementSyntax { AwaitKeyword.RawKind: 0 } loop && loop.Expression == node;
    }

    /// <summary>
    /// A <c>foreach</c> over a source iterator's call, at its <c>MoveNext()</c>: on the way into the body the iterator
    /// ran to a <c>yield return</c>, on the way out it ran to its end. Each step starts where the caller's body left the
    /// modes, so the iterator's effects are those since its previous <c>yield</c>.
    /// </summary>
    protected override PathState<ModuleMode> AlongBranch(ControlFlowGraph graph, BasicBlock block, PathState<ModuleMode> state, BranchInputs arrived, bool conditional)
    {
        if (block.BranchValue is not IInvocationOperation { TargetMethod.Name: "MoveNext", IsImplicit: true } moveNext
            || moveNext.Syntax.FirstAncestorOrSelf<CommonForEachStatementSyntax>() is not { AwaitKeyword.RawKind: 0 } loop
            || !IsForEachMachinery(moveNext))
        {
            return state;
        }

        if (_services.SemanticModel(loop.SyntaxTree) is not { } model)
        {
            return PathState<ModuleMode>.Empty;
        }

        if (model.GetOperation(Unparenthesized(loop.Expression), _cancellationToken) is not IInvocationOperation { IsImplicit: false } call
            || SourceMethodBodies.DefinitionWithBody(call.TargetMethod).DeclaringSyntaxReferences.IsEmpty
            || Effects(call.TargetMethod) is not { IsIterator: true } effects)
        {
            // Not a direct call of a source iterator: its steps are not followed, so each MoveNext forgets every mode
            // when it may run source code that switches one (an iterator in a local, behind LINQ or a wrapper, a custom
            // GetEnumerator); a list or a loader that cannot switch a mode leaves them.
            return MayEnumerateSwitches(model, loop) ? PathState<ModuleMode>.Empty : state;
        }

        if (effects.Opaque || !IsStable(call))
        {
            return PathState<ModuleMode>.Empty; // the arguments may name other modules by now
        }

        if (!block.Operations.IsEmpty)
        {
            return PathState<ModuleMode>.Empty; // the split inputs are the states before the block's operations
        }

        // The first step runs from the iterator's start, the later ones from its last yield.
        var finished = conditional == (block.ConditionKind == ControlFlowConditionKind.WhenFalse);
        var first = finished ? effects.EndWithoutYield : effects.FirstYield;
        var later = finished ? effects.Changes : effects.YieldChanges;
        var result = Lattice.Bottom;
        if (arrived.Forward.IsReached && !first.IsDefault)
        {
            result = ApplyAt(call, first, arrived.Forward);
        }

        if (arrived.Back.IsReached && !later.IsDefault)
        {
            result = Lattice.Join(result, ApplyAt(call, later, arrived.Back));
        }

        return result;
    }

    /// <summary>
    /// True when enumerating the loop's collection may run source code that switches a mode: a source
    /// <c>GetEnumerator</c>/<c>MoveNext</c>, or a source method or property getter, in the collection expression (or in
    /// the initializer of the local it names), that may reach a switch.
    /// </summary>
    private bool MayEnumerateSwitches(SemanticModel model, CommonForEachStatementSyntax loop)
        => EnumerationAnswers.GetValue(_services, static _ => new ConcurrentDictionary<SyntaxNode, bool>())
            .GetOrAdd(loop, _ => MayEnumerateSwitchesCore(model, loop)); // asked at every visit of the loop's head in every fixed point

    private static readonly ConditionalWeakTable<AnalysisServices, ConcurrentDictionary<SyntaxNode, bool>> EnumerationAnswers = new();

    private bool MayEnumerateSwitchesCore(SemanticModel model, CommonForEachStatementSyntax loop)
    {
        var info = model.GetForEachStatementInfo(loop);
        foreach (var method in new[] { info.GetEnumeratorMethod, info.MoveNextMethod })
        {
            if (method is not null && !method.DeclaringSyntaxReferences.IsEmpty && SwitchReach.MayReach(_services, method, _cancellationToken))
            {
                return true;
            }
        }

        var sources = new List<SyntaxNode> { loop.Expression };
        if (Unparenthesized(loop.Expression) is IdentifierNameSyntax name && model.GetSymbolInfo(name, _cancellationToken).Symbol is ILocalSymbol local)
        {
            sources.AddRange(local.DeclaringSyntaxReferences.Select(r => r.GetSyntax(_cancellationToken)).OfType<VariableDeclaratorSyntax>()
                .Select(d => (SyntaxNode?)d.Initializer?.Value).Where(v => v is not null)!);
        }

        foreach (var node in sources.SelectMany(s => s.DescendantNodesAndSelf()))
        {
            var symbol = node is InvocationExpressionSyntax or IdentifierNameSyntax or MemberAccessExpressionSyntax ? model.GetSymbolInfo(node, _cancellationToken).Symbol : null;
            var method = symbol switch
            {
                IMethodSymbol m => m,
                IPropertySymbol { GetMethod: { } getter } => getter,
                _ => null,
            };

            if (method is not null && !SourceMethodBodies.DefinitionWithBody(method).DeclaringSyntaxReferences.IsEmpty
                && SwitchReach.MayReach(_services, SourceMethodBodies.DefinitionWithBody(method), _cancellationToken))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>
    /// True when the receiver and the arguments of an iterator's call name the same objects for the whole loop: no name
    /// on their paths is assigned anywhere in the member (<c>_model = new Net()</c> in the loop body would make the
    /// iterator's later steps switch a module the call's names no longer reach).
    /// </summary>
    private static bool IsStable(IInvocationOperation call)
    {
        if (MemberWrites.Around(call.Syntax) is not { } writes)
        {
            return false;
        }

        var values = call.Arguments.Select(a => a.Value).Append(call.Instance);
        foreach (var value in values)
        {
            var symbols = value.WithoutConversions().ReferencedSymbols();
            foreach (var symbol in symbols.IsDefault ? ImmutableArray<ISymbol>.Empty : symbols)
            {
                if (!writes.NeverWrites(symbol.Name))
                {
                    return false;
                }
            }
        }

        return true;
    }

    private static ExpressionSyntax Unparenthesized(ExpressionSyntax expression)
        => expression is ParenthesizedExpressionSyntax parenthesized ? Unparenthesized(parenthesized.Expression) : expression;

    /// <summary>
    /// Applies a summary's changes: each changed module (and every module under it) takes the mode the method leaves it
    /// in; every other module the state names becomes unknown when the method sets any mode (it may be the same object).
    /// </summary>
    private PathState<ModuleMode> Apply(PathState<ModuleMode> state, List<(AccessPath Path, ModuleMode Effect)> changes, SyntaxNode call)
    {
        foreach (var (path, _) in changes)
        {
            NoteSet(path);
        }

        var values = ImmutableDictionary.CreateBuilder<AccessPath, ModuleMode>();
        foreach (var pair in state.Values)
        {
            var changed = false;
            var value = pair.Value;
            foreach (var (path, effect) in changes)
            {
                if (IsUnder(pair.Key, path))
                {
                    value = value.After(effect, call);
                    changed = true;
                }
            }

            if (changed || pair.Key.Root is null)
            {
                values[pair.Key] = value;
            }
        }

        foreach (var (path, effect) in changes)
        {
            if (!state.Values.ContainsKey(path))
            {
                values[path] = Inherited(path, state).After(effect, call);
            }
        }

        foreach (var key in values.Keys.ToList())
        {
            if (Values.Equals(values[key], Values.Unknown))
            {
                values.Remove(key);
            }
        }

        return PathState<ModuleMode>.Create(values.ToImmutable());
    }

    /// <summary>The caller's name for a module a summary names: a parameter becomes its argument, a field the receiver's field.</summary>
    private AccessPath? MapToCaller(IInvocationOperation invocation, AccessPath calleePath)
        => SummaryPaths.MapToCaller(calleePath, invocation.Instance, invocation.Arguments, ReceiverPath(invocation.Instance), static operation => operation);

    private ModeEffects Effects(IMethodSymbol method)
    {
        if ((method.IsVirtual || method.IsAbstract || method.IsOverride) && !method.IsSealed && !method.ContainingType.IsSealed)
        {
            return ModeEffects.Unknown; // an override elsewhere may run instead
        }

        // A helper that cannot reach a mode switch (most: a model's parts, data loading, metrics) and returns no module
        // changes nothing, and its body is not bound to learn it.
        var services = _services;
        if (!Torch.MayHoldModule(method.ReturnType) && !SwitchReach.MayReach(services, SourceMethodBodies.DefinitionWithBody(method), _cancellationToken))
        {
            return ModeEffects.None;
        }

        return services.GetSummary(SummaryName, method, (graph, token) => Summarize(services, method, graph, token), ModeEffects.Unknown, _cancellationToken);
    }

    private static ModeEffects Summarize(AnalysisServices services, IMethodSymbol method, ControlFlowGraph graph, CancellationToken cancellationToken)
    {
        var definition = SourceMethodBodies.DefinitionWithBody(method);
        var isIterator = SourceMethodBodies.IsIterator(definition, cancellationToken);
        if (isIterator && MayRunCodeWhenDisposed(services, definition, cancellationToken))
        {
            return ModeEffects.UnknownIterator; // a finally runs when the caller leaves the loop early, and no step says what it does
        }

        var torch = services.Torch;
        var seeds = ImmutableDictionary.CreateBuilder<AccessPath, ModuleMode>();
        foreach (var parameter in definition.Parameters)
        {
            if (IsModule(torch, parameter.Type))
            {
                seeds[AccessPath.ForSymbol(parameter)] = ModuleMode.Unchanged;
            }
        }

        if (!definition.IsStatic && definition.ContainingType is { } type)
        {
            if (torch.IsModule(type))
            {
                seeds[AccessPath.ForThis(type)] = ModuleMode.Unchanged;
            }

            foreach (var (member, memberType) in SummaryPaths.InstanceStorage(type))
            {
                if (IsModule(torch, memberType))
                {
                    seeds[AccessPath.ForSymbol(member)] = ModuleMode.Unchanged;
                }
            }
        }

        var entry = PathState<ModuleMode>.Create(seeds.ToImmutable());
        var seedRoots = seeds.Keys.Select(k => k.Root).OfType<ISymbol>().ToImmutableHashSet<ISymbol>(SymbolEqualityComparer.Default);
        var analysis = new ModeAnalysis(services, definition.ContainingType, cancellationToken) { _resumeAfterYield = isIterator ? entry : null, _seedRoots = seedRoots };
        var result = analysis.AnalyzeBody(graph, entry, cancellationToken);
        if (!result.Converged || analysis._setUnnamed || analysis._setOutsideSeeds || result.Flow is not { } flow)
        {
            return isIterator ? ModeEffects.UnknownIterator : ModeEffects.Unknown;
        }

        var facts = analysis.FactsOf(graph);
        if (isIterator)
        {
            // Steps from a yield (or the start) to the next yield or the end; then the first step alone, which ends at
            // the first yield (paths stop there) or at the end without yielding. A part no path reaches stays default.
            var firstStep = new ModeAnalysis(services, definition.ContainingType, cancellationToken) { _resumeAfterYield = PathState<ModuleMode>.Unreached, _seedRoots = seedRoots };
            var firstResult = firstStep.AnalyzeBody(graph, entry, cancellationToken);
            if (!firstResult.Converged || firstStep._setUnnamed || firstResult.Flow is not { } firstFlow)
            {
                return ModeEffects.UnknownIterator;
            }

            return new ModeEffects(
                opaque: false,
                flow.Exit.IsReached ? ChangesIn(flow.Exit, seeds, facts) : default,
                ModuleMode.Unknown,
                isIterator: true,
                analysis._reachedYield ? ChangesIn(analysis._atYields, seeds, facts) : default,
                firstStep._reachedYield ? ChangesIn(firstStep._atYields, seeds, facts) : default,
                firstFlow.Exit.IsReached ? ChangesIn(firstFlow.Exit, seeds, facts) : default);
        }

        if (!flow.Exit.IsReached)
        {
            return ModeEffects.None; // never returns normally: the caller's code after it is not reached that way
        }

        return new ModeEffects(opaque: false, ChangesIn(flow.Exit, seeds, facts), result.Returned);
    }

    /// <summary>The modules named by the seeds (and modules under them) whose mode <paramref name="state"/> says changed, and how.</summary>
    private static ImmutableArray<(AccessPath, ModuleMode)> ChangesIn(PathState<ModuleMode> state, ImmutableDictionary<AccessPath, ModuleMode>.Builder seeds, GraphFacts facts)
    {
        var changes = ImmutableArray.CreateBuilder<(AccessPath, ModuleMode)>();
        foreach (var seed in seeds.Keys)
        {
            var value = seed.Root is IParameterSymbol parameter && facts.IsWritten(parameter)
                ? ModuleMode.Unknown // the parameter names another module by the end
                : state.Get(seed, ModuleMode.Lattice);
            if (!value.Equals(ModuleMode.Unchanged))
            {
                changes.Add((seed, value));
            }
        }

        foreach (var pair in state.Values)
        {
            if (!seeds.ContainsKey(pair.Key) && !pair.Key.Members.IsEmpty && pair.Key.Root is { } root && seeds.ContainsKey(AccessPath.ForSymbol(root))
                && !pair.Value.Equals(ModuleMode.Unchanged))
            {
                changes.Add((pair.Key, pair.Value)); // model.encoder.eval() on a field or parameter
            }
        }

        return changes.ToImmutable();
    }

    /// <summary>
    /// True when leaving a foreach over the iterator early may run its code: a <c>finally</c>, or the <c>Dispose</c> of a
    /// <c>using</c> resource of a source type (a guard that restores a mode). Library resources (<c>no_grad()</c>) run none.
    /// </summary>
    private static bool MayRunCodeWhenDisposed(AnalysisServices services, IMethodSymbol iterator, CancellationToken cancellationToken)
    {
        foreach (var reference in iterator.DeclaringSyntaxReferences)
        {
            var syntax = reference.GetSyntax(cancellationToken);
            if (services.SemanticModel(syntax.SyntaxTree) is not { } model)
            {
                return true; // declared in a referenced compilation: what its resources are cannot be bound here
            }
            foreach (var node in syntax.DescendantNodes(n => n == syntax || n is not (AnonymousFunctionExpressionSyntax or LocalFunctionStatementSyntax)))
            {
                var resources = node switch
                {
                    FinallyClauseSyntax => null,
                    UsingStatementSyntax @using => @using.Expression is { } expression ? new[] { expression } : @using.Declaration?.Variables.Select(v => v.Initializer?.Value).ToArray(),
                    LocalDeclarationStatementSyntax { UsingKeyword.RawKind: not 0 } declaration => declaration.Declaration.Variables.Select(v => v.Initializer?.Value).ToArray(),
                    _ => Array.Empty<ExpressionSyntax?>(),
                };

                if (resources is null
                    || resources.Any(r => r is null || model.GetTypeInfo(r, cancellationToken).Type is not { } type || !type.DeclaringSyntaxReferences.IsEmpty || type.TypeKind == TypeKind.Error))
                {
                    return true;
                }
            }
        }

        return false;
    }

    internal static bool OverridesTrain(ITypeSymbol type)
    {
        for (var current = type as INamedTypeSymbol; current is not null && !current.DeclaringSyntaxReferences.IsEmpty; current = current.BaseType)
        {
            foreach (var member in current.GetMembers("train"))
            {
                if (member is IMethodSymbol { IsOverride: true })
                {
                    return true;
                }
            }
        }

        return false;
    }

    /// <summary>What a source method does to the modes of the modules its caller can name.</summary>
    private sealed class ModeEffects
    {
        public ModeEffects(
            bool opaque, ImmutableArray<(AccessPath Path, ModuleMode Effect)> changes, ModuleMode returned, bool isIterator = false,
            ImmutableArray<(AccessPath Path, ModuleMode Effect)> yieldChanges = default, ImmutableArray<(AccessPath Path, ModuleMode Effect)> firstYield = default,
            ImmutableArray<(AccessPath Path, ModuleMode Effect)> endWithoutYield = default)
        {
            Opaque = opaque;
            Changes = changes;
            Returned = returned;
            IsIterator = isIterator;
            YieldChanges = yieldChanges;
            FirstYield = firstYield;
            EndWithoutYield = endWithoutYield;
        }

        /// <summary>Not known: the caller forgets every mode.</summary>
        public static ModeEffects Unknown { get; } = new(opaque: true, ImmutableArray<(AccessPath, ModuleMode)>.Empty, ModuleMode.Unknown);

        /// <summary>An iterator whose steps are not known: a foreach over it forgets every mode at each step.</summary>
        public static ModeEffects UnknownIterator { get; } = new(opaque: true, ImmutableArray<(AccessPath, ModuleMode)>.Empty, ModuleMode.Unknown, isIterator: true);

        /// <summary>
        /// An iterator (a body with <c>yield</c>): <see cref="Changes"/> are what its last step does (from its last
        /// <c>yield return</c>, or its start, to its end), <see cref="YieldChanges"/> what any step that yields does,
        /// <see cref="FirstYield"/> and <see cref="EndWithoutYield"/> what the first step does when it yields or ends.
        /// Each is default when no path does it (an iterator that never ends, one that always yields first).
        /// </summary>
        public bool IsIterator { get; }

        public ImmutableArray<(AccessPath Path, ModuleMode Effect)> YieldChanges { get; }

        public ImmutableArray<(AccessPath Path, ModuleMode Effect)> FirstYield { get; }

        public ImmutableArray<(AccessPath Path, ModuleMode Effect)> EndWithoutYield { get; }

        /// <summary>Changes no mode the caller can name.</summary>
        public static ModeEffects None { get; } = new(opaque: false, ImmutableArray<(AccessPath, ModuleMode)>.Empty, ModuleMode.Unknown);

        public bool Opaque { get; }

        /// <summary>The modules (named as the method names them: a parameter, a field, <c>this</c>) whose mode the method may change, and how.</summary>
        public ImmutableArray<(AccessPath Path, ModuleMode Effect)> Changes { get; }

        /// <summary>The mode of the module the method returns, when it returns one.</summary>
        public ModuleMode Returned { get; }
    }
}
