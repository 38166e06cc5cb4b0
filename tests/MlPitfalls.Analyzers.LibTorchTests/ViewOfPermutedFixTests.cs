using System;
using System.Collections.Generic;
using System.Linq;
using System.Threading.Tasks;
using MlPitfalls.Analyzers.LibTorchTests.Infrastructure;
using MlPitfalls.CodeFixes.TensorLayout;
using Xunit;

namespace MlPitfalls.Analyzers.LibTorchTests;

/// <summary>
/// The MLP010 fixes (contiguous() before the view, or reshape) on every case of the table the rule reports that libtorch
/// rejects, one diagnostic at a time and all at once (fix-all in the document): the fixed code must run, and compute the
/// values the view was meant to give: the viewed tensor's elements in its logical (row-major) order. The input's elements
/// are their own indices, so the values say where each element came from; they are compared with the permutation
/// computed on the host where the viewed tensor is a permutation of x, and with an independently written reference.
/// </summary>
public class ViewOfPermutedFixTests
{
    private static readonly string[] Keys = { ViewLayoutCodeFix.ContiguousKey, ViewLayoutCodeFix.ReshapeKey };

    /// <summary>What the views the fix targets were meant to compute, written another way (flatten copies when it must).</summary>
    private static readonly Dictionary<string, string> References = new()
    {
        ["heads_merge_back_with_view"] = """
            var (b, t, h, d) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3]);
            var q = x.reshape(b, t, h * d).view(b, t, h, d).transpose(1, 2);
            var att = torch.matmul(q, q.transpose(-2, -1)).softmax(-1);
            var y = torch.matmul(att, q);
            return y.permute(0, 2, 1, 3).flatten(2);
            """,
        ["sdpa_merge_heads"] = """
            var (b, t, h, d) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3]);
            var q = x.reshape(b, t, h * d).view(b, t, h, d).transpose(1, 2);
            return torch.nn.functional.scaled_dot_product_attention(q, q, q).flatten(1, 2);
            """,
        ["heads_count_parameter_merge_back"] = """
            var (b, t, c) = (x.shape[0], x.shape[1], x.shape[2]);
            var q = x.view(b, t, heads, c / heads).transpose(1, 2);
            var y = torch.matmul(torch.matmul(q, q.transpose(-2, -1)).softmax(-1), q);
            return y.permute(0, 2, 1, 3).flatten(2);
            """,
        ["relu_keeps_strides"] = "return x.transpose(1, 2).flatten().relu();",
        ["scalar_product_keeps_strides"] = "return x.permute(0, 2, 3, 1).flatten(1) * 2;",
        ["narrow_keeps_moved_dims"] = "return x.narrow(0, 0, 2).t().flatten();",
        ["literal_sizes_merge_moved"] = "return torch.randn(2, 3, 4).permute(0, 2, 1).flatten(1);",
        ["literal_sizes_regroup_across"] = "return torch.randn(2, 3, 4).permute(0, 2, 1).flatten().view(2, 3, 4);",
        ["unit_dim_factory_swap_outer"] = "return torch.zeros(x.shape[0] * x.shape[1]);",
    };

    private static readonly Lazy<Task<Fixed>> Single = new(() => FixAsync(fixAll: false));
    private static readonly Lazy<Task<Fixed>> All = new(() => FixAsync(fixAll: true));

    /// <summary>The reported cases libtorch rejects: what the fixes are for.</summary>
    private static readonly string[] ReportedNames = ViewCases.All
        .Where(c => c.Disagreement is null && c.Throws && c.FullyKnown)
        .Select(c => c.Name)
        .ToArray();

    public static TheoryData<string> Reported { get; } = new(ReportedNames);

    [Fact]
    public async Task The_cases_the_fixes_are_checked_on_are_exactly_those_the_rule_reports_and_libtorch_rejects()
    {
        var reported = new List<string>();
        foreach (var @case in ViewCases.All.Where(c => c.Disagreement is null))
        {
            var observed = await Table.ObserveAsync(@case.Name);
            if (observed.Mlp010)
            {
                reported.Add(@case.Name);
            }
        }

        Assert.Equal(reported.OrderBy(n => n, StringComparer.Ordinal), ReportedNames.OrderBy(n => n, StringComparer.Ordinal));
    }

    [Theory]
    [MemberData(nameof(Reported))]
    public async Task Both_fixes_run_and_compute_what_the_view_meant(string name)
        => Check(name, await Single.Value);

    [Theory]
    [MemberData(nameof(Reported))]
    public async Task Fix_all_in_the_document_fixes_each_view_as_the_single_fix_does(string name)
    {
        var all = await All.Value;
        var single = await Single.Value;
        foreach (var key in Keys)
        {
            Assert.Equal(single.Bodies[(name, key)], all.Bodies[(name, key)]);
        }

        Check(name, all);
    }

