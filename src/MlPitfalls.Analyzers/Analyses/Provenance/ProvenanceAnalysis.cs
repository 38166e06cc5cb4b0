using System.Collections.Generic;
using System.Collections.Immutable;
using System.Runtime.CompilerServices;
using System.Threading;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.FlowAnalysis;
using Microsoft.CodeAnalysis.Operations;
using MlPitfalls.Analyzers.Analyses.Composition;
using MlPitfalls.Analyzers.FlowAnalysis;
using MlPitfalls.Analyzers.Infrastructure;

namespace MlPitfalls.Analyzers.Analyses.Provenance;

/// <summary>
/// Tensor provenance on the dataflow engine: for each tensor value, whether it is a layer's raw output (logits), a
/// softmax, log_softmax or sigmoid output, <c>softmax(x).log()</c>, or unknown. Activations make the kind; operations
/// that only move or reshape values keep it; anything else (arithmetic, other library calls) ends it. A module call
/// takes the provenance of the module's output, read from the composition model: an activation or linear/convolution
/// layer, a <c>Sequential</c>'s children in order, or a user module's <c>forward</c> (a memoised method summary).
/// </summary>
internal sealed class ProvenanceAnalysis : ValueFlowAnalysis<Provenance>
{
    private const string SummaryName = "provenance";

    private static readonly ConditionalWeakTable<ControlFlowGraph, ValueFlowResult<Provenance>> Results = new();

    private static readonly ImmutableHashSet<string> ShapeOnlyTensorMethods = ImmutableHashSet.Create(
        "view", "view_as", "reshape", "reshape_as", "squeeze", "squeeze_", "unsqueeze", "unsqueeze_", "flatten", "unflatten",
        "transpose", "transpose_", "swapaxes", "swapdims", "permute", "movedim", "moveaxis", "narrow", "select", "index",
        "index_select", "contiguous", "to", "cpu", "cuda", "clone", "detach", "detach_", "to_type", "type", "float", "double",
        "half", "bfloat16", "t");

    private static readonly ImmutableHashSet<string> ShapeOnlyStaticMethods = ImmutableHashSet.Create(
        "flatten", "squeeze", "unsqueeze", "transpose", "swapaxes", "swapdims", "permute", "movedim", "moveaxis", "narrow",
        "reshape", "select", "index_select", "clone", "detach", "t");

    private static readonly ImmutableHashSet<string> ShapeOnlyTensorProperties = ImmutableHashSet.Create("T", "mT", "H", "mH");

    private readonly AnalysisServices _services;
    private readonly CancellationToken _cancellationToken;

    private ProvenanceAnalysis(AnalysisServices services, CancellationToken cancellationToken)
        : base(Provenance.Lattice)
    {
        _services = services;
        _cancellationToken = cancellationToken;
    }

    private TorchSymbols Torch => _services.Torch;

    /// <summary>The provenance of every expression in the body <paramref name="graph"/> was built for (computed once per graph).</summary>
    public static ValueFlowResult<Provenance> For(AnalysisServices services, ControlFlowGraph graph, CancellationToken cancellationToken)
    {
        if (Results.TryGetValue(graph, out var cached))
        {
            return cached;
        }

        services.Modules.RememberBody(graph.OriginalOperation);
        var result = new ProvenanceAnalysis(services, cancellationToken).AnalyzeBody(graph, cancellationToken);
        return Results.GetValue(graph, _ => result);
    }

    /// <summary>
    /// The provenance of <paramref name="expression"/> (from the method's own operation tree) when it can be read without
    /// following any flow: a chain of activations, shape-only operations, module and helper calls whose tensor operands
    /// are themselves such chains (or do not change the result). False when any value it depends on comes from a
    /// variable, field or branch: then only the dataflow over the method's graph can say, and the caller builds it.
    /// Spares the graph and the fixed point for the most common loss call, <c>criterion.call(model.call(x), y)</c>.
    /// </summary>
    public static bool TryWithoutFlow(AnalysisServices services, IOperation expression, CancellationToken cancellationToken, out Provenance value)
        => new ProvenanceAnalysis(services, cancellationToken).Direct(expression, 0, out value);

