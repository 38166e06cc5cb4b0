using System.Collections.Immutable;
using Microsoft.CodeAnalysis;
using MlPitfalls.Analyzers.FlowAnalysis;

namespace MlPitfalls.Analyzers.Analyses.LayerGraph;

/// <summary>
/// The layer-graph lattice's value: which layers' outputs a tensor may be, untouched (no operation since the layer
/// returned it), on the paths that reach a point. A layer is named by its creation (<c>nn.Conv2d(3, 64, 3)</c>), so that
/// one layer is one fact however many fields or locals hold it. <see cref="MayBeOther"/> is set when some path brings
/// anything else (a normalized or activated tensor, an input, a sum); a value is a must-fact only when it names one
/// layer and nothing else (<see cref="OnlyLayer"/>).
/// </summary>
internal readonly struct LayerOutput : IJoinable<LayerOutput>
{
    /// <summary>More layers than this merged into one value keep only "other" (and the rule treats all as used elsewhere).</summary>
    private const int MaxLayers = 8;

    private LayerOutput(ImmutableArray<IOperation> layers, bool mayBeOther, bool saturated)
    {
        Layers = layers.IsDefault ? ImmutableArray<IOperation>.Empty : layers;
        MayBeOther = mayBeOther;
        Saturated = saturated;
    }

    public static LayerOutput Bottom { get; } = new(ImmutableArray<IOperation>.Empty, mayBeOther: false, saturated: false);

    public static LayerOutput Other { get; } = new(ImmutableArray<IOperation>.Empty, mayBeOther: true, saturated: false);

    /// <summary>The lattice the dataflow engine runs the layer graph on; "other" is what an untracked value holds.</summary>
    public static JoinableLattice<LayerOutput> Lattice { get; } = new(Bottom, Other);

    /// <summary>The output of the layer created by <paramref name="creation"/>.</summary>
    public static LayerOutput Of(IOperation creation) => new(ImmutableArray.Create(creation), mayBeOther: false, saturated: false);

    /// <summary>The creations of the layers whose output the tensor may be.</summary>
    public ImmutableArray<IOperation> Layers { get; }

    /// <summary>True when some path brings something that is no layer's untouched output.</summary>
    public bool MayBeOther { get; }

    /// <summary>True when so many layers merged that they were dropped: which layers flow here is no longer known.</summary>
    public bool Saturated { get; }

    /// <summary>The one layer the tensor is the output of on every path, or null.</summary>
    public IOperation? OnlyLayer => !MayBeOther && !Saturated && Layers.Length == 1 ? Layers[0] : null;

    public LayerOutput Join(LayerOutput other)
    {
        if (other.Layers.IsEmpty && !other.Saturated)
        {
            return other.MayBeOther && !MayBeOther ? new LayerOutput(Layers, mayBeOther: true, Saturated) : this;
        }

        var layers = Layers;
        foreach (var layer in other.Layers)
        {
            if (IndexOf(layers, layer) < 0)
            {
                layers = layers.Add(layer);
            }
        }

        var saturated = Saturated || other.Saturated || layers.Length > MaxLayers;
        return new LayerOutput(saturated ? ImmutableArray<IOperation>.Empty : layers, MayBeOther || other.MayBeOther || saturated, saturated);
    }

    public bool Equals(LayerOutput other)
    {
        if (MayBeOther != other.MayBeOther || Saturated != other.Saturated || Layers.Length != other.Layers.Length)
        {
            return false;
        }

        foreach (var layer in Layers)
        {
            if (IndexOf(other.Layers, layer) < 0)
            {
                return false;
            }
        }

        return true;
    }

    public override bool Equals(object? obj) => obj is LayerOutput other && Equals(other);

    public override int GetHashCode() => Layers.Length * 4 + (MayBeOther ? 1 : 0) + (Saturated ? 2 : 0);

    /// <summary>Layers are compared by where they are created: the same creation bound twice is the same layer.</summary>
    private static int IndexOf(ImmutableArray<IOperation> layers, IOperation layer)
    {
        for (var i = 0; i < layers.Length; i++)
        {
            if (layers[i].Syntax == layer.Syntax)
            {
                return i;
            }
        }

        return -1;
    }
}
