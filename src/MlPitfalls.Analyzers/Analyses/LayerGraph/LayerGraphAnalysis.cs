using System.Collections.Generic;
using System.Collections.Immutable;
using System.Threading;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.FlowAnalysis;
using Microsoft.CodeAnalysis.Operations;
using MlPitfalls.Analyzers.Analyses.Composition;
using MlPitfalls.Analyzers.FlowAnalysis;
using MlPitfalls.Analyzers.Infrastructure;

namespace MlPitfalls.Analyzers.Analyses.LayerGraph;

/// <summary>
/// Which layer feeds which, on the dataflow engine: a module call's result is that layer's output (the module resolved
/// through the composition model, so <c>conv</c> is the field's <c>nn.Conv2d(...)</c>), locals carry it, and anything
/// done to it (an activation, a sum, a reshape) ends it. From the values found, <see cref="For"/> reads every place a
/// layer's output is used: straight into a normalization layer (an edge of the layer graph), or anywhere else.
/// </summary>
internal sealed class LayerGraphAnalysis : ValueFlowAnalysis<LayerOutput>
{
    private readonly AnalysisServices _services;
    private readonly CancellationToken _cancellationToken;

    private LayerGraphAnalysis(AnalysisServices services, CancellationToken cancellationToken)
        : base(LayerOutput.Lattice)
    {
        _services = services;
        _cancellationToken = cancellationToken;
    }

    private TorchSymbols Torch => _services.Torch;

    /// <summary>The uses of layer outputs in the body <paramref name="graph"/> was built for.</summary>
    public static LayerUses For(AnalysisServices services, ControlFlowGraph graph, CancellationToken cancellationToken)
    {
        var body = graph.OriginalOperation;
        services.Modules.RememberBody(body);
        var uses = new LayerUses();
        var analysis = new LayerGraphAnalysis(services, cancellationToken);
        var result = analysis.AnalyzeBody(graph, cancellationToken);
        if (!result.Converged)
        {
            uses.UsedElsewhere(LayerOutput.Other, everything: true);
            return uses;
        }

        // A lambda or local function runs where the engine may not follow it, from a state in which the locals it captures
        // are unknown, and a write through a ref local makes it forget every variable: a layer output read there would not
        // be seen as used. Any layer output in such a body counts as used.
        var losesTrack = false;
        foreach (var operation in body.Descendants())
        {
            if (operation is IAnonymousFunctionOperation or ILocalFunctionOperation or IVariableDeclaratorOperation { Symbol.IsRef: true })
            {
                losesTrack = true;
                break;
            }
        }

        // A catch or finally handler starts from nothing known (it may be entered from anywhere in its try): a read there of
        // a local that was given a layer's output is a use of that layer, whatever the dataflow knows at the read.
        var held = HeldLayers(body, result);
        foreach (var operation in body.Descendants())
        {
            if (operation.IsImplicit || operation is IConversionOperation or IParenthesizedOperation)
            {
                continue;
            }

            var value = result.ValueOf(operation.Syntax);
            if (operation is ILocalReferenceOperation { IsDeclaration: false } or IParameterReferenceOperation
                && held.TryGetValue(operation.ReferencedSymbol()!, out var layers) && IsInHandler(operation))
            {
                value = value.Join(layers);
            }

            if (value.Layers.IsEmpty && !value.Saturated)
            {
                continue;
            }

            if (value.Saturated || losesTrack)
            {
                uses.UsedElsewhere(value, everything: value.Saturated);
                continue;
            }

            analysis.Classify(operation, value, uses);
        }

        if (!result.Returned.Layers.IsEmpty)
        {
            uses.UsedElsewhere(result.Returned, everything: false); // returned to a caller, which may use it any way
        }

        return uses;
    }

