using System;
using System.Collections.Immutable;
using System.Linq;
using Microsoft.CodeAnalysis;
using MlPitfalls.Analyzers.FlowAnalysis;

namespace MlPitfalls.Analyzers.Analyses.Shapes;

/// <summary>What the shape analysis knows about one value.</summary>
internal enum ShapeKind
{
    /// <summary>Not reached yet.</summary>
    Bottom,

    /// <summary>Nothing known (the lattice's top; never stored).</summary>
    Unknown,

    /// <summary>An integer: a dimension size or a view argument (<see cref="ShapeValue.Scalar"/>).</summary>
    Scalar,

    /// <summary>A <c>long[]</c> of sizes: <c>x.shape</c>, <c>new long[] { b, -1 }</c>, a params argument list.</summary>
    Array,

    /// <summary>A tensor: its dimensions when known and whether a permute or transpose left its memory out of order.</summary>
    Tensor,
}

/// <summary>
/// A tensor whose rank the analysis does not know, read by index (<c>x.shape[1]</c>, <c>x.size(-1)</c>): its dimension
/// <c>i</c> is an atom of its own, made once and shared by every read of the same tensor, so that <c>long c = x.shape[1]</c>
/// and a later <c>x.view(b, h, w, c)</c> speak of the same dimension.
/// </summary>
internal sealed class DimSource
{
    private readonly ShapeAtoms _atoms;
    private readonly SyntaxNode _name;

    public DimSource(ShapeAtoms atoms, SyntaxNode name)
    {
        _atoms = atoms;
        _name = name;
    }

    /// <summary>Dimension <paramref name="index"/> (negative: from the end) of the tensor.</summary>
    public Dim this[int index] => Dim.Of(_atoms.SourceAtom(this, index, _name));

    /// <summary>Dimension <paramref name="index"/>, read by the code at <paramref name="read"/>: the tensor has more dimensions than that, there.</summary>
    public Dim ReadAt(int index, SyntaxNode read)
    {
        if (index >= 0 && (!_reads.TryGetValue(read, out var known) || known < index))
        {
            _reads[read] = index;
        }

        return this[index];
    }

    /// <summary>The index <paramref name="atom"/> stands for when it is one of this source's dimensions.</summary>
    public int? IndexOf(DimAtom atom) => _atoms.SourceIndexOf(this, atom);

    /// <summary>
    /// The highest index the code reads on every path to <paramref name="at"/> before it (<c>x.shape[3]</c>: the tensor has
    /// at least four dimensions there); -1 when none. A read on another path (<c>if (x.dim() == 4) { ... x.size(3) ... }</c>)
    /// says nothing about the tensor here.
    /// </summary>
    public int HighestReadBefore(SyntaxNode at)
    {
        var highest = -1;
        foreach (var read in _reads)
        {
            if (read.Value > highest && _atoms.Dominance?.Precedes(read.Key, at) == true)
            {
                highest = read.Value;
            }
        }

        return highest;
    }

    private readonly System.Collections.Generic.Dictionary<SyntaxNode, int> _reads = new();
}

/// <summary>
/// The shape lattice's value: an integer's symbolic size, an array of sizes, or a tensor's dimensions (all of them when
/// the rank is known, else a <see cref="DimSource"/>) and layout. A tensor is <em>permuted</em> when a permute, transpose,
/// <c>t()</c>, <c>T</c> or <c>mT</c> (<see cref="Mover"/>) reordered its dimensions without moving the data, on every path;
/// <see cref="Order"/> then gives, for each dimension, its place in memory order (unknown when default). A tensor nothing
/// says is permuted is taken to be in memory order, as the outputs of layers, arithmetic and factories are.
/// </summary>
internal sealed class ShapeValue : IJoinable<ShapeValue>
{
    private ShapeValue(ShapeKind kind, Dim scalar, ImmutableArray<Dim> dims, DimSource? source, ImmutableArray<int> order, SyntaxNode? mover)
    {
        Kind = kind;
        Scalar = scalar;
        Dims = dims;
        Source = source;
        Order = order;
        Mover = mover;
    }

    public static ShapeValue Unknown { get; } = new(ShapeKind.Unknown, Dim.Unknown, default, null, default, null);

    public static ShapeValue Bottom { get; } = new(ShapeKind.Bottom, Dim.Unknown, default, null, default, null);

    public static JoinableLattice<ShapeValue> Lattice { get; } = new(Bottom, Unknown);

    public ShapeKind Kind { get; }

