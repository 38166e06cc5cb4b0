using System;
using System.Collections.Generic;
using System.Collections.Immutable;
using System.Linq;
using Microsoft.CodeAnalysis;

namespace MlPitfalls.Analyzers.Analyses.Shapes;

/// <summary>
/// A view or reshape that reorders dimensions: the source dimensions each requested size is made of
/// (<see cref="Groups"/>, in the order the sizes are written), when every size is known to be a product of them.
/// </summary>
internal sealed class Reordering
{
    public Reordering(ImmutableArray<Dim> sourceDims, bool rankKnown, ImmutableArray<ImmutableArray<int>> groups)
    {
        SourceDims = sourceDims;
        RankKnown = rankKnown;
        Groups = groups;
    }

    /// <summary>The dimensions of the tensor viewed (for an unknown rank, those the sizes name).</summary>
    public ImmutableArray<Dim> SourceDims { get; }

    public bool RankKnown { get; }

    /// <summary>For each requested size that is not 1, the source dimensions it merges; default when only part is known.</summary>
    public ImmutableArray<ImmutableArray<int>> Groups { get; }

    /// <summary>
    /// The permutation that brings the source dimensions into the order the sizes ask for: every source dimension once,
    /// size-1 dimensions kept after the dimension they followed. Default when <see cref="Groups"/> is.
    /// </summary>
    public ImmutableArray<int> Permutation
    {
        get
        {
            if (Groups.IsDefault)
            {
                return default;
            }

            var order = new List<int>();
            foreach (var group in Groups)
            {
                order.AddRange(group);
            }

            // Size-1 dimensions: after the dimension that precedes them in the source (or first).
            for (var k = 0; k < SourceDims.Length; k++)
            {
                if (SourceDims[k].IsOne)
                {
                    var before = k - 1;
                    while (before >= 0 && SourceDims[before].IsOne)
                    {
                        before--;
                    }

                    order.Insert(before < 0 ? 0 : order.IndexOf(before) + 1, k);
                }
            }

            return order.ToImmutableArray();
        }
    }

    /// <summary>True when the sizes are the source dimensions themselves, reordered: permute alone gives the requested shape.</summary>
    public bool IsPureReordering(int sizeCount)
        => !Groups.IsDefault && sizeCount == SourceDims.Length && Groups.Length == SourceDims.Length && Groups.All(g => g.Length == 1);
}

/// <summary>What a view of a permuted tensor does, as far as the symbolic shapes tell.</summary>
internal enum ViewOutcome
{
    Unknown,
    Succeeds,
    Throws,
}

/// <summary>
/// The questions the layout rules ask of a view: whether its sizes reorder the source dimensions (MLP009), and whether
/// a permuted tensor provably takes it without a copy (MLP010). Pure functions of symbolic shapes, so that they can be
/// tested on shapes alone and checked against libtorch.
/// </summary>
internal static class ViewJudgement
{
    /// <summary>Beyond this many dimensions the search for an assignment of dimensions to sizes is not attempted.</summary>
    private const int MaxSearchedDims = 10;

    /// <summary>How many candidate groups the search for a complete assignment tries before it gives up (no claim).</summary>
    private const int MaxSearchedGroups = 5_000;

    /// <summary>The size <c>-1</c> stands for: the element count over the other sizes, when both are known.</summary>
    public static Dim Inferred(ShapeValue tensor, ImmutableArray<Dim> sizes)
    {
        if (!tensor.HasRank || tensor.Kind != ShapeKind.Tensor)
        {
            return Dim.Unknown;
        }

        var total = Dim.One;
        foreach (var dim in tensor.Dims)
        {
            total = total.Times(dim);
        }

        var inferred = 0;
        foreach (var size in sizes)
        {
            if (size.IsMinusOne)
            {
                inferred++;
                continue;
            }

            total = total.DividedBy(size);
        }

        return inferred == 1 ? total : Dim.Unknown;
    }

