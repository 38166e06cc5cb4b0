namespace MlPitfalls.Analyzers.FlowAnalysis;

/// <summary>
/// A join semilattice of finite height: what a forward dataflow analysis knows at a program point. The engine joins
/// the states of the branches that meet at a block and stops when no block's state changes, so <see cref="Join"/>
/// must be commutative, associative, idempotent and only ever move up, and <see cref="Bottom"/> joined with any state
/// must give that state back.
/// </summary>
internal interface ILattice<T>
{
    /// <summary>The least element: for a whole program state, "this point is not reached (yet)".</summary>
    T Bottom { get; }

    T Join(T left, T right);

    bool Equals(T left, T right);
}

/// <summary>
/// The lattice of one tracked value (what one local, field or flow capture holds). <see cref="Unknown"/> is the value of
/// everything the analysis does not track: a <see cref="PathState{TValue}"/> does not store it.
/// </summary>
internal interface IValueLattice<T> : ILattice<T>
{
    /// <summary>The value of a variable nothing is known about (a parameter, a field read in a fresh method, ...).</summary>
    T Unknown { get; }
}

/// <summary>A lattice value that joins and compares itself (the provenance and layer-output values).</summary>
internal interface IJoinable<T> : System.IEquatable<T>
{
    T Join(T other);
}

/// <summary>The <see cref="IValueLattice{T}"/> of a value type that knows its own join and equality.</summary>
internal sealed class JoinableLattice<T> : IValueLattice<T>
    where T : IJoinable<T>
{
    public JoinableLattice(T bottom, T unknown)
    {
        Bottom = bottom;
        Unknown = unknown;
    }

    public T Bottom { get; }

    public T Unknown { get; }

    public T Join(T left, T right) => left.Join(right);

    public bool Equals(T left, T right) => left.Equals(right);
}
