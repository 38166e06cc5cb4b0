using System;
using System.Collections.Immutable;
using System.Linq;
using Microsoft.CodeAnalysis;
using MlPitfalls.Analyzers.FlowAnalysis;

namespace MlPitfalls.Analyzers.Analyses.Provenance;

/// <summary>What a tensor holds, as far as where it came from tells.</summary>
[Flags]
internal enum TensorKind
{
    None = 0,

    /// <summary>The raw output of a layer (linear, convolution) with no activation after it.</summary>
    Logits = 1,

    /// <summary>A softmax output: probabilities that sum to one.</summary>
    Softmax = 2,

    /// <summary>A log_softmax output: log-probabilities.</summary>
    LogSoftmax = 4,

    /// <summary>A sigmoid output: independent probabilities.</summary>
    Sigmoid = 8,

    /// <summary><c>softmax(x).log()</c>: log-probabilities computed in two steps.</summary>
    LogProbabilities = 16,

    /// <summary>Anything else, or not known.</summary>
    Unknown = 32,
}

/// <summary>
/// The provenance lattice's value: the set of kinds a tensor may be on the paths that reach a point, and where each
/// activation or layer that made it stands (the <c>softmax(...)</c> call, the <c>nn.Softmax(1)</c> child), so a rule can
/// report there. A value is a *must* fact only when the set holds exactly one kind (<see cref="Is"/>); any path that
/// brings something else adds <see cref="TensorKind.Unknown"/>.
/// </summary>
internal readonly struct Provenance : IJoinable<Provenance>
{
    /// <summary>At most this many origins are kept; more (a tensor merged from many places) keeps the kinds only.</summary>
    private const int MaxOrigins = 8;

    public Provenance(TensorKind kinds, ImmutableArray<SyntaxNode> origins)
    {
        Kinds = kinds;
        Origins = origins.IsDefault ? ImmutableArray<SyntaxNode>.Empty : origins;
    }

    public static Provenance Unknown { get; } = new(TensorKind.Unknown, ImmutableArray<SyntaxNode>.Empty);

    public static Provenance Bottom { get; } = new(TensorKind.None, ImmutableArray<SyntaxNode>.Empty);

    /// <summary>The lattice the dataflow engine runs provenance on.</summary>
    public static JoinableLattice<Provenance> Lattice { get; } = new(Bottom, Unknown);

    public TensorKind Kinds { get; }

    /// <summary>The activation calls or module creations that produced the value, on every path recorded.</summary>
    public ImmutableArray<SyntaxNode> Origins { get; }

    public static Provenance Of(TensorKind kind, SyntaxNode? origin)
        => new(kind, origin is null ? ImmutableArray<SyntaxNode>.Empty : ImmutableArray.Create(origin));

    /// <summary>True when the tensor is <paramref name="kind"/> on every path (the "must" query rules report on).</summary>
    public bool Is(TensorKind kind) => Kinds == kind;

    /// <summary>True when some path makes the tensor <paramref name="kind"/> (the "may" query).</summary>
    public bool MayBe(TensorKind kind) => (Kinds & kind) != 0;

    /// <summary>The same tensor kind, now known under another kind (<c>softmax(x).log()</c>), keeping the origins.</summary>
    public Provenance As(TensorKind kind) => new(kind, Origins);

    public Provenance Join(Provenance other)
    {
        var origins = Origins;
        foreach (var origin in other.Origins)
        {
            if (!origins.Contains(origin))
            {
                origins = origins.Add(origin);
            }
        }

        return new Provenance(Kinds | other.Kinds, origins.Length > MaxOrigins ? ImmutableArray<SyntaxNode>.Empty : origins);
    }

    public bool Equals(Provenance other)
    {
        if (Kinds != other.Kinds || Origins.Length != other.Origins.Length)
        {
            return false;
        }

        // A loop, not Origins.All(other.Origins.Contains): that allocates a delegate on every comparison, and the
        // engine and the graph-free reading compare values constantly.
        foreach (var origin in Origins)
        {
            if (!other.Origins.Contains(origin))
            {
                return false;
            }
        }

        return true;
    }

    public override bool Equals(object? obj) => obj is Provenance other && Equals(other);

    public override int GetHashCode() => (int)Kinds;

    public override string ToString() => Kinds.ToString();
}
