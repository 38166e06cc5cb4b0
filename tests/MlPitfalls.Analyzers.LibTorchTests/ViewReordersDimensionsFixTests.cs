using System;
using System.Collections.Generic;
using System.Linq;
using System.Threading.Tasks;
using MlPitfalls.Analyzers.LibTorchTests.Infrastructure;
using MlPitfalls.CodeFixes.TensorLayout;
using Xunit;

namespace MlPitfalls.Analyzers.LibTorchTests;

/// <summary>
/// The MLP009 fix on real tensors. Each case is a view or reshape written to move dimensions (NCHW to NHWC, image to
/// tokens, splitting heads); the fix writes <c>permute</c> (then <c>reshape</c> with the original sizes). The fixed code
/// must give the intended layout element by element: the input's elements are their own indices, and the result is
/// compared with the permutation computed on the host (result[n, i, j, k] holds x[n, k, i, j] for NCHW to NHWC). The
/// original code must give the same shape but other values, so a fix that changed nothing would fail.
/// </summary>
public class ViewReordersDimensionsFixTests
{
    private const string ReadBchw = "var (b, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3]);\n";

    private static readonly long[] Bchw = { 2, 3, 5, 7 };

    private static readonly int[] ToNhwc = { 0, 2, 3, 1 };

    /// <summary>
    /// A reordering view: x (of <see cref="Sizes"/>, seen as <see cref="ViewedAs"/> when an earlier view split it) was
    /// meant to be permuted by <see cref="Permutation"/> and then regrouped into <see cref="Shape"/>.
    /// </summary>
    private sealed record Case(string Name, long[] Sizes, string Body, int[] Permutation, long[] Shape, long[]? ViewedAs = null, long Heads = 4)
    {
        /// <summary>Set when the fix does not compute what the code meant: its layout test is skipped with this reason.</summary>
        public string? Disagreement { get; init; }
    }

    private static readonly Case[] Cases =
    {
        new("nchw_to_nhwc_view", Bchw, ReadBchw + "return x.view(b, h, w, c);", ToNhwc, new long[] { 2, 5, 7, 3 }),
        new("nchw_to_nhwc_reshape", Bchw, ReadBchw + "return x.reshape(b, h, w, c);", ToNhwc, new long[] { 2, 5, 7, 3 }),
        new("nchw_to_nhwc_size_array", Bchw, ReadBchw + "var sizes = new long[] { b, h, w, c };\nreturn x.view(sizes);", ToNhwc, new long[] { 2, 5, 7, 3 }),
        new("image_to_tokens", Bchw, ReadBchw + "return x.view(b, h * w, c);", ToNhwc, new long[] { 2, 35, 3 }),
        new("image_to_tokens_inferred", Bchw, ReadBchw + "var maps = x.view(b, c, h, w);\nreturn maps.view(b, -1, c);", ToNhwc, new long[] { 2, 35, 3 }),
        new("image_to_tokens_size_reads", Bchw, "long b = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3);\nreturn x.reshape(b, h * w, c);", ToNhwc, new long[] { 2, 35, 3 }),
        new("channels_into_rows", Bchw, ReadBchw + "return x.view(b, h, w * c);", ToNhwc, new long[] { 2, 5, 21 }),
        new("channels_into_rows_written_channels_first", Bchw, ReadBchw + "return x.view(b, h, c * w);", new[] { 0, 2, 1, 3 }, new long[] { 2, 5, 21 }),
        new("pixels_by_channel", Bchw, ReadBchw + "var maps = x.view(b, c, h, w);\nreturn maps.reshape(-1, c);", ToNhwc, new long[] { 70, 3 }),
        new("image_transposed_channels_last", Bchw, ReadBchw + "return x.reshape(b, w, h, c);", new[] { 0, 3, 2, 1 }, new long[] { 2, 7, 5, 3 }),
        new("rank_only_read", new long[] { 2, 3, 5 }, "var (b, c, h) = (x.shape[0], x.shape[1], x.shape[2]);\nreturn x.view(b, h, c);", new[] { 0, 2, 1 }, new long[] { 2, 5, 3 }),
        new("batch_last", Bchw, ReadBchw + "return x.view(c, h, w, b);", new[] { 1, 2, 3, 0 }, new long[] { 3, 5, 7, 2 }),
        new("nhwc_to_nchw", new long[] { 2, 5, 7, 3 }, "var (b, h, w, c) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3]);\nreturn x.view(b, c, h, w);",
            new[] { 0, 3, 1, 2 }, new long[] { 2, 3, 5, 7 }),
        new("swap_leading_inline", new long[] { 3, 5, 7 }, "return x.view(x.shape[1], x.shape[0], x.shape[2]);", new[] { 1, 0, 2 }, new long[] { 5, 3, 7 }),
        new("heads_split", new long[] { 2, 5, 12 }, """
            var (b, t, d) = (x.shape[0], x.shape[1], x.shape[2]);
            var q = x.view(b, t, heads, d / heads);
            return q.view(b, heads, t, d / heads);
            """, new[] { 0, 2, 1, 3 }, new long[] { 2, 4, 5, 3 }, ViewedAs: new long[] { 2, 5, 4, 3 }),
    };