    private bool Direct(IOperation? operation, int depth, out Provenance value)
    {
        value = Provenance.Unknown;
        if (operation is null || depth > 32)
        {
            return false;
        }

        switch (operation)
        {
            case IConversionOperation conversion:
                return Direct(conversion.Operand, depth + 1, out value);
            case IParenthesizedOperation parenthesized:
                return Direct(parenthesized.Operand, depth + 1, out value);
            case IInvocationOperation invocation:
                return DirectInvocation(invocation, depth, out value);
            case IPropertyReferenceOperation { Instance: { } instance } property
                when Torch.IsTensor(instance.Type) && (property.Property.IsIndexer || ShapeOnlyTensorProperties.Contains(property.Property.Name)):
                return Direct(instance, depth + 1, out value);
            case ILocalReferenceOperation local:
                return DirectLocal(local, depth, out value);
            case IPropertyReferenceOperation { Property.IsIndexer: true }:
                return true; // batch["data"], list[i]: an element of a collection, which no analysis tracks (a tensor's own indexer is above)
            case IParameterReferenceOperation or IFieldReferenceOperation or IPropertyReferenceOperation { Property.IsIndexer: false }
                when MemberWrites.Around(operation.Syntax)?.NeverWrites(operation.ReferencedSymbol()!.Name) == true:
                // Never written in the member: what the caller or another member put there, which the dataflow does not
                // know either (it starts each body from nothing and forgets members at calls).
                return true;
            case ILocalReferenceOperation or IParameterReferenceOperation or IFieldReferenceOperation or IPropertyReferenceOperation
                or IConditionalOperation or ICoalesceOperation or IConditionalAccessOperation or ISwitchExpressionOperation
                or IAnonymousFunctionOperation or IAssignmentOperation or IDeclarationExpressionOperation:
                return false; // a stored or branching value: the dataflow decides
            default:
                return true; // arithmetic, literals, creations: no provenance whatever their operands are
        }
    }

    /// <summary>A local assigned only by its declaration has its initializer's value wherever the declaring function reads it.</summary>
    private bool DirectLocal(ILocalReferenceOperation local, int depth, out Provenance value)
    {
        value = Provenance.Unknown;
        switch (MemberWrites.DefinitionOf(local, _cancellationToken))
        {
            case { Value: { } initializer }:
                return Direct(initializer, depth + 1, out value);
            case { }:
                return true; // declared by a deconstruction: its elements are not tracked
            default:
                return false;
        }
    }

    private bool DirectInvocation(IInvocationOperation invocation, int depth, out Provenance value)
    {
        value = Provenance.Unknown;
        var method = invocation.TargetMethod;
        if (method.MethodKind is MethodKind.LocalFunction or MethodKind.DelegateInvoke)
        {
            return false; // local functions and lambdas are followed by the dataflow
        }

        foreach (var argument in invocation.Arguments)
        {
            if (argument.Value.Type?.TypeKind == TypeKind.Delegate)
            {
                return false;
            }
        }

        // Whether the result depends on the tensor operands at all (an activation does not; a shape-only operation or a
        // pass-through module does): probe with two different operand values, and read the real ones only if needed.
        var tensorInstance = invocation.Instance is { } receiver && Torch.IsTensor(receiver.Type);
        var state = PathState<Provenance>.Empty;
        Provenance Probe(Provenance operand)
        {
            var arguments = ImmutableArray.CreateBuilder<Provenance>(invocation.Arguments.Length);
            foreach (var argument in invocation.Arguments)
            {
                arguments.Add(Torch.IsTensor(argument.Value.Type) ? operand : Provenance.Unknown);
            }

            return VisitInvocation(invocation, tensorInstance ? operand : Provenance.Unknown, arguments.MoveToImmutable(), ref state, default);
        }

        var withUnknown = Probe(Provenance.Unknown);
        if (withUnknown.Equals(Probe(Provenance.Of(TensorKind.Softmax, null))))
        {
            value = withUnknown;
            return true;
        }

        var instance = Provenance.Unknown;
        if (tensorInstance && !Direct(invocation.Instance, depth + 1, out instance))
        {
            return false;
        }

        var values = ImmutableArray.CreateBuilder<Provenance>(invocation.Arguments.Length);
        foreach (var argument in invocation.Arguments)
        {
            var argumentValue = Provenance.Unknown;
            if (Torch.IsTensor(argument.Value.Type) && !Direct(argument.Value, depth + 1, out argumentValue))
            {
                return false;
            }

            values.Add(argumentValue);
        }

        value = VisitInvocation(invocation, instance, values.MoveToImmutable(), ref state, default);
        return true;
    }