    /// <summary>The size of a <see cref="ShapeKind.Scalar"/>.</summary>
    public Dim Scalar { get; }

    /// <summary>The elements of an array, or every dimension of a tensor of known rank; default when not known.</summary>
    public ImmutableArray<Dim> Dims { get; }

    /// <summary>For a tensor or array of unknown rank: the source of its dimensions by index.</summary>
    public DimSource? Source { get; }

    /// <summary>For a permuted tensor of known rank: each dimension's place in memory order.</summary>
    public ImmutableArray<int> Order { get; }

    /// <summary>The permute or transpose that left the tensor out of memory order; null when it is not permuted.</summary>
    public SyntaxNode? Mover { get; }

    public bool IsPermuted => Mover is not null;

    public bool HasRank => !Dims.IsDefault;

    public int Rank => Dims.IsDefault ? -1 : Dims.Length;

    public static ShapeValue OfScalar(Dim dim) => dim.IsKnown ? new(ShapeKind.Scalar, dim, default, null, default, null) : Unknown;

    public static ShapeValue OfArray(ImmutableArray<Dim> elements) => new(ShapeKind.Array, Dim.Unknown, elements, null, default, null);

    public static ShapeValue OfArray(DimSource source) => new(ShapeKind.Array, Dim.Unknown, default, source, default, null);

    /// <summary>A tensor in memory order with dimensions <paramref name="dims"/> (default: unknown rank, <paramref name="source"/> or nothing).</summary>
    public static ShapeValue OfTensor(ImmutableArray<Dim> dims, DimSource? source = null)
        => dims.IsDefault && source is null ? Unknown : new(ShapeKind.Tensor, Dim.Unknown, dims, dims.IsDefault ? source : null, default, null);

    /// <summary>A permuted tensor; <paramref name="order"/> is default when the memory order is not known.</summary>
    public static ShapeValue Permuted(ImmutableArray<Dim> dims, ImmutableArray<int> order, SyntaxNode mover)
        => new(ShapeKind.Tensor, Dim.Unknown, dims, null, dims.IsDefault || order.IsDefault || order.Length != dims.Length ? default : order, mover);

    /// <summary>The same tensor with other dimensions and memory order (the layout and mover kept unless given).</summary>
    public ShapeValue WithDims(ImmutableArray<Dim> dims, ImmutableArray<int> order)
        => IsPermuted ? Permuted(dims, order, Mover!) : OfTensor(dims);

    /// <summary>The same tensor with its shape forgotten but its layout kept (permuted, memory order unknown).</summary>
    public ShapeValue WithoutShape() => IsPermuted ? Permuted(default, default, Mover!) : Unknown;

    /// <summary>Dimension <paramref name="index"/> (negative: from the end) when known.</summary>
    public Dim DimAt(long index)
    {
        if (HasRank)
        {
            var i = index < 0 ? index + Rank : index;
            return i >= 0 && i < Rank ? Dims[(int)i] : Dim.Unknown;
        }

        return Source is not null && index is >= -64 and < 64 ? Source[(int)index] : Dim.Unknown;
    }

    /// <summary>As <see cref="DimAt"/>, for a read the code makes at <paramref name="read"/> (which tells the source's rank is larger).</summary>
    public Dim ReadDimAt(long index, SyntaxNode read)
        => !HasRank && Source is not null && index is >= -64 and < 64 ? Source.ReadAt((int)index, read) : DimAt(index);

    public ShapeValue Join(ShapeValue other)
    {
        if (Kind == ShapeKind.Bottom || ReferenceEquals(this, other))
        {
            return other;
        }

        if (other.Kind == ShapeKind.Bottom)
        {
            return this;
        }

        if (Kind != other.Kind || Kind == ShapeKind.Unknown)
        {
            return Unknown;
        }

        switch (Kind)
        {
            case ShapeKind.Scalar:
                return Scalar.Equals(other.Scalar) ? this : Unknown;
            case ShapeKind.Array:
                var elements = JoinDims(Dims, other.Dims);
                return !elements.IsDefault ? OfArray(elements) : Source is not null && Source == other.Source ? this : Unknown;
        }

        var dims = JoinDims(Dims, other.Dims);
        var source = dims.IsDefault && Source == other.Source ? Source : null;
        if (IsPermuted && other.IsPermuted)
        {
            // Both paths permute: still out of memory order whatever the order; the mover named is the first in the code.
            var order = !Order.IsDefault && !other.Order.IsDefault && Order.SequenceEqual(other.Order) && !dims.IsDefault ? Order : default;
            var mover = Mover!.SpanStart <= other.Mover!.SpanStart ? Mover : other.Mover;
            return Permuted(dims, order, mover);
        }

        return IsPermuted || other.IsPermuted ? Unknown : OfTensor(dims, source);
    }