    public static TheoryData<string> Names { get; } = new(Cases.Select(c => c.Name));

    public static TheoryData<string> Agreeing { get; } = new(Cases.Where(c => c.Disagreement is null).Select(c => c.Name));

    private static readonly Lazy<Task<Results>> Computed = new(ComputeAsync);

    [Theory]
    [MemberData(nameof(Names))]
    public async Task The_rule_reports_the_view_once(string name)
    {
        var results = await Computed.Value;
        Assert.Equal(1, results.Reports[name]);
    }

    [Theory]
    [MemberData(nameof(Agreeing))]
    public Task The_fixed_code_gives_the_intended_layout_and_the_original_does_not(string name) => CheckLayoutAsync(name);

    [Fact]
    public void No_case_is_a_known_disagreement()
        => Assert.Empty(Cases.Where(c => c.Disagreement is not null).Select(c => c.Name));

    private static async Task CheckLayoutAsync(string name)
    {
        var results = await Computed.Value;
        var @case = Cases.Single(c => c.Name == name);
        var expected = HostLayout.Permuted(@case.ViewedAs ?? @case.Sizes, @case.Permutation);
        var body = results.Fixed[name];
        Assert.True(body.Contains($"permute({string.Join(", ", @case.Permutation)})", StringComparison.Ordinal), "the fix wrote:\n" + body);

        var fixedRun = results.FixedRuns[name];
        Assert.False(fixedRun.Threw, $"{fixedRun}\n{body}");
        Assert.Equal(@case.Shape, fixedRun.Shape);
        Assert.Equal(expected, fixedRun.Values);

        // The original: the same shape, scrambled values.
        var original = results.OriginalRuns[name];
        Assert.False(original.Threw, original.ToString());
        Assert.Equal(@case.Shape, original.Shape);
        Assert.NotEqual(expected, original.Values);
    }

    [Theory]
    [MemberData(nameof(Names))]
    public async Task Fix_all_in_the_document_writes_what_the_single_fix_writes(string name)
    {
        var results = await Computed.Value;
        Assert.Equal(results.Fixed[name], results.FixedAll[name]);
        Assert.Equal(results.FixedRuns[name].Values, results.FixedAllRuns[name].Values);
    }

    [Fact]
    public async Task The_fix_of_the_channels_last_view_is_the_permute_alone_and_of_the_token_view_permute_then_reshape()
    {
        var results = await Computed.Value;
        Assert.Equal(ReadBchw + "return x.permute(0, 2, 3, 1);", results.Fixed["nchw_to_nhwc_view"]);
        Assert.Equal(ReadBchw + "var maps = x.view(b, c, h, w);\nreturn maps.permute(0, 2, 3, 1).reshape(b, -1, c);", results.Fixed["image_to_tokens_inferred"]);
    }

    private sealed record Results(
        Dictionary<string, int> Reports,
        Dictionary<string, string> Fixed,
        Dictionary<string, string> FixedAll,
        Dictionary<string, Run> OriginalRuns,
        Dictionary<string, Run> FixedRuns,
        Dictionary<string, Run> FixedAllRuns);

    private static async Task<Results> ComputeAsync()
    {
        var source = Snippets.Source(Cases.Select(c => (c.Name, c.Body)));
        var document = Fixes.Document(source);
        var diagnostics = await Fixes.DiagnosticsAsync(document, "MLP009");
        var reports = Cases.ToDictionary(c => c.Name, c => diagnostics.Count(d => Snippets.MethodOf(d) == c.Name));

        var single = new Dictionary<string, string>();
        foreach (var diagnostic in diagnostics)
        {
            var name = Snippets.MethodOf(diagnostic)!;
            single[name] = Fixes.BodyOf(await Fixes.ApplyAsync(document, diagnostic, ViewLayoutCodeFix.PermuteKey), name);
        }

        var allText = await Fixes.FixAllAsync(document, "MLP009", ViewLayoutCodeFix.PermuteKey);
        var all = Cases.ToDictionary(c => c.Name, c => Fixes.BodyOf(allText, c.Name));

        var methods = Cases.Select(c => (c.Name + "__original", c.Body))
            .Concat(single.Select(kv => (kv.Key + "__fixed", kv.Value)))
            .Concat(all.Select(kv => (kv.Key + "__fixedAll", kv.Value)));
        var type = Snippets.Load(Snippets.Compile(Snippets.Source(methods), "Reorderings"));
        Dictionary<string, Run> RunAll(string suffix, IEnumerable<string> names) => names.ToDictionary(
            n => n,
            n => Run.Of(type.GetMethod(n + suffix)!, Run.Indices(Cases.Single(c => c.Name == n).Sizes), Cases.Single(c => c.Name == n).Heads));
        return new Results(
            reports,
            single,
            all,
            RunAll("__original", Cases.Select(c => c.Name)),
            RunAll("__fixed", single.Keys),
            RunAll("__fixedAll", all.Keys));
    }
}
