using System;
using System.Collections.Generic;
using System.Collections.Immutable;
using System.Text;
using MlPitfalls.Analyzers.Infrastructure;

namespace MlPitfalls.Analyzers.Analyses.Shapes;

/// <summary>
/// A symbol a dimension is made of: one dimension of one tensor (<c>x.shape[1]</c>), a parameter or field the method
/// never writes (<c>heads</c>), or an integer the analysis cannot compute (<c>GetSize()</c>, <c>n - 1</c>). Two atoms
/// are the same value only when they are the same object; distinct atoms may still be equal numbers at run time, which
/// is why a rule reports only what holds symbolically (a dimension moved before another), never what needs sizes to differ.
/// </summary>
internal sealed class DimAtom
{
    private readonly object _name; // a string, or the syntax node whose code names the atom (made into text when asked)
    private readonly string _suffix;

    public DimAtom(int id, object name, string suffix = "")
    {
        Id = id;
        _name = name;
        _suffix = suffix;
    }

    /// <summary>Creation order within one analysis: the canonical order of atoms in a <see cref="Dim"/>.</summary>
    public int Id { get; }

    /// <summary>How a message shows the atom: the code it was read from (<c>x.shape[1]</c>, <c>heads</c>).</summary>
    public string Name => MessageText.OneLine((_name is string text ? text : _name.ToString()) + _suffix, maxLength: 40);

    public override string ToString() => Name;
}