    /// <summary>True inside a catch clause, an exception filter or a finally block.</summary>
    private static bool IsInHandler(IOperation operation)
    {
        for (var (child, parent) = (operation, operation.Parent); parent is not null; (child, parent) = (parent, parent.Parent))
        {
            if (parent is ICatchClauseOperation || (parent is ITryOperation @try && child == @try.Finally))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>
    /// True when <paramref name="blocks"/> need the dataflow: a tensor local written more than once (or read in a lambda),
    /// a <c>ref</c> local, a lambda or local function. Otherwise every value is read off the tree
    /// (<see cref="ForWithoutFlow"/>): a forward written as a chain of locals each assigned once (<c>using var h1 =
    /// conv1.call(x); using var h2 = bn1.call(h1); ...</c>) needs no graph, however many <c>using</c> regions it has.
    /// </summary>
    public static bool NeedsFlow(TorchSymbols torch, ImmutableArray<IOperation> blocks, CancellationToken cancellationToken)
    {
        foreach (var block in blocks)
        {
            foreach (var operation in block.DescendantsAndSelf())
            {
                switch (operation)
                {
                    case IAnonymousFunctionOperation or ILocalFunctionOperation or IVariableDeclaratorOperation { Symbol.IsRef: true }:
                        return true;
                    case ISimpleAssignmentOperation { Target: IParameterReferenceOperation } or ISimpleAssignmentOperation { Parent: not IExpressionStatementOperation }:
                        return true; // `x = conv.call(x)` on a parameter, `return h = ...`: values the tree alone does not carry
                    case ILocalReferenceOperation { IsDeclaration: false } local when local.Type is not { IsValueType: true }
                        && (local.Parent is ISimpleAssignmentOperation { Target: var target } && target == local
                            ? false
                            : MemberWrites.DefinitionOf(local, cancellationToken) is null):
                        return true; // any local that may hold a tensor (object, dynamic, IDisposable too) written more than once
                }
            }
        }

        return false;
    }

    /// <summary>The uses of layer outputs in <paramref name="blocks"/>, for a body that needs no flow (see <see cref="NeedsFlow"/>).</summary>
    public static LayerUses ForWithoutFlow(AnalysisServices services, ImmutableArray<IOperation> blocks, CancellationToken cancellationToken)
    {
        var uses = new LayerUses();
        var analysis = new LayerGraphAnalysis(services, cancellationToken);
        foreach (var block in blocks)
        {
            foreach (var operation in block.Descendants())
            {
                if (operation is IInvocationOperation or ILocalReferenceOperation { IsDeclaration: false }
                    && analysis.DirectValue(operation, 0) is { Layers.IsEmpty: false } value)
                {
                    analysis.Classify(operation, value, uses);
                }
            }
        }

        return uses;
    }

    /// <summary>A value read off the tree: a module call's output, or a local's, through the one value it is assigned.</summary>
    private LayerOutput DirectValue(IOperation operation, int depth)
    {
        switch (operation.WithoutConversions())
        {
            case IInvocationOperation call when Torch.IsModuleInvocation(call.TargetMethod) && call.Instance is { } receiver:
                return OutputOf(_services.Modules.Describe(receiver, _cancellationToken));
            case ILocalReferenceOperation local when depth < 8 && MemberWrites.DefinitionOf(local, _cancellationToken) is { Value: { } assigned }:
                return DirectValue(assigned, depth + 1);
            case IParenthesizedOperation parenthesized:
                return DirectValue(parenthesized.Operand, depth);
            default:
                return LayerOutput.Other;
        }
    }

    /// <summary>The layers whose output each local of <paramref name="body"/> is assigned, directly or from another local.</summary>
    private static Dictionary<ISymbol, LayerOutput> HeldLayers(IOperation body, ValueFlowResult<LayerOutput> result)
    {
        var held = new Dictionary<ISymbol, LayerOutput>(SymbolEqualityComparer.Default);
        var copies = new List<(ISymbol To, ISymbol From)>();
        foreach (var operation in body.Descendants())
        {
            var (target, value) = operation switch
            {
                IVariableDeclaratorOperation { Initializer.Value: { } initial } declarator => ((ISymbol?)declarator.Symbol, initial),
                ISimpleAssignmentOperation { Target: ILocalReferenceOperation assigned } assignment => (assigned.Local, assignment.Value),
                ISimpleAssignmentOperation { Target: IParameterReferenceOperation assigned } assignment => (assigned.Parameter, assignment.Value),
                _ => (null, null),
            };

            if (target is null || value is null)
            {
                continue;
            }

            var source = value.WithoutConversions();
            if (source is ILocalReferenceOperation or IParameterReferenceOperation)
            {
                copies.Add((target, source.ReferencedSymbol()!));
            }

            var layers = result.ValueOf(source!.Syntax);
            if (!layers.Layers.IsEmpty || layers.Saturated)
            {
                held[target] = held.TryGetValue(target, out var before) ? before.Join(layers) : layers;
            }
        }

        for (var changed = copies.Count > 0; changed;)
        {
            changed = false;
            foreach (var (to, from) in copies)
            {
                if (held.TryGetValue(from, out var layers))
                {
                    var joined = held.TryGetValue(to, out var before) ? before.Join(layers) : layers;
                    if (!held.TryGetValue(to, out var old) || !old.Equals(joined))
                    {
                        held[to] = joined;
                        changed = true;
                    }
                }
            }
        }

        return held;
    }

    /// <summary>
    /// Records as used elsewhere every layer whose module object <paramref name="blocks"/> hand on instead of calling it: an
    /// argument (<c>Sequential(conv, ...)</c>, <c>new Wrapper(conv)</c>, <c>Run(conv, x)</c>), a value stored or returned
    /// (<c>Conv =&gt; conv</c>), a method group (<c>conv.call</c>), a hook registration. Whoever receives it may run it and
    /// use its output unnormalized. Calling it, assigning it and reading TorchSharp's own members (<c>conv.weight</c>) are not.
    /// Needs no graph: every block of a class is scanned, constructors and initializers included.
    /// </summary>
    public static void ModulesHandedOn(AnalysisServices services, ImmutableArray<IOperation> blocks, LayerUses uses, CancellationToken cancellationToken)
    {
        var torch = services.Torch;
        foreach (var block in blocks)
        {
            foreach (var operation in block.DescendantsAndSelf())
            {
                // Cheapest first: most references are called, written or read for a member; only the rest need the type walk.
                // convs[i] of a ModuleList is one of its layers: handed on like the layer itself.
                if (operation is not (IFieldReferenceOperation or IPropertyReferenceOperation { Arguments.Length: 0 } or ILocalReferenceOperation
                                      or IPropertyReferenceOperation { Property.IsIndexer: true, Arguments.Length: 1 })
                    || IsCalledOrWritten(torch, operation) || operation.Type is not INamedTypeSymbol { TypeKind: TypeKind.Class } type
                    || torch.IsTensor(type) || !torch.IsModule(type))
                {
                    continue;
                }

                var output = OutputLayer(torch, services.Modules.Describe(operation, cancellationToken));
                if (!output.Layers.IsEmpty)
                {
                    uses.UsedElsewhere(output, everything: false);
                }
            }
        }
    }

    private static bool IsCalledOrWritten(TorchSymbols torch, IOperation reference)
    {
        var parent = reference.Parent;
        switch (parent)
        {
            case IArgumentOperation { Parent: IInvocationOperation { TargetMethod.IsExtensionMethod: true } extension } argument
                when extension.Arguments[0] == argument && torch.IsInTorchSharp(extension.TargetMethod):
                return true; // conv.to(device), conv.cuda(): the same module, moved
            case IInvocationOperation call when call.Instance == reference:
                return torch.IsModuleInvocation(call.TargetMethod)
                       || (torch.IsInTorchSharp(call.TargetMethod) && call.TargetMethod.Name is not ("register_forward_hook" or "register_forward_pre_hook" or "apply"));
            case IPropertyReferenceOperation property when property.Instance == reference:
                // conv.weight, conv.bias read; a write (conv.bias = null) changes the layer: counted as handed on.
                return torch.IsInTorchSharp(property.Property) && !property.IsWrittenTo();
            case ISimpleAssignmentOperation assignment when assignment.Target == reference:
                return true;
            case IExpressionStatementOperation:
                return true;
            default:
                return false;
        }
    }

    /// <summary>False when the operation trees call no module: they have no layer output to follow, and need no graph.</summary>
    public static bool MayCallModules(TorchSymbols torch, ImmutableArray<IOperation> blocks)
    {
        foreach (var block in blocks)
        {
            foreach (var operation in block.DescendantsAndSelf())
            {
                if (operation is IInvocationOperation invocation && torch.IsModuleInvocation(invocation.TargetMethod))
                {
                    return true;
                }
            }
        }

        return false;
    }

    /// <summary>What the user of a layer output at <paramref name="operation"/> does with it.</summary>
    private void Classify(IOperation operation, LayerOutput value, LayerUses uses)
    {
        var consumer = operation.Parent;
        var child = operation;
        while (consumer is IConversionOperation or IParenthesizedOperation)
        {
            child = consumer;
            consumer = consumer.Parent;
        }

        switch (consumer)
        {
            case IVariableInitializerOperation:
            case ISimpleAssignmentOperation { Target: ILocalReferenceOperation { Local.IsRef: false } or IParameterReferenceOperation { Parameter.RefKind: RefKind.None },
                                              Parent: IExpressionStatementOperation } assignment when assignment.Value == child:
            case IExpressionStatementOperation:
                return; // held in a local or parameter (its reads are uses of their own) or dropped; `return h = ...` uses it
            case IArgumentOperation { Parent: IInvocationOperation call } argument
                when call.Arguments.Length == 1 && argument == call.Arguments[0] && Torch.IsModuleInvocation(call.TargetMethod) && call.Instance is { } receiver
                     && value.OnlyLayer is { } layer && NormalizationOf(receiver) is { } normalization:
                // One layer only: the output of one of several (a merge of paths, a list of differently created layers)
                // is no edge, and counts as used elsewhere. A ModuleList filled in a loop holds one creation.
                uses.Normalized(layer, normalization, call);
                return;
            default:
                uses.UsedElsewhere(value, everything: false);
                return;
        }
    }

    /// <summary>The normalization layer <paramref name="receiver"/> holds (BatchNorm, InstanceNorm), or null.</summary>
    private ModuleModel? NormalizationOf(IOperation receiver)
        => _services.Modules.Describe(receiver, _cancellationToken) is { HasForwardHooks: false } model
           && LayerKinds.Normalization(Torch, model.Type) is not null
            ? model
            : null;

    protected override LayerOutput VisitInvocation(
        IInvocationOperation invocation, LayerOutput instance, ImmutableArray<LayerOutput> arguments, ref PathState<LayerOutput> state, FlowContext context)
        => Torch.IsModuleInvocation(invocation.TargetMethod) && invocation.Instance is { } receiver
            ? OutputOf(_services.Modules.Describe(receiver, _cancellationToken))
            : LayerOutput.Other;

    private LayerOutput OutputOf(ModuleModel? module)
        => module is null || module.HasForwardHooks ? LayerOutput.Other : OutputLayer(Torch, module); // a forward hook may replace the output

    /// <summary>
    /// The layer whose untouched output a call of <paramref name="module"/> returns: the module itself for a layer with a
    /// bias (linear, convolution), or a <c>Sequential</c>'s last child when that is such a layer created in place.
    /// </summary>
    private static LayerOutput OutputLayer(TorchSymbols torch, ModuleModel? module)
    {
        if (module is null)
        {
            return LayerOutput.Other;
        }

        if (module.Creation is { } creation && LayerKinds.BiasFlag(torch, module.Type) is not null)
        {
            return LayerOutput.Of(creation);
        }

        // A ModuleList, or one of its elements read by index: the output of any element that is such a layer.
        var members = !module.Alternatives.IsDefault ? module.Alternatives : module.Elements;
        if (!members.IsDefaultOrEmpty)
        {
            var output = LayerOutput.Bottom;
            foreach (var member in members)
            {
                output = output.Join(OutputLayer(torch, member));
            }

            return output;
        }

        if (torch.Containers.NameOf(module.Type) == "Sequential" && !module.Children.IsDefaultOrEmpty
            && module.Children[module.Children.Length - 1] is { Model: { } last } child && LayerKinds.IsCreatedInPlace(child))
        {
            return OutputLayer(torch, last);
        }

        return LayerOutput.Other;
    }

    protected override bool MayChangeState(IInvocationOperation invocation)
    {
        // Only locals are tracked (a field's value is unknown in each body), and no call changes a local but through
        // ref/out (handled by the engine) or a lambda or local function that assigns it, which the engine forgets itself.
        return invocation.TargetMethod.MethodKind == MethodKind.DelegateInvoke || invocation.TargetMethod.DeclaringSyntaxReferences.Length > 0;
    }
}

/// <summary>What one body does with layer outputs: which go straight into a normalization layer, and which are used otherwise.</summary>
internal sealed class LayerUses
{
    private readonly List<(IOperation Layer, ModuleModel Normalization, IInvocationOperation Call)> _normalized = new();
    private readonly HashSet<SyntaxNode> _usedElsewhere = new();

    /// <summary>True when some output in the body could not be followed: every layer must count as used elsewhere.</summary>
    public bool UsesAnything { get; private set; }

    public IReadOnlyList<(IOperation Layer, ModuleModel Normalization, IInvocationOperation Call)> NormalizedOutputs => _normalized;

    public IReadOnlyCollection<SyntaxNode> UsedElsewhereLayers => _usedElsewhere;

    public void Normalized(IOperation layer, ModuleModel normalization, IInvocationOperation call) => _normalized.Add((layer, normalization, call));

    public void UsedElsewhere(LayerOutput value, bool everything)
    {
        UsesAnything |= everything;
        foreach (var layer in value.Layers)
        {
            _usedElsewhere.Add(layer.Syntax);
        }
    }
}
