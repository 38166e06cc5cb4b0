using System;
using MlPitfalls.Analyzers.FlowAnalysis;

namespace MlPitfalls.Analyzers.Analyses.Gradients;

/// <summary>What one optimizer's gradient buffers hold, as far as training goes.</summary>
internal enum GradientContent
{
    /// <summary>Cleared, and no backward() since: a step now applies nothing.</summary>
    Zero = 0,

    /// <summary>A backward() added gradients since the buffers were last cleared, and no step has applied them yet.</summary>
    Fresh = 1,

    /// <summary>A step applied what the buffers hold, and no backward() added more since.</summary>
    Applied = 2,

    /// <summary>A step applied what the buffers hold and a backward() added more on top: the next step applies both.</summary>
    Stale = 3,
}

/// <summary>
/// One optimizer's gradient state at a point, relative to the state it had where the analysis started: a relation from
/// each state it may have had there to the states it may have now. A state is a <see cref="GradientContent"/> and a
/// "lost" flag (since the last step, a clear erased gradients that no step had applied). Relations compose, which is
/// what lets a helper's summary (its effect from an unchanged entry) apply at each call, and a step inside the helper be
/// judged with the caller's state. Where the entry is unknown (a member's own analysis) only the image of every entry
/// state counts: <see cref="Possible"/>.
/// </summary>
internal readonly struct GradientHistory : IJoinable<GradientHistory>
{
    private const int States = 8;
    private const byte AllStates = 0xFF;

    // Row i (byte i) is the set of states reachable from entry state i.
    private readonly ulong _rows;

    private GradientHistory(ulong rows) => _rows = rows;

    /// <summary>Nothing happened: every state maps to itself (a summary's seed).</summary>
    public static GradientHistory Unchanged { get; } = FromMap(state => (byte)(1 << state));

    /// <summary>Anything may have happened.</summary>
    public static GradientHistory Unknown { get; } = new(ulong.MaxValue);

    /// <summary>No path reaches the point.</summary>
    public static GradientHistory Bottom { get; } = new(0);

    /// <summary>The lattice the dataflow engine runs on.</summary>
    public static JoinableLattice<GradientHistory> Lattice { get; } = new(Bottom, Unknown);

    /// <summary><c>loss.backward()</c>: adds gradients to the buffers.</summary>
    public static GradientHistory Backward { get; } = FromMap(state => Bit(Content(state) switch
    {
        GradientContent.Zero or GradientContent.Fresh => State(GradientContent.Fresh, IsLost(state)),
        _ => State(GradientContent.Stale, IsLost(state)),
    }));

    /// <summary><c>optimizer.step()</c>: applies what the buffers hold, which stays there.</summary>
    public static GradientHistory Step { get; } = FromMap(_ => Bit(State(GradientContent.Applied, lost: false)));

    /// <summary><c>optimizer.zero_grad()</c>: empties the buffers, losing what no step applied yet.</summary>
    public static GradientHistory Clear { get; } = FromMap(state => Bit(ClearedFrom(state)));

    /// <summary>A clear that may or may not happen, or may clear another optimizer (an unread helper handed this one).</summary>
    public static GradientHistory MaybeClear { get; } = FromMap(state => (byte)(Bit(state) | Bit(ClearedFrom(state))));

    /// <summary>A step of an optimizer that may be this one under another name.</summary>
    public static GradientHistory MaybeStep { get; } = FromMap(state => (byte)(Bit(state) | Bit(State(GradientContent.Applied, lost: false))));

    /// <summary>The states possible now, whatever the state was at the start (a member's own analysis starts from unknown).</summary>
    public byte Possible
    {
        get
        {
            byte image = 0;
            for (var state = 0; state < States; state++)
            {
                image |= Row(state);
            }

            return image;
        }
    }

    /// <summary>True when no path reaches the point.</summary>
    public bool IsBottom => _rows == 0;

    /// <summary>True when, on every path, the buffers hold <paramref name="content"/> (and there is a path).</summary>
    public bool MustHold(GradientContent content) => MustBe(state => Content(state) == content);

    /// <summary>True when, on every path, the buffers hold <paramref name="content"/> and a clear lost unapplied gradients since the last step.</summary>
    public bool MustHoldAfterLoss(GradientContent content) => MustBe(state => Content(state) == content && IsLost(state));

    /// <summary>True when, on every path, the buffers hold gradients no step applied yet (what a clear here erases).</summary>
    public bool MustHoldUnapplied => MustBe(state => Content(state) is GradientContent.Fresh or GradientContent.Stale);

    private bool MustBe(Func<int, bool> predicate)
    {
        var possible = Possible;
        if (possible == 0)
        {
            return false;
        }

        for (var state = 0; state < States; state++)
        {
            if ((possible & Bit(state)) != 0 && !predicate(state))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>This history followed by <paramref name="next"/>.</summary>
    public GradientHistory Then(GradientHistory next)
    {
        ulong rows = 0;
        for (var state = 0; state < States; state++)
        {
            var row = Row(state);
            byte reached = 0;
            for (var middle = 0; middle < States; middle++)
            {
                if ((row & Bit(middle)) != 0)
                {
                    reached |= next.Row(middle);
                }
            }

            rows |= (ulong)reached << (state * 8);
        }

        return new GradientHistory(rows);
    }

    /// <summary>Either history (two paths meet, or an effect may or may not apply).</summary>
    public GradientHistory Join(GradientHistory other) => new(_rows | other._rows);

    public bool Equals(GradientHistory other) => _rows == other._rows;

    public override bool Equals(object? obj) => obj is GradientHistory other && Equals(other);

    public override int GetHashCode() => _rows.GetHashCode();

    public override string ToString() => $"{{{string.Join(", ", Describe())}}}";

    private System.Collections.Generic.IEnumerable<string> Describe()
    {
        var possible = Possible;
        for (var state = 0; state < States; state++)
        {
            if ((possible & Bit(state)) != 0)
            {
                yield return IsLost(state) ? Content(state) + "+lost" : Content(state).ToString();
            }
        }
    }

    private byte Row(int state) => (byte)(_rows >> (state * 8));

    private static GradientHistory FromMap(Func<int, byte> map)
    {
        ulong rows = 0;
        for (var state = 0; state < States; state++)
        {
            rows |= (ulong)map(state) << (state * 8);
        }

        return new GradientHistory(rows);
    }

    private static int ClearedFrom(int state)
        => State(GradientContent.Zero, IsLost(state) || Content(state) is GradientContent.Fresh or GradientContent.Stale);

    private static GradientContent Content(int state) => (GradientContent)(state & 3);

    private static bool IsLost(int state) => (state & 4) != 0;

    private static int State(GradientContent content, bool lost) => (int)content | (lost ? 4 : 0);

    private static byte Bit(int state) => (byte)(1 << state);
}