    /// <summary>True when the dimensions larger than 1 are in memory order: the tensor is contiguous.</summary>
    public static bool IsInMemoryOrder(ImmutableArray<Dim> dims, ImmutableArray<int> order)
    {
        var last = -1;
        for (var i = 0; i < dims.Length; i++)
        {
            if (dims[i].IsOne)
            {
                continue;
            }

            if (order[i] < last)
            {
                return false;
            }

            last = order[i];
        }

        return true;
    }

    /// <summary>True when the dimensions <paramref name="start"/> to <paramref name="end"/> (larger than 1) follow each other in memory, outermost first.</summary>
    public static bool FollowEachOtherInMemory(ImmutableArray<Dim> dims, ImmutableArray<int> order, int start, int end)
    {
        var chunks = Chunks(dims, order);
        int? chunk = null;
        for (var i = start; i <= end; i++)
        {
            if (dims[i].IsOne)
            {
                continue;
            }

            if (chunk is { } c && chunks[i] != c)
            {
                return false;
            }

            chunk = chunks[i];
        }

        return true;
    }

    /// <summary>
    /// For each dimension, the run of dimensions that follow each other in memory it belongs to (size-1 dimensions take
    /// the run of the one before): view can merge dimensions within a run and split any dimension, never merge across runs.
    /// </summary>
    private static int[] Chunks(ImmutableArray<Dim> dims, ImmutableArray<int> order)
    {
        // Memory rank among the dimensions larger than 1.
        var big = Enumerable.Range(0, dims.Length).Where(i => !dims[i].IsOne).OrderBy(i => order[i]).ToList();
        var rank = new int[dims.Length];
        for (var r = 0; r < big.Count; r++)
        {
            rank[big[r]] = r;
        }

        var chunks = new int[dims.Length];
        var chunk = 0;
        int? previous = null;
        for (var i = 0; i < dims.Length; i++)
        {
            if (dims[i].IsOne)
            {
                chunks[i] = chunk;
                continue;
            }

            if (previous is { } p && rank[i] != rank[p] + 1)
            {
                chunk++;
            }

            chunks[i] = chunk;
            previous = i;
        }

        return chunks;
    }

    /// <summary>
    /// What <c>view(sizes)</c> of the permuted <paramref name="tensor"/> does, read left to right as libtorch does
    /// (measured: docs/rules/MLP010.md): it succeeds when the sizes only split dimensions or merge dimensions that follow
    /// each other in memory, and throws when they must merge dimensions that do not (unless one of them has size 1).
    /// <see cref="ViewOutcome.Unknown"/> when the shapes cannot tell.
    /// </summary>
    public static ViewOutcome ViewOfPermuted(ShapeValue tensor, ImmutableArray<Dim> sizes)
    {
        if (!tensor.IsPermuted)
        {
            return ViewOutcome.Unknown;
        }

        if (!tensor.HasRank || tensor.Order.IsDefault)
        {
            // The order is unknown (a tensor of unknown rank, narrowed or indexed after the move): the moved dimensions
            // may have size 1 or be gone, and then any view succeeds.
            return ViewOutcome.Unknown;
        }

        if (NumericOutcome(tensor, sizes) is { } numeric)
        {
            return numeric;
        }

        var chunks = Chunks(tensor.Dims, tensor.Order);
        var source = Enumerable.Range(0, tensor.Rank).Where(i => !tensor.Dims[i].IsOne).ToList();
        var target = new List<Dim>();
        foreach (var size in sizes)
        {
            var resolved = size.IsMinusOne ? Inferred(tensor, sizes) : size;
            if (!resolved.IsKnown)
            {
                // view(-1) and the like: one size for everything, so every dimension is merged into it.
                return sizes.Length == 1 && size.IsMinusOne && chunks.Distinct().Count() > 1 && source.Count > 1 ? ViewOutcome.Throws : ViewOutcome.Unknown;
            }

            if (!resolved.IsOne)
            {
                target.Add(resolved);
            }
        }

        if (source.Any(i => !tensor.Dims[i].IsKnown))
        {
            return ViewOutcome.Unknown;
        }

        var sourceDims = source.Select(i => tensor.Dims[i]).ToList();
        int s = 0, t = 0;
        while (s < source.Count || t < target.Count)
        {
            if (s >= source.Count || t >= target.Count)
            {
                return ViewOutcome.Unknown; // the element counts differ symbolically
            }

            var chunk = chunks[source[s]];
            var sourceSize = tensor.Dims[source[s++]];
            var targetSize = target[t++];

            // One group: source dimensions and sizes with the same product. A size made of the next source dimensions
            // merges them; source dimensions made of the next sizes are split; a size that also takes part of the next
            // dimension (h * w against h, then w * c) merges that dimension in and the group goes on.
            while (!sourceSize.Equals(targetSize))
            {
                if (Prefix(sourceDims, s, sourceSize, targetSize) is { } merged)
                {
                    if (Enumerable.Range(s, merged - s).Any(k => chunks[source[k]] != chunk))
                    {
                        return ViewOutcome.Throws; // merges dimensions that do not follow each other in memory
                    }

                    s = merged;
                    break;
                }

                if (Prefix(target, t, targetSize, sourceSize) is { } split)
                {
                    t = split;
                    break;
                }

                if (IsWholeMultiple(targetSize.DividedBy(sourceSize)) && s < source.Count)
                {
                    if (chunks[source[s]] != chunk)
                    {
                        return ViewOutcome.Throws;
                    }

                    sourceSize = sourceSize.Times(tensor.Dims[source[s++]]);
                }
                else if (IsWholeMultiple(sourceSize.DividedBy(targetSize)) && t < target.Count)
                {
                    targetSize = targetSize.Times(target[t++]);
                }
                else
                {
                    return ViewOutcome.Unknown;
                }
            }
        }

        return ViewOutcome.Succeeds;
    }

