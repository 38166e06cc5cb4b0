using System.Collections.Generic;
using System.Linq;

namespace MlPitfalls.Analyzers.LibTorchTests;

/// <summary>
/// One case of the table: the body of <c>Tensor Name(Tensor x, long heads)</c> and the sizes of <c>x</c> (every one
/// larger than 1 and all different, so that no size-1 or equal-size accident makes a view work); size-1 dimensions come
/// only from literal 1s in the code.
/// </summary>
public sealed class ViewCase
{
    public ViewCase(string name, long[] sizes, bool throws, bool fullyKnown, string body)
    {
        Name = name;
        Sizes = sizes;
        Throws = throws;
        FullyKnown = fullyKnown;
        Body = body;
    }

    public string Name { get; }

    /// <summary>The sizes of <c>x</c>.</summary>
    public long[] Sizes { get; }

    /// <summary>What libtorch does (measured; the table checks it): throws the view-size error, or returns.</summary>
    public bool Throws { get; }

    /// <summary>
    /// True when the code gives the analysis everything the answer depends on (the rank and every size involved, as
    /// symbols read from <c>x</c> or written in the code): then MLP010 must be reported exactly when libtorch throws.
    /// Otherwise the rule may stay silent, but must never report a view that works.
    /// </summary>
    public bool FullyKnown { get; }

    public string Body { get; }

    /// <summary>The value passed for <c>heads</c>.</summary>
    public long Heads { get; init; } = 4;

    /// <summary>
    /// When the tensor viewed is <c>x</c> (reshaped to <see cref="ViewedAs"/>, or as it is) permuted by this, the fixes'
    /// results are compared with that permutation computed on the host.
    /// </summary>
    public int[]? Permutation { get; init; }

    public long[]? ViewedAs { get; init; }

    /// <summary>Set when the analyzer and libtorch disagree on the case: the test is skipped with this reason.</summary>
    public string? Disagreement { get; init; }

    public override string ToString() => Name;
}

/// <summary>
/// The views of permuted tensors MLP010 is checked on. What libtorch does was measured on TorchSharp 0.107.0 /
/// libtorch 2.10.0 (CPU); the tests re-measure it on every run.
/// </summary>
public static class ViewCases
{
    private static readonly long[] Bchw = { 2, 3, 5, 7 };

    private const string ReadBchw = "var (b, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3]);";

    // x.permute(0, 2, 3, 1): (b, h, w, c), strides (c*h*w, w, 1, h*w): h and w still follow each other in memory.
    private const string Nhwc = ReadBchw + "\nvar y = x.permute(0, 2, 3, 1);";

    // (b, c, h, w).transpose(1, 2): (b, h, c, w), strides (c*h*w, w, h*w, 1): no two neighbours follow each other.
    private const string Bhcw = ReadBchw + "\nvar y = x.view(b, c, h, w).transpose(1, 2);";

    // Multi-head attention with x of shape (batch, tokens, heads, head size): the projection (b, t, h * d) split into
    // heads, (b, h, t, d), strides (t*h*d, d, h*d, 1).
    private static readonly long[] Btht = { 2, 5, 3, 7 };

    private const string Heads = """
        var (b, t, h, d) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3]);
        var qkv = x.reshape(b, t, h * d);
        var q = qkv.view(b, t, h, d).transpose(1, 2);
        """;

    private const string Attention = Heads + """

        var att = torch.matmul(q, q.transpose(-2, -1)).softmax(-1);
        var y = torch.matmul(att, q);
        """;

    private static readonly int[] Nhwc4 = { 0, 2, 3, 1 };
    private static readonly int[] Swap12 = { 0, 2, 1, 3 };

