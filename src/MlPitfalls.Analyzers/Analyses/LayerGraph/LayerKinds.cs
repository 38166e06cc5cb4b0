using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Operations;
using MlPitfalls.Analyzers.Analyses.Composition;
using MlPitfalls.Analyzers.Infrastructure;

namespace MlPitfalls.Analyzers.Analyses.LayerGraph;

/// <summary>What the layer graph needs to know about TorchSharp's layers: which have a bias, which normalize, and how.</summary>
internal static class LayerKinds
{
    /// <summary>
    /// The name of the parameter that turns a layer's bias on or off (<c>hasBias</c> for <c>Linear</c>, <c>bias</c> for
    /// the convolutions and transposed convolutions), or null for a type that is no such layer.
    /// </summary>
    public static string? BiasFlag(TorchSymbols torch, ITypeSymbol? type)
        => torch.Layers.NameOf(type) switch
        {
            "Linear" => "hasBias",
            "Conv1d" or "Conv2d" or "Conv3d" or "ConvTranspose1d" or "ConvTranspose2d" or "ConvTranspose3d" => "bias",
            _ => null,
        };

    /// <summary><c>BatchNorm</c> or <c>InstanceNorm</c> (any dimension) for a layer that subtracts a per-channel mean, else null.</summary>
    public static string? Normalization(TorchSymbols torch, ITypeSymbol? type)
        => torch.Layers.NameOf(type) switch
        {
            "BatchNorm1d" or "BatchNorm2d" or "BatchNorm3d" => "BatchNorm",
            "InstanceNorm1d" or "InstanceNorm2d" or "InstanceNorm3d" => "InstanceNorm",
            _ => null,
        };

    /// <summary>
    /// True when normalizing <paramref name="layer"/>'s output with <paramref name="normalization"/> cancels the layer's
    /// bias. Batch normalization subtracts each channel's mean over the batch (and positions), in which a per-channel
    /// bias is constant: for a convolution and for <c>Linear</c> (whose features are BatchNorm1d's channels). Instance
    /// normalization subtracts each sample's channel mean over the positions: a convolution's bias is constant there,
    /// but a <c>Linear</c>'s output has no positions (InstanceNorm1d would read its features as positions).
    /// </summary>
    public static bool CancelsBias(TorchSymbols torch, ITypeSymbol layer, ITypeSymbol normalization)
        => Normalization(torch, normalization) switch
        {
            "BatchNorm" => BiasFlag(torch, layer) is not null,
            "InstanceNorm" => BiasFlag(torch, layer) == "bias",
            _ => false,
        };

    /// <summary>
    /// Whether the layer <paramref name="creation"/> makes has its bias on: the parameter's default (on) when the argument
    /// is omitted, or a constant; null when it is computed (<c>bias: useBias</c>) or the creation is not TorchSharp's factory.
    /// </summary>
    public static bool? BiasEnabled(TorchSymbols torch, IOperation creation)
    {
        if (creation is not IInvocationOperation { TargetMethod: var factory } call || !torch.IsInTorchSharp(factory)
            || BiasFlag(torch, factory.ReturnType) is not { } flag)
        {
            return null;
        }

        return call.BooleanArgument(flag);
    }

    /// <summary>
    /// <see cref="BiasEnabled(TorchSymbols, IOperation)"/>, and when the flag is a <c>bool</c> parameter of the method or
    /// constructor that creates the layer (<c>bias: useBias</c>), what that parameter is at every call the compilation
    /// shows (<paramref name="fromParameter"/> is then true: the flag is not the creation's to change).
    /// </summary>
    public static bool? BiasEnabled(AnalysisServices services, IOperation creation, out bool fromParameter, System.Threading.CancellationToken cancellationToken)
    {
        fromParameter = false;
        if (BiasEnabled(services.Torch, creation) is { } known)
        {
            return known;
        }

        if (creation is not IInvocationOperation call || BiasFlag(services.Torch, call.TargetMethod.ReturnType) is not { } flag)
        {
            return null;
        }

        foreach (var argument in call.Arguments)
        {
            if (argument.Parameter?.Name == flag && argument.Value.WithoutConversions() is IParameterReferenceOperation { Parameter: var parameter }
                && parameter.ContainingSymbol is IMethodSymbol
                && services.CallSites.ConstantAtEveryCall(parameter, cancellationToken) is { } atEveryCall)
            {
                fromParameter = true;
                return atEveryCall;
            }
        }

        return null;
    }

    /// <summary>True when a <c>Sequential</c> child is created right in the argument list (so nothing else holds that module).</summary>
    public static bool IsCreatedInPlace(ModuleChild child)
        => child.Model?.Creation is { } creation && child.Expression.WithoutConversions()?.Syntax == creation.Syntax;
}