/// <summary>
/// The symbolic size of one dimension: a rational coefficient times a product of atoms with integer exponents
/// (<c>b</c>, <c>h * w</c>, <c>d / heads</c>, <c>3</c>), or unknown. Sums are not represented (<c>n + 1</c> is an atom
/// of its own): products and quotients are all that view and reshape arguments are made of in practice, and they keep
/// equality decidable (two dims are equal when their normal forms are).
/// </summary>
internal readonly struct Dim : IEquatable<Dim>
{
    private readonly ImmutableArray<(DimAtom Atom, int Power)> _factors;

    private Dim(long numerator, long denominator, ImmutableArray<(DimAtom Atom, int Power)> factors)
    {
        Numerator = numerator;
        Denominator = denominator;
        _factors = factors;
    }

    public static Dim Unknown => default;

    public static Dim One { get; } = Constant(1);

    public bool IsKnown => !_factors.IsDefault;

    public long Numerator { get; }

    public long Denominator { get; }

    /// <summary>The atoms, in <see cref="DimAtom.Id"/> order, each with a non-zero power.</summary>
    public ImmutableArray<(DimAtom Atom, int Power)> Factors => _factors.IsDefault ? ImmutableArray<(DimAtom, int)>.Empty : _factors;

    /// <summary>True for a known number (no atoms).</summary>
    public bool IsConstant => IsKnown && _factors.IsEmpty;

    /// <summary>True for the constant 1: a dimension that view may add or drop anywhere without moving data.</summary>
    public bool IsOne => IsConstant && Numerator == 1 && Denominator == 1;

    /// <summary>True for the constant -1 (the "infer this one" argument of view and reshape).</summary>
    public bool IsMinusOne => IsConstant && Numerator == -1 && Denominator == 1;

    public static Dim Constant(long value) => new(value, 1, ImmutableArray<(DimAtom, int)>.Empty);

    public static Dim Of(DimAtom atom) => new(1, 1, ImmutableArray.Create((atom, 1)));

    public Dim Times(Dim other) => Combine(other, 1);

    public Dim DividedBy(Dim other) => Combine(other, -1);

    /// <summary>The power <paramref name="atom"/> has in this dim (0 when absent).</summary>
    public int PowerOf(DimAtom atom)
    {
        foreach (var (a, power) in Factors)
        {
            if (ReferenceEquals(a, atom))
            {
                return power;
            }
        }

        return 0;
    }

    private Dim Combine(Dim other, int sign)
    {
        if (!IsKnown || !other.IsKnown || (sign < 0 && other.Numerator == 0))
        {
            return Unknown;
        }

        long numerator, denominator;
        try
        {
            numerator = checked(Numerator * (sign > 0 ? other.Numerator : other.Denominator));
            denominator = checked(Denominator * (sign > 0 ? other.Denominator : other.Numerator));
        }
        catch (OverflowException)
        {
            return Unknown;
        }

        if (numerator == long.MinValue || denominator == long.MinValue)
        {
            return Unknown; // no positive counterpart to normalise the sign or take the gcd with
        }

        if (denominator < 0)
        {
            numerator = -numerator;
            denominator = -denominator;
        }

        var gcd = Gcd(Math.Abs(numerator), denominator);
        if (gcd > 1)
        {
            numerator /= gcd;
            denominator /= gcd;
        }

        var factors = new List<(DimAtom Atom, int Power)>(_factors.Length + other._factors.Length);
        int i = 0, j = 0;
        while (i < _factors.Length || j < other._factors.Length)
        {
            if (j >= other._factors.Length || (i < _factors.Length && _factors[i].Atom.Id < other._factors[j].Atom.Id))
            {
                factors.Add(_factors[i++]);
            }
            else if (i >= _factors.Length || other._factors[j].Atom.Id < _factors[i].Atom.Id)
            {
                factors.Add((other._factors[j].Atom, sign * other._factors[j].Power));
                j++;
            }
            else
            {
                var power = _factors[i].Power + (sign * other._factors[j].Power);
                if (power != 0)
                {
                    factors.Add((_factors[i].Atom, power));
                }

                i++;
                j++;
            }
        }

        return new Dim(numerator, denominator, factors.ToImmutableArray());
    }

    private static long Gcd(long a, long b)
    {
        while (b != 0)
        {
            (a, b) = (b, a % b);
        }

        return a;
    }

    public bool Equals(Dim other)
    {
        if (!IsKnown || !other.IsKnown)
        {
            return IsKnown == other.IsKnown;
        }

        if (Numerator != other.Numerator || Denominator != other.Denominator || _factors.Length != other._factors.Length)
        {
            return false;
        }

        for (var i = 0; i < _factors.Length; i++)
        {
            if (!ReferenceEquals(_factors[i].Atom, other._factors[i].Atom) || _factors[i].Power != other._factors[i].Power)
            {
                return false;
            }
        }

        return true;
    }

    public override bool Equals(object? obj) => obj is Dim other && Equals(other);

    public override int GetHashCode()
    {
        if (!IsKnown)
        {
            return 0;
        }

        var hash = unchecked((int)Numerator * 31 + (int)Denominator);
        foreach (var (atom, power) in _factors)
        {
            hash = unchecked((hash * 31) + atom.Id * 7 + power);
        }

        return hash;
    }

    /// <summary>The dim as code would write it: <c>b</c>, <c>h * w</c>, <c>d / heads</c>, <c>2 * c</c>.</summary>
    public override string ToString() => ToString(atom => atom.Name);

    /// <summary>The dim written with <paramref name="name"/> for each atom (the code's own names for them).</summary>
    public string ToString(Func<DimAtom, string> name)
    {
        if (!IsKnown)
        {
            return "?";
        }

        var text = new StringBuilder();
        if (Numerator != 1 || _factors.IsEmpty || _factors[0].Power < 0)
        {
            text.Append(Numerator);
        }

        foreach (var (atom, power) in _factors)
        {
            for (var p = 0; p < power; p++)
            {
                text.Append(text.Length == 0 ? "" : " * ").Append(name(atom));
            }
        }

        foreach (var (atom, power) in _factors)
        {
            for (var p = 0; p < -power; p++)
            {
                text.Append(" / ").Append(name(atom));
            }
        }

        if (Denominator != 1)
        {
            text.Append(" / ").Append(Denominator);
        }

        return text.ToString();
    }
}