    [Fact]
    public async Task Fix_all_leaves_the_views_it_does_not_report_unchanged()
    {
        var all = await All.Value;
        foreach (var @case in ViewCases.All.Where(c => !ReportedNames.Contains(c.Name) && c.Disagreement is null))
        {
            foreach (var key in Keys)
            {
                Assert.Equal(Fixes.BodyOf(Table.Source, @case.Name), all.Bodies[(@case.Name, key)]);
            }
        }
    }

    private static void Check(string name, Fixed fixes)
    {
        var @case = ViewCases.Named(name);
        var contiguous = fixes.Runs[(name, ViewLayoutCodeFix.ContiguousKey)];
        var reshape = fixes.Runs[(name, ViewLayoutCodeFix.ReshapeKey)];
        Assert.False(contiguous.Threw, $"contiguous fix: {contiguous}\n{fixes.Bodies[(name, ViewLayoutCodeFix.ContiguousKey)]}");
        Assert.False(reshape.Threw, $"reshape fix: {reshape}\n{fixes.Bodies[(name, ViewLayoutCodeFix.ReshapeKey)]}");
        Assert.Contains(".contiguous().view(", fixes.Bodies[(name, ViewLayoutCodeFix.ContiguousKey)], StringComparison.Ordinal);
        Assert.Contains(".reshape(", fixes.Bodies[(name, ViewLayoutCodeFix.ReshapeKey)], StringComparison.Ordinal);

        Assert.Equal(contiguous.Shape, reshape.Shape);
        Assert.Equal(contiguous.Values, reshape.Values);
        if (@case.Permutation is { } permutation)
        {
            Assert.Equal(HostLayout.Permuted(@case.ViewedAs ?? @case.Sizes, permutation), contiguous.Values);
        }

        if (fixes.References.TryGetValue(name, out var reference))
        {
            Assert.Equal(reference.Values!.Length, contiguous.Values!.Length);
            for (var i = 0; i < reference.Values.Length; i++)
            {
                Assert.True(Math.Abs(reference.Values[i] - contiguous.Values[i]) <= 1e-5f * (1 + Math.Abs(reference.Values[i])), $"element {i}: {contiguous.Values[i]}, meant {reference.Values[i]}");
            }
        }

        Assert.True(@case.Permutation is not null || fixes.References.ContainsKey(name) || name == "dropout_keeps_strides",
            $"{name}: no independent reference for the fixed values");
    }

    private sealed record Fixed(Dictionary<(string, string), string> Bodies, Dictionary<(string, string), Run> Runs, Dictionary<string, Run> References);

    /// <summary>
    /// Applies each fix (per diagnostic, or fix-all per key) to the table's document, collects every case's body after
    /// it, and compiles them with the references into one assembly, run case by case.
    /// </summary>
    private static async Task<Fixed> FixAsync(bool fixAll)
    {
        var document = Fixes.Document(Table.Source);
        var diagnostics = await Fixes.DiagnosticsAsync(document, "MLP010");
        var bodies = new Dictionary<(string, string), string>();
        foreach (var key in Keys)
        {
            if (fixAll)
            {
                var text = await Fixes.FixAllAsync(document, "MLP010", key);
                foreach (var @case in ViewCases.All)
                {
                    bodies[(@case.Name, key)] = Fixes.BodyOf(text, @case.Name);
                }

                continue;
            }

            foreach (var diagnostic in diagnostics)
            {
                var name = Snippets.MethodOf(diagnostic)!;
                bodies[(name, key)] = Fixes.BodyOf(await Fixes.ApplyAsync(document, diagnostic, key), name);
            }
        }

        var methods = bodies.Select(kv => (Name: kv.Key.Item1 + "__" + Short(kv.Key.Item2), Body: kv.Value))
            .Concat(References.Select(kv => (Name: kv.Key + "__reference", Body: kv.Value)))
            .ToList();
        var type = Snippets.Load(Snippets.Compile(Snippets.Source(methods), fixAll ? "FixedAll" : "FixedOne"));
        var runs = bodies.Keys.ToDictionary(
            k => k,
            k => Run.Of(type.GetMethod(k.Item1 + "__" + Short(k.Item2))!, Run.Indices(ViewCases.Named(k.Item1).Sizes), ViewCases.Named(k.Item1).Heads));
        var references = References.Keys.ToDictionary(
            n => n,
            n => Run.Of(type.GetMethod(n + "__reference")!, Run.Indices(ViewCases.Named(n).Sizes), ViewCases.Named(n).Heads));
        return new Fixed(bodies, runs, references);
    }

    private static string Short(string key) => key == ViewLayoutCodeFix.ContiguousKey ? "contiguous" : "reshape";
}