    /// <summary>What a source method returns, joined over its return paths (a memoised summary).</summary>
    public static Provenance ReturnedBy(AnalysisServices services, IMethodSymbol method, CancellationToken cancellationToken)
        => services.GetSummary(
            SummaryName,
            method,
            (IOperation body, CancellationToken token, out Provenance returned) =>
            {
                services.Modules.RememberBody(body);
                return TryReturnedWithoutFlow(services, body, token, out returned);
            },
            (graph, token) =>
            {
                services.Modules.RememberBody(graph.OriginalOperation);
                return new ProvenanceAnalysis(services, token).AnalyzeBody(graph, token).Returned;
            },
            Provenance.Unknown,
            cancellationToken);

    /// <summary>
    /// What the body returns when every returned expression can be read without flow (<see cref="TryWithoutFlow"/>): a
    /// <c>forward</c> ending in <c>return head.call(h);</c>, a helper returning <c>softmax(...)</c>. All its <c>return</c>
    /// statements are joined, reachable or not (an unreachable one can only add kinds, which weakens a must-fact and never
    /// makes one). False for an iterator, a body without a return value, or any return that needs the dataflow.
    /// </summary>
    internal static bool TryReturnedWithoutFlow(AnalysisServices services, IOperation body, CancellationToken cancellationToken, out Provenance returned)
    {
        returned = Provenance.Bottom;
        var analysis = new ProvenanceAnalysis(services, cancellationToken);
        var any = false;
        foreach (var @return in body.OwnReturns())
        {
            if (@return.Kind != OperationKind.Return || @return.ReturnedValue is not { } value)
            {
                returned = Provenance.Unknown;
                return false;
            }

            if (value.WithoutConversions() is IThrowOperation)
            {
                any = true; // `=> throw ...`: a path that returns nothing
                continue;
            }

            if (!analysis.Direct(value, 0, out var one))
            {
                returned = Provenance.Unknown;
                return false;
            }

            returned = returned.Join(one);
            any = true;
        }

        if (!any)
        {
            returned = Provenance.Unknown;
        }

        return any;
    }

    /// <summary>The provenance of what <paramref name="module"/> outputs when given a tensor of provenance <paramref name="input"/>.</summary>
    public static Provenance OutputOf(AnalysisServices services, ModuleModel? module, Provenance input, int arity, CancellationToken cancellationToken)
    {
        if (module is null || module.HasForwardHooks)
        {
            return Provenance.Unknown; // a forward hook may replace the output
        }

        var torch = services.Torch;
        var origin = module.Creation?.Syntax;
        switch (torch.ActivationModules.NameOf(module.Type))
        {
            case "Softmax":
                return Provenance.Of(TensorKind.Softmax, origin);
            case "LogSoftmax":
                return Provenance.Of(TensorKind.LogSoftmax, origin);
            case "Sigmoid":
                return Provenance.Of(TensorKind.Sigmoid, origin);
        }

        if (torch.Layers.NameOf(module.Type) is { } layer && (layer.StartsWith("Conv", System.StringComparison.Ordinal) || layer is "Linear" or "Bilinear"))
        {
            return Provenance.Of(TensorKind.Logits, origin);
        }

        if (torch.ShapeOnlyModules.NameOf(module.Type) is not null)
        {
            return input;
        }

        if (torch.Containers.NameOf(module.Type) == "Sequential")
        {
            if (module.Children.IsDefault)
            {
                return Provenance.Unknown;
            }

            var value = input;
            foreach (var child in module.Children)
            {
                value = OutputOf(services, child.Model, value, 1, cancellationToken);
            }

            return value;
        }

        return services.Modules.SourceForward(module.Type, arity) is { } forward
            ? ReturnedBy(services, forward, cancellationToken)
            : Provenance.Unknown;
    }