    public static IReadOnlyList<ViewCase> All { get; } = new List<ViewCase>
    {
        // permute(0, 2, 3, 1)
        new("permute_identity", Bchw, throws: false, fullyKnown: true, Nhwc + "\nreturn y.view(b, h, w, c);") { Permutation = Nhwc4 },
        new("permute_merge_d1_d2", Bchw, throws: false, fullyKnown: true, Nhwc + "\nreturn y.view(b, h * w, c);") { Permutation = Nhwc4 },
        new("permute_merge_d1_d2_inferred", Bchw, throws: false, fullyKnown: true, Nhwc + "\nreturn y.view(b, -1, c);") { Permutation = Nhwc4 },
        new("permute_merge_d0_d1", Bchw, throws: true, fullyKnown: true, Nhwc + "\nreturn y.view(b * h, w, c);") { Permutation = Nhwc4 },
        new("permute_merge_d2_d3", Bchw, throws: true, fullyKnown: true, Nhwc + "\nreturn y.view(b, h, w * c);") { Permutation = Nhwc4 },
        new("permute_merge_d0_d2", Bchw, throws: true, fullyKnown: true, Nhwc + "\nreturn y.view(b * h * w, c);") { Permutation = Nhwc4 },
        new("permute_merge_d1_d3", Bchw, throws: true, fullyKnown: true, Nhwc + "\nreturn y.view(b, h * w * c);") { Permutation = Nhwc4 },
        new("permute_flatten", Bchw, throws: true, fullyKnown: true, Nhwc + "\nreturn y.view(-1);") { Permutation = Nhwc4 },
        new("permute_keep_batch", Bchw, throws: true, fullyKnown: true, Nhwc + "\nreturn y.view(b, -1);") { Permutation = Nhwc4 },
        new("permute_keep_last", Bchw, throws: true, fullyKnown: true, Nhwc + "\nreturn y.view(-1, c);") { Permutation = Nhwc4 },
        new("permute_split_unit_dims", Bchw, throws: false, fullyKnown: true, Nhwc + "\nreturn y.view(1, b, h, 1, w, c, 1);") { Permutation = Nhwc4 },
        new("permute_split_moved_dim", Bchw, throws: false, fullyKnown: true, ReadBchw + """

            var tokens = x.view(b, c, h * w).permute(0, 2, 1);
            return tokens.view(b, h, w, c);
            """) { Permutation = new[] { 0, 2, 1 }, ViewedAs = new long[] { 2, 3, 35 } },
        new("permute_split_moved_dim_then_merge_across", Bchw, throws: true, fullyKnown: true, ReadBchw + """

            var tokens = x.view(b, c, h * w).permute(0, 2, 1);
            return tokens.view(b, h, w * c);
            """) { Permutation = new[] { 0, 2, 1 }, ViewedAs = new long[] { 2, 3, 35 } },
        new("permute_sizes_read_with_size", Bchw, throws: true, fullyKnown: true, """
            long b = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3);
            return x.permute(0, 2, 3, 1).view(b * h, w, c);
            """) { Permutation = Nhwc4 },
        new("permute_sizes_inline", Bchw, throws: false, fullyKnown: true,
            "return x.permute(0, 2, 3, 1).view(x.shape[0], x.shape[2] * x.shape[3], x.shape[1]);") { Permutation = Nhwc4 },
        new("permute_reshape", Bchw, throws: false, fullyKnown: true, Nhwc + "\nreturn y.reshape(b * h * w, c);"),
        new("permute_contiguous_view", Bchw, throws: false, fullyKnown: true, Nhwc + "\nreturn y.contiguous().view(-1);"),
        new("permute_and_back", Bchw, throws: false, fullyKnown: true, Nhwc + "\nreturn y.permute(0, 3, 1, 2).view(-1);"),

        // transpose(1, 2), the rank fixed by a view
        new("transpose_identity", Bchw, throws: false, fullyKnown: true, Bhcw + "\nreturn y.view(b, h, c, w);") { Permutation = Swap12 },
        new("transpose_merge_d0_d1", Bchw, throws: true, fullyKnown: true, Bhcw + "\nreturn y.view(b * h, c, w);") { Permutation = Swap12 },
        new("transpose_merge_d1_d2", Bchw, throws: true, fullyKnown: true, Bhcw + "\nreturn y.view(b, h * c, w);") { Permutation = Swap12 },
        new("transpose_merge_d2_d3", Bchw, throws: true, fullyKnown: true, Bhcw + "\nreturn y.view(b, h, c * w);") { Permutation = Swap12 },
        new("transpose_merge_inferred", Bchw, throws: true, fullyKnown: true, Bhcw + "\nreturn y.view(b, h, -1);") { Permutation = Swap12 },
        new("transpose_flatten", Bchw, throws: true, fullyKnown: true, Bhcw + "\nreturn y.view(-1);") { Permutation = Swap12 },
        new("transpose_split_unit_dim", Bchw, throws: false, fullyKnown: true, Bhcw + "\nreturn y.view(b, 1, h, c, w);") { Permutation = Swap12 },
        new("transpose_twice", Bchw, throws: false, fullyKnown: true, Bhcw + "\nreturn y.transpose(1, 2).view(-1);"),
        new("transpose_last_two_merge_leading", Bchw, throws: false, fullyKnown: true, ReadBchw + "\nreturn x.view(b, c, h, w).transpose(2, 3).view(b * c, w, h);"),
        new("transpose_split_a_merged_dim", Bchw, throws: false, fullyKnown: true, ReadBchw + """

            var y = x.view(b, c * h, w).transpose(1, 2);
            return y.view(b, w, c, h);
            """) { Permutation = new[] { 0, 2, 1 }, ViewedAs = new long[] { 2, 15, 7 } },
        new("transpose_split_then_merge_across", Bchw, throws: true, fullyKnown: true, ReadBchw + """

            var y = x.view(b, c * h, w).transpose(1, 2);
            return y.view(b * w, c, h);
            """) { Permutation = new[] { 0, 2, 1 }, ViewedAs = new long[] { 2, 15, 7 } },
        // The rank of x is not known (only read from): the transposed dimensions are, the others not.
        new("transpose_unknown_rank_merge", Bchw, throws: true, fullyKnown: false, ReadBchw + "\nreturn x.transpose(1, 2).view(b, h * c, w);") { Permutation = Swap12 },
        new("transpose_unknown_rank_flatten", Bchw, throws: true, fullyKnown: false, "return x.transpose(1, 2).view(-1);") { Permutation = Swap12 },

        // Multi-head attention
        new("heads_split_view", Btht, throws: false, fullyKnown: true, Heads + "\nreturn q.view(b, h, t, d);") { Permutation = Swap12 },
        new("heads_merge_heads_and_tokens", Btht, throws: true, fullyKnown: true, Heads + "\nreturn q.view(b, h * t, d);") { Permutation = Swap12 },
        new("heads_merge_batch_and_heads", Btht, throws: true, fullyKnown: true, Heads + "\nreturn q.view(b * h, t, d);") { Permutation = Swap12 },
        new("heads_merge_back_with_view", Btht, throws: true, fullyKnown: true, Attention + "\nreturn y.transpose(1, 2).view(b, t, h * d);"),
        new("heads_merge_back_contiguous", Btht, throws: false, fullyKnown: true, Attention + "\nreturn y.transpose(1, 2).contiguous().view(b, t, h * d);"),
        new("heads_merge_back_reshape", Btht, throws: false, fullyKnown: true, Attention + "\nreturn y.transpose(1, 2).reshape(b, t, h * d);"),
        // The head size is c / heads: the earlier view succeeded, so heads * (c / heads) is c; the analysis reads integer
        // division in sizes as exact.
        new("heads_count_parameter_merge_back", new long[] { 2, 5, 12 }, throws: true, fullyKnown: true, """
            var (b, t, c) = (x.shape[0], x.shape[1], x.shape[2]);
            var q = x.view(b, t, heads, c / heads).transpose(1, 2);
            var y = torch.matmul(torch.matmul(q, q.transpose(-2, -1)).softmax(-1), q);
            return y.transpose(1, 2).view(b, t, c);
            """) { Heads = 4 },
        new("heads_count_parameter_merge_heads", new long[] { 2, 5, 12 }, throws: true, fullyKnown: true, """
            var (b, t, c) = (x.shape[0], x.shape[1], x.shape[2]);
            var q = x.view(b, t, heads, c / heads).transpose(1, 2);
            return q.view(b, heads * t, c / heads);
            """) { Heads = 4, Permutation = Swap12, ViewedAs = new long[] { 2, 5, 4, 3 } },

        // t(), T and mT on matrices
        new("t_flatten", new long[] { 3, 5 }, throws: true, fullyKnown: true, "var (n, m) = (x.shape[0], x.shape[1]);\nreturn x.t().view(-1);") { Permutation = new[] { 1, 0 } },
        new("t_merge", new long[] { 3, 5 }, throws: true, fullyKnown: true, "var (n, m) = (x.shape[0], x.shape[1]);\nreturn x.t().view(n * m);") { Permutation = new[] { 1, 0 } },
        new("t_identity", new long[] { 3, 5 }, throws: false, fullyKnown: true, "var (n, m) = (x.shape[0], x.shape[1]);\nreturn x.t().view(m, n);") { Permutation = new[] { 1, 0 } },
        new("t_split_unit_dim", new long[] { 3, 5 }, throws: false, fullyKnown: true, "var (n, m) = (x.shape[0], x.shape[1]);\nreturn x.t().view(m, 1, n);") { Permutation = new[] { 1, 0 } },
        new("T_matrix_flatten", new long[] { 3, 5 }, throws: true, fullyKnown: false, "return x.T.view(-1);") { Permutation = new[] { 1, 0 } },
        new("T_rank_fixed_merge", Bchw, throws: true, fullyKnown: true, ReadBchw + "\nreturn x.view(b, c, h, w).T.view(w, h * c, b);") { Permutation = new[] { 3, 2, 1, 0 } },
        new("mT_merge_first_two", Bchw, throws: false, fullyKnown: true, ReadBchw + "\nreturn x.view(b, c, h, w).mT.view(b * c, w, h);"),
        new("mT_merge_last_two", Bchw, throws: true, fullyKnown: true, ReadBchw + "\nreturn x.view(b, c, h, w).mT.view(b, c, w * h);") { Permutation = new[] { 0, 1, 3, 2 } },
        new("mT_merge_middle", Bchw, throws: true, fullyKnown: true, ReadBchw + "\nreturn x.view(b, c, h, w).mT.view(b, c * w, h);") { Permutation = new[] { 0, 1, 3, 2 } },
        new("mT_3d_merge_batch_and_rows", new long[] { 2, 5, 7 }, throws: true, fullyKnown: true,
            "var (b, n, m) = (x.shape[0], x.shape[1], x.shape[2]);\nreturn x.view(b, n, m).mT.view(b * m, n);") { Permutation = new[] { 0, 2, 1 } },

        // Size-1 dimensions: moving one does not break memory order.
        new("unit_dim_factory_transpose_flatten", new long[] { 3, 5 }, throws: false, fullyKnown: true,
            "var (b, c) = (x.shape[0], x.shape[1]);\nreturn torch.zeros(b, 1, c).transpose(0, 1).view(-1);"),
        new("unit_dim_factory_transpose_to_end", new long[] { 3, 5 }, throws: false, fullyKnown: true,
            "var (b, c) = (x.shape[0], x.shape[1]);\nreturn torch.zeros(b, 1, c).transpose(1, 2).view(-1);"),
        new("unit_dim_factory_swap_outer", new long[] { 3, 5 }, throws: true, fullyKnown: true,
            "var (b, c) = (x.shape[0], x.shape[1]);\nreturn torch.zeros(b, 1, c).transpose(0, 2).view(-1);"),
        new("unit_dim_view_transpose", new long[] { 3, 5 }, throws: false, fullyKnown: true,
            "var (b, c) = (x.shape[0], x.shape[1]);\nreturn x.view(b, 1, c).transpose(0, 1).view(b, c);"),
        new("unit_dim_rank_fixed_unsqueeze_transpose", new long[] { 3, 5 }, throws: false, fullyKnown: true,
            "var (b, c) = (x.shape[0], x.shape[1]);\nreturn x.view(b, c).unsqueeze(1).transpose(0, 1).view(-1);"),
        new("unit_dim_unsqueeze_transpose", new long[] { 3, 5 }, throws: false, fullyKnown: false,
            "var (b, c) = (x.shape[0], x.shape[1]);\nreturn x.unsqueeze(1).transpose(0, 1).view(-1);"),
        new("unit_dim_unsqueeze_mT", new long[] { 3, 5 }, throws: false, fullyKnown: false,
            "return x.unsqueeze(-1).mT.view(-1);"),
        // t() and T of a vector are the vector itself.
        new("t_vector_flatten", new long[] { 5 }, throws: false, fullyKnown: false, "return x.t().view(-1);"),
        new("T_vector_flatten", new long[] { 5 }, throws: false, fullyKnown: false, "return x.T.view(-1);"),
        // Narrowing or selecting away a moved dimension: what is left may be in memory order again.
        new("narrow_moved_dim_to_unit", new long[] { 3, 5 }, throws: false, fullyKnown: true,
            "var (b, c) = (x.shape[0], x.shape[1]);\nreturn x.view(b, c).t().narrow(1, 0, 1).view(-1);"),
        // narrow, select and indexing after a move: the analysis forgets the memory order (strides not modelled), so a
        // view after them is not judged even when the shapes are known.
        new("narrow_keeps_moved_dims", new long[] { 3, 5 }, throws: true, fullyKnown: false,
            "var (b, c) = (x.shape[0], x.shape[1]);\nreturn x.view(b, c).t().narrow(1, 0, 2).view(-1);"),
        new("select_column_of_transpose", new long[] { 3, 5 }, throws: false, fullyKnown: true,
            "var (b, c) = (x.shape[0], x.shape[1]);\nreturn x.view(b, c).t().select(1, 0).view(-1);"),
        new("index_row_of_transpose", new long[] { 3, 5 }, throws: false, fullyKnown: false, "return x.t()[0].view(-1);"),
        // Sizes written as numbers: judged with libtorch's own stride test.
        new("literal_sizes_regroup_across", new long[] { 3, 5 }, throws: true, fullyKnown: true, "return torch.randn(2, 3, 4).permute(0, 2, 1).view(2, 3, 4);"),
        new("literal_sizes_merge_moved", new long[] { 3, 5 }, throws: true, fullyKnown: true, "return torch.randn(2, 3, 4).permute(0, 2, 1).view(2, 12);"),

        // Operations that keep the strides of their input, then a view that merges moved dimensions.
        new("clone_keeps_strides", Bchw, throws: true, fullyKnown: true, Nhwc + "\nreturn y.clone().view(b * h, w, c);") { Permutation = Nhwc4 },
        new("relu_keeps_strides", Bchw, throws: true, fullyKnown: true, Bhcw + "\nreturn y.relu().view(-1);"),
        new("scalar_product_keeps_strides", Bchw, throws: true, fullyKnown: true, Nhwc + "\nreturn (y * 2).view(b, -1);"),
        new("dropout_keeps_strides", Bchw, throws: true, fullyKnown: true, Nhwc + "\nreturn torch.nn.functional.dropout(y, 0.5).view(b, -1);"),
        new("masked_fill_is_fresh_memory", Bchw, throws: false, fullyKnown: true, Nhwc + "\nreturn y.masked_fill(y > 0, 0).view(-1);"),
        // Tensor-tensor arithmetic: the result's layout is not modelled (the operands may differ), so the rule stays silent.
        new("sum_of_two_permuted", Bchw, throws: true, fullyKnown: false, Nhwc + "\nreturn (y + y).view(-1);"),
        // scaled_dot_product_attention returns the query's strides (measured): merging heads back then needs no copy.
        new("sdpa_merge_back_with_view", Btht, throws: false, fullyKnown: true, Heads + """

            var y = torch.nn.functional.scaled_dot_product_attention(q, q, q);
            return y.transpose(1, 2).view(b, t, h * d);
            """),
        new("sdpa_merge_heads", Btht, throws: true, fullyKnown: true, Heads + """

            var y = torch.nn.functional.scaled_dot_product_attention(q, q, q);
            return y.view(b, h * t, d);
            """),
        new("softmax_is_fresh_memory", Bchw, throws: false, fullyKnown: true, Nhwc + "\nreturn y.softmax(-1).view(b, -1);"),
    };

    public static ViewCase Named(string name) => All.Single(c => c.Name == name);
}
