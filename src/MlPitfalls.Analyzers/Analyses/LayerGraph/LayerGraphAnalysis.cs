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
        if (!MayCallModules(services.Torch, ImmutableArray.Create(body)))
        {
            return uses;
        }

        var analysis = new LayerGraphAnalysis(services, cancellationToken);
        var result = analysis.AnalyzeBody(graph, cancellationToken);

        // A lambda or local function runs where the engine may not follow it, from a state in which the locals it captures
        // are unknown: a layer output it reads would not be seen as used. Any layer output in such a body counts as used.
        var hasNestedFunctions = false;
        foreach (var operation in body.Descendants())
        {
            if (operation is IAnonymousFunctionOperation or ILocalFunctionOperation)
            {
                hasNestedFunctions = true;
                break;
            }
        }

        foreach (var operation in body.Descendants())
        {
            if (operation.IsImplicit || operation is IConversionOperation or IParenthesizedOperation)
            {
                continue;
            }

            var value = result.ValueOf(operation.Syntax);
            if (value.Layers.IsEmpty && !value.Saturated)
            {
                continue;
            }

            if (!result.Converged || value.Saturated || hasNestedFunctions)
            {
                uses.UsedElsewhere(value, everything: value.Saturated || !result.Converged);
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
            case ISimpleAssignmentOperation { Target: ILocalReferenceOperation { Local.IsRef: false } } assignment when assignment.Value == child:
            case IExpressionStatementOperation:
                return; // held in a local (its reads are uses of their own) or dropped
            case IArgumentOperation { Parent: IInvocationOperation call } argument
                when call.Arguments.Length == 1 && argument == call.Arguments[0] && Torch.IsModuleInvocation(call.TargetMethod) && call.Instance is { } receiver
                     && value.OnlyLayer is { } layer && NormalizationOf(receiver) is { } normalization:
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

    /// <summary>
    /// The layer whose untouched output a call of <paramref name="module"/> returns: the module itself for a layer with a
    /// bias (linear, convolution), or a <c>Sequential</c>'s last child when that is such a layer created in place.
    /// </summary>
    private LayerOutput OutputOf(ModuleModel? module)
    {
        if (module is null || module.HasForwardHooks)
        {
            return LayerOutput.Other; // a forward hook may replace the output
        }

        if (module.Creation is { } creation && LayerKinds.BiasFlag(Torch, module.Type) is not null)
        {
            return LayerOutput.Of(creation);
        }

        if (Torch.Containers.NameOf(module.Type) == "Sequential" && !module.Children.IsDefaultOrEmpty
            && module.Children[module.Children.Length - 1] is { Model: { } last } child && LayerKinds.IsCreatedInPlace(child))
        {
            return OutputOf(last);
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