    protected override Provenance VisitInvocation(
        IInvocationOperation invocation, Provenance instance, ImmutableArray<Provenance> arguments, ref PathState<Provenance> state, FlowContext context)
    {
        var method = invocation.TargetMethod;
        if (Torch.IsModuleInvocation(method) && invocation.Instance is { } receiver)
        {
            if (method.DeclaringSyntaxReferences.Length > 0 && !method.IsVirtual && !method.IsOverride && !method.IsAbstract
                && !OverridesModuleForward(method))
            {
                // A plain (non-virtual) forward a user module declares itself: the call runs exactly that body.
                return ReturnedBy(_services, method, _cancellationToken);
            }

            var module = _services.Modules.Describe(receiver, _cancellationToken);
            return OutputOf(_services, module, arguments.Length > 0 ? arguments[0] : Provenance.Unknown, invocation.Arguments.Length, _cancellationToken);
        }

        if (Torch.IsInTorchSharp(method))
        {
            var result = TorchSharpCall(invocation, method, instance, arguments);
            if (!method.IsStatic && Torch.IsTensor(method.ContainingType) && method.Name.EndsWith("_", System.StringComparison.Ordinal)
                && invocation.Instance is { } receiverTensor && AccessPath.Of(receiverTensor) is { } receiverPath)
            {
                // x.log_(), x.sigmoid_(), x.mul_(2): the receiver now holds the result.
                state = state.Set(receiverPath, result, Values);
            }

            return result;
        }

        if (method.MethodKind == MethodKind.Ordinary && Torch.IsTensor(method.ReturnType) && method.DeclaringSyntaxReferences.Length > 0 && RunsItsOwnBody(method))
        {
            return ReturnedBy(_services, method, _cancellationToken);
        }

        return Provenance.Unknown;
    }

    /// <summary>True when a call to <paramref name="method"/> can only run its own body (no override can replace it).</summary>
    private static bool RunsItsOwnBody(IMethodSymbol method)
        => method.IsStatic || method.ContainingType.IsSealed || method.IsSealed || !(method.IsVirtual || method.IsOverride || method.IsAbstract);

    private bool OverridesModuleForward(IMethodSymbol method)
    {
        for (var current = method.OverriddenMethod; current is not null; current = current.OverriddenMethod)
        {
            if (Torch.IsInTorchSharp(current))
            {
                return true;
            }
        }

        return false;
    }

    private Provenance TorchSharpCall(IInvocationOperation invocation, IMethodSymbol method, Provenance instance, ImmutableArray<Provenance> arguments)
    {
        var owner = method.ContainingType;
        var onTensor = !method.IsStatic && Torch.IsTensor(owner);
        var first = arguments.Length > 0 ? arguments[0] : Provenance.Unknown;
        var isStaticFamily = method.IsStatic
            && (SymbolEqualityComparer.Default.Equals(owner, Torch.Functional) || SymbolEqualityComparer.Default.Equals(owner, Torch.Torch)
                || SymbolEqualityComparer.Default.Equals(owner, Torch.Special));
        if (!onTensor && !isStaticFamily)
        {
            return Provenance.Unknown;
        }

        switch (method.Name)
        {
            case "softmax":
                return Provenance.Of(TensorKind.Softmax, invocation.Syntax);
            case "log_softmax":
                return Provenance.Of(TensorKind.LogSoftmax, invocation.Syntax);
            case "sigmoid" or "sigmoid_" or "expit":
                return Provenance.Of(TensorKind.Sigmoid, invocation.Syntax);
            case "log" or "log_":
                var source = onTensor ? instance : first;
                return source.Is(TensorKind.Softmax) ? source.As(TensorKind.LogProbabilities) : Provenance.Unknown;
        }

        if (onTensor && method.Name.EndsWith("_", System.StringComparison.Ordinal) && method.Name is not ("squeeze_" or "unsqueeze_" or "transpose_" or "detach_"))
        {
            return Provenance.Unknown; // an in-place operation that changes values (mul_, add_, clamp_, ...)
        }

        if (onTensor && ShapeOnlyTensorMethods.Contains(method.Name))
        {
            return instance;
        }

        return !onTensor && ShapeOnlyStaticMethods.Contains(method.Name) && method.Parameters.Length > 0 && Torch.IsTensor(method.Parameters[0].Type)
            ? first
            : Provenance.Unknown;
    }

    protected override bool MayChangeState(IInvocationOperation invocation) => Torch.MayRunUserCode(invocation);

    protected override Provenance VisitOther(IOperation operation, List<Provenance> children, FlowContext context)
        => operation switch
        {
            // x[.., -1], x[i]: a slice of the same values.
            IPropertyReferenceOperation { Property.IsIndexer: true, Instance: { } instance } when Torch.IsTensor(instance.Type) && children.Count > 0
                => children[0],
            // x.T, x.mT: the same values, transposed (a library property is no storage, so it is evaluated here).
            IPropertyReferenceOperation { Property: var property, Instance: { } instance }
                when ShapeOnlyTensorProperties.Contains(property.Name) && Torch.IsTensor(instance.Type) && children.Count > 0
                => children[0],
            _ => Provenance.Unknown,
        };
}
