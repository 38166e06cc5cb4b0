using System;
using System.Collections.Generic;
using System.Collections.Immutable;
using Microsoft.CodeAnalysis;

namespace MlPitfalls.Analyzers.FlowAnalysis;

/// <summary>
/// What an analysis knows at one program point: a value per <see cref="AccessPath"/>, every path not stored holding
/// the value lattice's <c>Unknown</c>. Immutable, so the engine can keep one per block edge. <see cref="Unreached"/> is the
/// bottom: no path reaches the point (yet).
/// </summary>
internal sealed class PathState<TValue>
{
    private PathState(bool isReached, ImmutableDictionary<AccessPath, TValue> values, int memberPaths)
    {
        IsReached = isReached;
        Values = values;
        MemberPaths = memberPaths;
    }

    private PathState(bool isReached, ImmutableDictionary<AccessPath, TValue> values)
        : this(isReached, values, CountMemberPaths(values))
    {
    }

    /// <summary>How many stored paths go through a member (<c>model.head</c>, <c>this.x</c>): when none, nothing can hang off a variable.</summary>
    public int MemberPaths { get; }

    public static PathState<TValue> Unreached { get; } = new(false, ImmutableDictionary<AccessPath, TValue>.Empty);

    /// <summary>Reached, with nothing known about any path: a method's entry, a catch handler's entry.</summary>
    public static PathState<TValue> Empty { get; } = new(true, ImmutableDictionary<AccessPath, TValue>.Empty);

    public bool IsReached { get; }

    public ImmutableDictionary<AccessPath, TValue> Values { get; }

    public TValue Get(AccessPath path, IValueLattice<TValue> lattice)
        => Values.TryGetValue(path, out var value) ? value : lattice.Unknown;

    /// <summary>
    /// Stores <paramref name="value"/> at <paramref name="path"/> and forgets every path through it: after
    /// <c>model = other;</c> nothing known about <c>model.head</c> still holds.
    /// </summary>
    public PathState<TValue> Set(AccessPath path, TValue value, IValueLattice<TValue> lattice)
    {
        // The common case (a local, no member paths stored) costs one dictionary update, not a scan. Storing to r.M also
        // forgets every other path through M: another variable may refer to the same object (var b = a; b.M = ...).
        var member = path.Members.IsEmpty ? null : path.Members[path.Members.Length - 1];
        var values = MemberPaths == 0 ? Values : Forget(Values, p => (path.IsPrefixOf(p) && !p.Equals(path)) || (member is not null && !p.Equals(path) && p.Contains(member)));
        var isUnknown = lattice.Equals(value, lattice.Unknown);
        if (isUnknown && !values.ContainsKey(path) && ReferenceEquals(values, Values))
        {
            return this;
        }

        values = isUnknown ? values.Remove(path) : values.SetItem(path, value);
        return MemberPaths == 0 && !IsMemberPath(path)
            ? new PathState<TValue>(true, values, 0)
            : new PathState<TValue>(true, values);
    }

    /// <summary>Forgets every path <paramref name="predicate"/> selects (they become unknown).</summary>
    public PathState<TValue> Forget(Func<AccessPath, bool> predicate)
    {
        var values = Forget(Values, predicate);
        return ReferenceEquals(values, Values) ? this : new PathState<TValue>(true, values);
    }

    private static ImmutableDictionary<AccessPath, TValue> Forget(ImmutableDictionary<AccessPath, TValue> values, Func<AccessPath, bool> predicate)
    {
        List<AccessPath>? remove = null;
        foreach (var pair in values)
        {
            if (predicate(pair.Key))
            {
                (remove ??= new List<AccessPath>()).Add(pair.Key);
            }
        }

        return remove is null ? values : values.RemoveRange(remove);
    }

    internal static PathState<TValue> Create(ImmutableDictionary<AccessPath, TValue> values) => new(true, values);

    private static bool IsMemberPath(AccessPath path) => !path.Members.IsEmpty || path.Root is IFieldSymbol or IPropertySymbol;

    private static int CountMemberPaths(ImmutableDictionary<AccessPath, TValue> values)
    {
        var count = 0;
        foreach (var pair in values)
        {
            if (IsMemberPath(pair.Key))
            {
                count++;
            }
        }

        return count;
    }
}

/// <summary>The lattice of <see cref="PathState{TValue}"/>: paths join pointwise, a path stored on one side only joins with <c>Unknown</c>.</summary>
internal sealed class PathStateLattice<TValue> : ILattice<PathState<TValue>>
{
    public PathStateLattice(IValueLattice<TValue> values) => ValueLattice = values;

    public IValueLattice<TValue> ValueLattice { get; }

    public PathState<TValue> Bottom => PathState<TValue>.Unreached;

    public PathState<TValue> Join(PathState<TValue> left, PathState<TValue> right)
    {
        if (!left.IsReached || ReferenceEquals(left, right))
        {
            return right;
        }

        if (!right.IsReached || ReferenceEquals(left.Values, right.Values))
        {
            return left;
        }

        var unknown = ValueLattice.Unknown;
        var builder = ImmutableDictionary.CreateBuilder<AccessPath, TValue>();
        foreach (var pair in left.Values)
        {
            var joined = ValueLattice.Join(pair.Value, right.Values.TryGetValue(pair.Key, out var other) ? other : unknown);
            if (!ValueLattice.Equals(joined, unknown))
            {
                builder[pair.Key] = joined;
            }
        }

        foreach (var pair in right.Values)
        {
            if (!left.Values.ContainsKey(pair.Key))
            {
                var joined = ValueLattice.Join(unknown, pair.Value);
                if (!ValueLattice.Equals(joined, unknown))
                {
                    builder[pair.Key] = joined;
                }
            }
        }

        return PathState<TValue>.Create(builder.ToImmutable());
    }

    public bool Equals(PathState<TValue> left, PathState<TValue> right)
    {
        if (ReferenceEquals(left, right))
        {
            return true;
        }

        if (left.IsReached != right.IsReached || left.Values.Count != right.Values.Count)
        {
            return false;
        }

        if (ReferenceEquals(left.Values, right.Values))
        {
            return true;
        }

        foreach (var pair in left.Values)
        {
            if (!right.Values.TryGetValue(pair.Key, out var other) || !ValueLattice.Equals(pair.Value, other))
            {
                return false;
            }
        }

        return true;
    }
}
