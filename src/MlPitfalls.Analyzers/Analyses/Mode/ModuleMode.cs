using System;
using System.Collections.Immutable;
using Microsoft.CodeAnalysis;
using MlPitfalls.Analyzers.FlowAnalysis;

namespace MlPitfalls.Analyzers.Analyses.Mode;

/// <summary>The modes a module may be in at a point.</summary>
[Flags]
internal enum ModeKind
{
    None = 0,

    /// <summary>Training mode: what a new module starts in, and what <c>train()</c> sets.</summary>
    Train = 1,

    /// <summary>Evaluation mode: what <c>eval()</c> and <c>train(false)</c> set.</summary>
    Eval = 2,

    /// <summary>
    /// Only in a method summary: what the caller's module was in before the call (a parameter or field the method
    /// leaves alone on some path).
    /// </summary>
    Unchanged = 4,

    /// <summary>Anything else, or not known (<c>train(flag)</c>, a call that may set it).</summary>
    Unknown = 8,
}

/// <summary>
/// The mode lattice's value: the set of modes a module may be in on the paths that reach a point, and where each was
/// set (the <c>train()</c>/<c>eval()</c> call, the module's creation, the call of a helper that sets it), so a rule
/// can name it. A value is a *must* fact only when the set holds exactly one mode (<see cref="Is"/>).
/// </summary>
internal readonly struct ModuleMode : IJoinable<ModuleMode>
{
    /// <summary>At most this many origins are kept; more keeps the modes only.</summary>
    private const int MaxOrigins = 8;

    public ModuleMode(ModeKind kinds, ImmutableArray<SyntaxNode> origins)
    {
        Kinds = kinds;
        Origins = origins.IsDefault ? ImmutableArray<SyntaxNode>.Empty : origins;
    }

    public static ModuleMode Unknown { get; } = new(ModeKind.Unknown, ImmutableArray<SyntaxNode>.Empty);

    public static ModuleMode Bottom { get; } = new(ModeKind.None, ImmutableArray<SyntaxNode>.Empty);

    /// <summary>A summary's "the method leaves this module's mode as it was".</summary>
    public static ModuleMode Unchanged { get; } = new(ModeKind.Unchanged, ImmutableArray<SyntaxNode>.Empty);

    /// <summary>The lattice the dataflow engine runs modes on.</summary>
    public static JoinableLattice<ModuleMode> Lattice { get; } = new(Bottom, Unknown);

    public ModeKind Kinds { get; }

    /// <summary>Where the mode was set, on every path recorded.</summary>
    public ImmutableArray<SyntaxNode> Origins { get; }

    public static ModuleMode Of(ModeKind kind, SyntaxNode? origin)
        => new(kind, origin is null ? ImmutableArray<SyntaxNode>.Empty : ImmutableArray.Create(origin));

    /// <summary>True when the module is in <paramref name="kind"/> on every path (the "must" query rules report on).</summary>
    public bool Is(ModeKind kind) => Kinds == kind;

    /// <summary>
    /// What a summary's effect <paramref name="effect"/> leaves when applied to a module whose mode was this: the mode
    /// as it was where the method leaves it alone, the method's modes (set at <paramref name="call"/>) elsewhere.
    /// </summary>
    public ModuleMode After(ModuleMode effect, SyntaxNode call)
    {
        var set = effect.Kinds & ~ModeKind.Unchanged;
        var result = set == ModeKind.None ? Bottom : new ModuleMode(set, set == ModeKind.Unknown ? ImmutableArray<SyntaxNode>.Empty : ImmutableArray.Create(call));
        return (effect.Kinds & ModeKind.Unchanged) != 0 ? result.Join(this) : result;
    }

    public ModuleMode Join(ModuleMode other)
    {
        if (((Kinds | other.Kinds) & ModeKind.Unknown) != 0)
        {
            return Unknown; // absorbing: no path set is a must fact once one path is unknown, and the state need not store it
        }

        var origins = Origins;
        foreach (var origin in other.Origins)
        {
            if (!origins.Contains(origin))
            {
                origins = origins.Add(origin);
            }
        }

        return new ModuleMode(Kinds | other.Kinds, origins.Length > MaxOrigins ? ImmutableArray<SyntaxNode>.Empty : origins);
    }

    public bool Equals(ModuleMode other)
    {
        if (Kinds != other.Kinds || Origins.Length != other.Origins.Length)
        {
            return false;
        }

        foreach (var origin in Origins)
        {
            if (!other.Origins.Contains(origin))
            {
                return false;
            }
        }

        return true;
    }

    public override bool Equals(object? obj) => obj is ModuleMode other && Equals(other);

    public override int GetHashCode() => (int)Kinds;

    public override string ToString() => Kinds.ToString();
}