    private static ImmutableArray<Dim> JoinDims(ImmutableArray<Dim> left, ImmutableArray<Dim> right)
    {
        if (left.IsDefault || right.IsDefault || left.Length != right.Length)
        {
            return default;
        }

        var changed = false;
        var builder = ImmutableArray.CreateBuilder<Dim>(left.Length);
        for (var i = 0; i < left.Length; i++)
        {
            var same = left[i].Equals(right[i]);
            changed |= !same;
            builder.Add(same ? left[i] : Dim.Unknown);
        }

        return changed ? builder.MoveToImmutable() : left;
    }

    public bool Equals(ShapeValue? other)
        => other is not null
           && Kind == other.Kind
           && Scalar.Equals(other.Scalar)
           && Source == other.Source
           && Mover == other.Mover
           && SameDims(Dims, other.Dims)
           && (Order.IsDefault ? other.Order.IsDefault : !other.Order.IsDefault && Order.SequenceEqual(other.Order));

    private static bool SameDims(ImmutableArray<Dim> left, ImmutableArray<Dim> right)
    {
        if (left.IsDefault || right.IsDefault)
        {
            return left.IsDefault == right.IsDefault;
        }

        if (left.Length != right.Length)
        {
            return false;
        }

        for (var i = 0; i < left.Length; i++)
        {
            if (!left[i].Equals(right[i]))
            {
                return false;
            }
        }

        return true;
    }

    public override bool Equals(object? obj) => obj is ShapeValue other && Equals(other);

    public override int GetHashCode() => ((int)Kind * 397) ^ Scalar.GetHashCode() ^ (Dims.IsDefault ? 0 : Dims.Length);

    public override string ToString()
        => Kind switch
        {
            ShapeKind.Scalar => Scalar.ToString(),
            ShapeKind.Array or ShapeKind.Tensor when HasRank => (IsPermuted ? "permuted " : "") + "(" + string.Join(", ", Dims) + ")",
            ShapeKind.Array or ShapeKind.Tensor => (IsPermuted ? "permuted " : "") + (Source is null ? "(?)" : "(rank ?)"),
            _ => Kind.ToString(),
        };
}

/// <summary>The atoms of one analysis, made once per key so that every evaluation of the same code yields the same atom.</summary>
internal sealed class ShapeAtoms
{
    public ShapeAtoms(Dominance? dominance = null) => Dominance = dominance;

    /// <summary>What runs before what in the analysed body: which of a source's reads hold on every path to a point.</summary>
    public Dominance? Dominance { get; }

    private readonly System.Collections.Generic.Dictionary<object, DimAtom> _atoms = new();
    private readonly System.Collections.Generic.Dictionary<DimAtom, (DimSource Source, int Index)> _sourceDims = new();
    private readonly System.Collections.Generic.Dictionary<object, DimSource> _sources = new();

    /// <summary>
    /// The atom for <paramref name="key"/> (a syntax node, an access path), made on first use and named by the code of
    /// <paramref name="named"/> (asked for on every evaluation, so the name is made only once).
    /// </summary>
    public DimAtom Atom(object key, SyntaxNode named, string suffix = "")
    {
        if (!_atoms.TryGetValue(key, out var atom))
        {
            atom = new DimAtom(_atoms.Count, named, suffix);
            _atoms[key] = atom;
        }

        return atom;
    }

    /// <summary>Dimension <paramref name="index"/> of <paramref name="source"/>, made on first use.</summary>
    public DimAtom SourceAtom(DimSource source, int index, SyntaxNode sourceName)
    {
        var key = (source, index);
        if (!_atoms.TryGetValue(key, out var atom))
        {
            atom = new DimAtom(_atoms.Count, sourceName, ".shape[" + index + "]");
            _atoms[key] = atom;
            _sourceDims[atom] = key;
        }

        return atom;
    }

    /// <summary>The source of dimensions for the tensor first read at <paramref name="key"/>, made on first use.</summary>
    public DimSource Source(object key, SyntaxNode named)
    {
        if (!_sources.TryGetValue(key, out var source))
        {
            source = new DimSource(this, named);
            _sources[key] = source;
        }

        return source;
    }

    public int? SourceIndexOf(DimSource source, DimAtom atom)
        => _sourceDims.TryGetValue(atom, out var dim) && dim.Source == source ? dim.Index : null;
}