    /// <summary>True for a product that is a whole number larger than 1 whatever its atoms are (positive powers, integer coefficient).</summary>
    private static bool IsWholeMultiple(Dim quotient)
        => quotient.IsKnown && quotient.Denominator == 1 && quotient.Numerator >= 1 && !quotient.IsOne
           && quotient.Factors.All(f => f.Power > 0);

    private static bool TryMultiply(ref long product, long factor)
    {
        try
        {
            product = checked(product * factor);
            return true;
        }
        catch (OverflowException)
        {
            return false;
        }
    }

    /// <summary>
    /// When every dimension and size is a number: libtorch's own test (computeStride in ATen's TensorUtils.cpp), run on
    /// the strides the permutation gave. Null when something is symbolic.
    /// </summary>
    private static ViewOutcome? NumericOutcome(ShapeValue tensor, ImmutableArray<Dim> sizes)
    {
        var rank = tensor.Rank;
        var shape = new long[rank];
        long numel = 1;
        for (var i = 0; i < rank; i++)
        {
            if (!tensor.Dims[i].IsConstant || tensor.Dims[i].Denominator != 1 || tensor.Dims[i].Numerator < 1)
            {
                return null;
            }

            shape[i] = tensor.Dims[i].Numerator;
            if (!TryMultiply(ref numel, shape[i]))
            {
                return null;
            }
        }

        var requested = new long[sizes.Length];
        var inferred = -1;
        long known = 1;
        for (var i = 0; i < sizes.Length; i++)
        {
            if (sizes[i].IsMinusOne && inferred < 0)
            {
                inferred = i;
                continue;
            }

            if (!sizes[i].IsConstant || sizes[i].Denominator != 1 || sizes[i].Numerator < 1)
            {
                return null;
            }

            requested[i] = sizes[i].Numerator;
            if (!TryMultiply(ref known, requested[i]))
            {
                return null; // more elements than a long counts: libtorch rejects it for another reason
            }
        }

        if (inferred >= 0)
        {
            if (numel % known != 0)
            {
                return null;
            }

            requested[inferred] = numel / known;
            known = numel;
        }

        if (known != numel)
        {
            return null; // not a view of this many elements: it throws for another reason
        }

        // Strides: the dimensions in memory order are contiguous; each dimension takes the stride of its place.
        var byPlace = Enumerable.Range(0, rank).OrderBy(i => tensor.Order[i]).ToArray();
        var stride = new long[rank];
        long next = 1;
        for (var p = rank - 1; p >= 0; p--)
        {
            stride[byPlace[p]] = next;
            next *= shape[byPlace[p]];
        }

        var viewD = requested.Length - 1;
        var chunkBaseStride = rank > 0 ? stride[rank - 1] : 1;
        long tensorNumel = 1, viewNumel = 1;
        for (var tensorD = rank - 1; tensorD >= 0; tensorD--)
        {
            tensorNumel *= shape[tensorD];
            if (tensorD == 0 || (shape[tensorD - 1] != 1 && stride[tensorD - 1] != tensorNumel * chunkBaseStride))
            {
                while (viewD >= 0 && (viewNumel < tensorNumel || requested[viewD] == 1))
                {
                    viewNumel *= requested[viewD];
                    viewD--;
                }

                if (viewNumel != tensorNumel)
                {
                    return ViewOutcome.Throws;
                }

                if (tensorD > 0)
                {
                    chunkBaseStride = stride[tensorD - 1];
                    tensorNumel = 1;
                    viewNumel = 1;
                }
            }
        }

        return viewD == -1 ? ViewOutcome.Succeeds : ViewOutcome.Throws;
    }

    /// <summary>The index after the values (source dimensions or sizes) from <paramref name="from"/> whose product with <paramref name="start"/> is <paramref name="goal"/>; null when none.</summary>
    private static int? Prefix(IReadOnlyList<Dim> values, int from, Dim start, Dim goal)
    {
        var product = start;
        for (var k = from; k < values.Count; k++)
        {
            product = product.Times(values[k]);
            if (product.Equals(goal))
            {
                return k + 1;
            }
        }

        return null;
    }

    /// <summary>
    /// How <c>view(sizes)</c> or <c>reshape(sizes)</c> of <paramref name="tensor"/> reorders its dimensions, or null when
    /// it provably does not, or the shapes cannot tell. Read left to right, the sizes must take the source dimensions in
    /// order, merging neighbours or splitting one; a reordering is reported when the sizes are the source dimensions in
    /// another order (with merges), or when the known sizes alone place a dimension before one that precedes it.
    /// </summary>
    public static Reordering? FindReordering(ShapeValue tensor, ImmutableArray<Dim> sizes, SyntaxNode at)
    {
        if (tensor.Kind != ShapeKind.Tensor || sizes.Length < 2)
        {
            return null;
        }

        var rankKnown = tensor.HasRank;
        ImmutableArray<Dim> dims;
        if (rankKnown)
        {
            dims = tensor.Dims;
        }
        else if (tensor.Source is { } source)
        {
            // Unknown rank: the dimensions the code reads or the sizes name, from the first to the last.
            var last = source.HighestReadBefore(at);
            foreach (var size in sizes)
            {
                foreach (var (atom, _) in size.Factors)
                {
                    if (source.IndexOf(atom) is { } index && index > last)
                    {
                        last = index;
                    }
                }
            }

            if (last < 1)
            {
                return null;
            }

            dims = Enumerable.Range(0, last + 1).Select(i => source[i]).ToImmutableArray();
        }
        else
        {
            return null;
        }

        if (dims.Length > MaxSearchedDims)
        {
            return null;
        }

        // -1 stays -1: it takes whatever the other sizes leave, which is also what an unknown rank needs.
        var resolved = sizes;
        var complete = CompleteAssignment(dims, resolved);
        if (complete is { IsDefault: false } groups)
        {
            return new Reordering(dims, rankKnown, groups);
        }

        if (complete is null)
        {
            return null; // the sizes take the dimensions in order
        }

        return PlacedOutOfOrder(dims, resolved) ? new Reordering(dims, rankKnown, default) : null;
    }

    /// <summary>
    /// When every size (but 1s) is a product of distinct source dimensions using all of them, a single -1 taking the
    /// dimensions left: null if some such assignment keeps the source order, else the first found. Default (not null)
    /// when no complete assignment exists.
    /// </summary>
    private static ImmutableArray<ImmutableArray<int>>? CompleteAssignment(ImmutableArray<Dim> dims, ImmutableArray<Dim> sizes)
    {
        var source = Enumerable.Range(0, dims.Length).Where(i => !dims[i].IsOne).ToList();
        var targets = sizes.Where(s => !s.IsOne).ToList();
        var inferred = targets.FindIndex(s => s.IsMinusOne);
        if (source.Any(i => !dims[i].IsKnown) || targets.Any(s => !s.IsKnown) || targets.Count(s => s.IsMinusOne) > 1)
        {
            return default;
        }

        if (KeepsOrder(dims, source, targets, inferred))
        {
            return null;
        }

        var used = new bool[dims.Length];
        var groups = new ImmutableArray<int>[targets.Count];
        var budget = MaxSearchedGroups;
        var found = Assign(0);
        if (budget < 0)
        {
            return null; // gave up: equal sizes make the search exponential, and an unfinished search proves nothing
        }

        return found ? groups.ToImmutableArray() : default;

        bool Assign(int t)
        {
            if (t == targets.Count)
            {
                if (inferred >= 0)
                {
                    groups[inferred] = source.Where(i => !used[i]).ToImmutableArray();
                    return groups[inferred].Length > 0;
                }

                return source.All(i => used[i]);
            }

            if (t == inferred)
            {
                return Assign(t + 1);
            }

            var free = source.Where(i => !used[i]).ToList();
            for (var mask = 1; mask < 1 << free.Count; mask++)
            {
                if (--budget < 0)
                {
                    return false;
                }

                var product = Dim.One;
                var group = new List<int>();
                for (var b = 0; b < free.Count; b++)
                {
                    if ((mask & (1 << b)) != 0)
                    {
                        product = product.Times(dims[free[b]]);
                        group.Add(free[b]);
                    }
                }

                if (!product.Equals(targets[t]))
                {
                    continue;
                }

                foreach (var k in group)
                {
                    used[k] = true;
                }

                groups[t] = group.ToImmutableArray();
                if (Assign(t + 1))
                {
                    return true;
                }

                foreach (var k in group)
                {
                    used[k] = false;
                }
            }

            return false;
        }
    }

    /// <summary>
    /// True when the sizes take the source dimensions in order: those before a -1 from the front, those after it from the
    /// back, each the product of the next dimensions, the -1 whatever is left between.
    /// </summary>
    private static bool KeepsOrder(ImmutableArray<Dim> dims, List<int> source, List<Dim> targets, int inferred)
    {
        var front = 0;
        var back = source.Count;
        var end = inferred >= 0 ? inferred : targets.Count;
        for (var t = 0; t < end; t++)
        {
            var product = Dim.One;
            var start = front;
            while (front < back && !product.Equals(targets[t]))
            {
                product = product.Times(dims[source[front++]]);
            }

            if (!product.Equals(targets[t]) || front == start)
            {
                return false;
            }
        }

        if (inferred < 0)
        {
            return front == source.Count;
        }

        for (var t = targets.Count - 1; t > inferred; t--)
        {
            var product = Dim.One;
            var start = back;
            while (back > front && !product.Equals(targets[t]))
            {
                product = product.Times(dims[source[--back]]);
            }

            if (!product.Equals(targets[t]) || back == start)
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>
    /// True when the known sizes alone prove a source dimension placed after one it precedes: each dimension is named by
    /// an atom no other source dimension has, a size names the dimensions whose atoms it multiplies, and either a later
    /// size names an earlier dimension, or a dimension no size names (but that exists: the rank is known, or the code
    /// reads a later one) can only go where the order is broken.
    /// </summary>
    private static bool PlacedOutOfOrder(ImmutableArray<Dim> dims, ImmutableArray<Dim> sizes)
    {
        var own = new List<DimAtom>[dims.Length];
        for (var k = 0; k < dims.Length; k++)
        {
            own[k] = new List<DimAtom>();
            foreach (var (atom, _) in dims[k].Factors)
            {
                var shared = false;
                for (var other = 0; other < dims.Length && !shared; other++)
                {
                    shared = other != k && dims[other].PowerOf(atom) != 0;
                }

                if (!shared)
                {
                    own[k].Add(atom);
                }
            }
        }

        // What each size names; null for a size that is unknown, -1, or divides by a dimension's own atom.
        var named = new List<int>?[sizes.Length];
        var exact = new bool[sizes.Length];
        for (var j = 0; j < sizes.Length; j++)
        {
            var size = sizes[j];
            if (!size.IsKnown || size.IsMinusOne || size.IsOne)
            {
                continue;
            }

            var names = new List<int>();
            var clear = true;
            var product = Dim.One;
            for (var k = 0; k < dims.Length && clear; k++)
            {
                foreach (var atom in own[k])
                {
                    var power = size.PowerOf(atom);
                    if (power < 0)
                    {
                        clear = false;
                    }
                    else if (power > 0 && !names.Contains(k))
                    {
                        names.Add(k);
                        product = product.Times(dims[k]);
                    }
                }
            }

            if (clear)
            {
                named[j] = names;
                exact[j] = names.Count > 0 && product.Equals(size);
            }
        }

        // A later size naming an earlier dimension.
        var latestNamed = -1;
        for (var j = 0; j < sizes.Length; j++)
        {
            if (named[j] is not { Count: > 0 } names)
            {
                continue;
            }

            if (names.Min() < latestNamed)
            {
                return true;
            }

            latestNamed = System.Math.Max(latestNamed, names.Max());
        }

        // Sizes that name no dimension (heads, 2) between two sizes that are exactly neighbouring dimensions have nothing
        // to come from: (B, T, C) viewed as (B, heads, T, C / heads) puts T after heads, which must be split off C.
        for (var j1 = 0; j1 < sizes.Length; j1++)
        {
            if (!exact[j1])
            {
                continue;
            }

            var between = 0;
            for (var j2 = j1 + 1; j2 < sizes.Length; j2++)
            {
                if (exact[j2])
                {
                    var last = named[j1]!.Max();
                    var next = named[j2]!.Min();
                    if (between > 0 && last < next && Enumerable.Range(last + 1, next - last - 1).All(k => dims[k].IsOne))
                    {
                        return true;
                    }

                    break;
                }

                if (named[j2] is not { Count: 0 } || sizes[j2].IsOne || sizes[j2].IsMinusOne || !sizes[j2].IsKnown)
                {
                    break;
                }

                between++;
            }
        }

        // A dimension no size names (with an atom of its own, or of unknown size) must go into a size that is not
        // exactly the dimensions it names; if every such place breaks the order, the view reorders.
        for (var k = 0; k < dims.Length; k++)
        {
            if (dims[k].IsOne || (dims[k].IsKnown && own[k].Count == 0) || named.Any(n => n is not null && n.Contains(k)))
            {
                continue;
            }

            var anyPlace = false;
            var anyOrderedPlace = false;
            for (var j = 0; j < sizes.Length; j++)
            {
                if (exact[j] || sizes[j].IsOne)
                {
                    continue;
                }

                anyPlace = true;
                var before = Enumerable.Range(0, j).Where(i => named[i] is { Count: > 0 }).SelectMany(i => named[i]!);
                var after = Enumerable.Range(j + 1, sizes.Length - j - 1).Where(i => named[i] is { Count: > 0 }).SelectMany(i => named[i]!);
                if (before.All(n => n < k) && after.All(n => n > k))
                {
                    anyOrderedPlace = true;
                    break;
                }
            }

            if (anyPlace && !anyOrderedPlace)
            {
                return true;
            }
        }

        return false;
    }
}
