using System.Threading.Tasks;
using Microsoft.CodeAnalysis.Testing;
using MlPitfalls.CodeFixes.TensorLayout;
using Xunit;
using Verifier = MlPitfalls.Analyzers.Tests.Verifiers.Verify<
    MlPitfalls.Analyzers.TensorLayout.ViewOfPermutedTensorAnalyzer,
    MlPitfalls.CodeFixes.TensorLayout.ViewLayoutCodeFix>;

namespace MlPitfalls.Analyzers.Tests.TensorLayout;

public class ViewOfPermutedTensorTests
{
    private static DiagnosticResult MLP010(int marker = 0) => Verifier.DiagnosticAnyMessage(Descriptors.MLP010_ViewOfPermutedTensor).WithLocation(marker);

    private static string Attention(string merge) => $$"""
        class SelfAttention
        {
            Tensor M(Tensor x, long heads)
            {
                var (B, T, C) = (x.shape[0], x.shape[1], x.shape[2]);
                var q = x.view(B, T, heads, C / heads).transpose(1, 2);
                var k = x.view(B, T, heads, C / heads).transpose(1, 2);
                var v = x.view(B, T, heads, C / heads).transpose(1, 2);
                var att = torch.matmul(q, k.transpose(-2, -1)).softmax(-1);
                var y = torch.matmul(att, v);
        {{merge}}
            }
        }
        """;

    [Fact]
    public Task Merging_heads_with_view_right_after_the_transpose_is_reported_with_the_transpose_named()
        => Verifier.AnalyzerAsync(
            Attention("        return y.transpose(1, 2).{|#0:view(B, T, C)|};"),
            Verifier.Diagnostic(Descriptors.MLP010_ViewOfPermutedTensor).WithLocation(0).WithArguments("y.transpose(1, 2)", "y.transpose(1, 2)"));

    [Fact]
    public Task The_transposed_tensor_is_followed_through_locals_and_layout_keeping_operations()
        => Verifier.AnalyzerAsync(
            Attention("""
                        var merged = y.transpose(1, 2);
                        merged = (merged * 2).relu().clone();
                        return merged.{|#0:view(B, T, C)|};
                """),
            Verifier.Diagnostic(Descriptors.MLP010_ViewOfPermutedTensor).WithLocation(0).WithArguments("merged", "y.transpose(1, 2)"));

    [Fact]
    public Task Contiguous_reshape_or_a_fresh_result_in_between_is_not_reported()
        => Verifier.AnalyzerAsync(Attention("""
                    var a = y.transpose(1, 2).contiguous().view(B, T, C);
                    var b = y.transpose(1, 2).reshape(B, T, C);
                    var c = y.transpose(1, 2).softmax(-1).view(B, T, C);
                    var d = torch.matmul(y.transpose(1, 2), torch.ones(C / heads, C / heads)).view(B, T, C);
                    return a + b + c + d;
            """));

    [Fact]
    public Task Views_that_only_split_or_keep_the_moved_dimensions_are_not_reported()
        => Verifier.AnalyzerAsync(Attention("""
                    var t = y.transpose(1, 2);
                    var same = t.view(B, T, heads, C / heads);
                    var split = t.view(B, T, heads, 2, C / heads / 2);
                    var batch = q.view(B, heads, T, C / heads);
                    return same + split + batch;
            """));

    [Fact]
    public Task Transposing_back_restores_the_order_and_is_not_reported()
        => Verifier.AnalyzerAsync(Attention("        return q.transpose(1, 2).view(B, T, C);"));

    [Fact]
    public Task Flattening_a_permuted_image_and_t_of_a_matrix_are_reported()
        => Verifier.AnalyzerAsync("""
            class Net
            {
                Tensor M(Tensor images, Tensor w)
                {
                    var (n, c, h, width) = (images.shape[0], images.shape[1], images.shape[2], images.shape[3]);
                    var nhwc = images.permute(0, 2, 3, 1);
                    var flat = nhwc.{|#0:view(n, -1)|};
                    var tokens = nhwc.view(n, h * width, c);
                    var (rows, columns) = (w.shape[0], w.shape[1]);
                    return flat + tokens.sum() + w.t().{|#1:view(-1)|};
                }
            }
            """,
            MLP010(0), MLP010(1));

    [Fact]
    public Task Views_of_a_transposed_tensor_whose_shape_is_unknown_are_not_reported()
        => Verifier.AnalyzerAsync("""
            class Decoder
            {
                // Most such views split a moved dimension, which succeeds; and a moved dimension may have size 1.
                Tensor M(Tensor src, Tensor v, long b, long c, long h, long w)
                {
                    var image = src.transpose(1, 2).view(b, c, h, w);
                    var back = src.transpose(-1, -2).view(b, c, h, w);
                    var vector = v.t().view(-1) + v.T.view(-1);
                    return image + back + src.transpose(1, 2).view(-1) + vector;
                }
            }
            """);

    [Fact]
    public Task A_view_of_numbers_is_judged_as_libtorch_does()
        => Verifier.AnalyzerAsync("""
            class Net
            {
                Tensor M()
                {
                    var regroup = torch.randn(2, 3, 4).permute(0, 2, 1).{|#0:view(2, 3, 4)|};
                    var split = torch.randn(2, 3, 4).permute(0, 2, 1).view(2, 2, 2, 3);
                    var unit = torch.randn(2, 1, 4).transpose(0, 1).view(-1);
                    return regroup + split.sum() + unit.sum();
                }
            }
            """,
            MLP010());

    [Fact]
    public Task Narrowing_selecting_or_indexing_after_a_move_leaves_the_view_unjudged()
        => Verifier.AnalyzerAsync("""
            class Net
            {
                Tensor M(Tensor x)
                {
                    var (b, c) = (x.shape[0], x.shape[1]);
                    var t = x.view(b, c).t();
                    return t.narrow(1, 0, 1).view(-1) + t.select(1, 0).view(-1) + t[0].view(-1);
                }
            }
            """);

    [Fact]
    public Task Moving_a_dimension_of_size_one_keeps_the_memory_order_and_is_not_reported()
        => Verifier.AnalyzerAsync("""
            class Net
            {
                Tensor M(Tensor x)
                {
                    var (b, c) = (x.shape[0], x.shape[1]);
                    var column = x.view(b, 1, c).transpose(0, 1).view(-1);
                    var row = x.unsqueeze(1).transpose(1, 2).view(b, c);
                    return column + row;
                }
            }
            """);

    [Fact]
    public Task A_tensor_transposed_on_only_one_path_is_not_reported()
        => Verifier.AnalyzerAsync(Attention("""
                    var t = y.transpose(1, 2);
                    if (B > 1)
                    {
                        t = t.contiguous();
                    }

                    return t.view(B, T, C);
            """));

    [Fact]
    public Task Incomplete_code_raises_nothing()
        => Verifier.AnalyzerAsync("""
            class Net
            {
                Tensor M(Tensor x)
                {
                    var t = x.transpose(1, {|CS1525:)|};
                    return t.view({|CS0103:missing|}, -1);
                }
            }
            """);

    [Fact]
    public Task A_users_own_transpose_and_view_are_not_reported()
        => Verifier.AnalyzerAsync("""
            namespace Mine
            {
                class Grid { public Grid transpose(long a, long b) => this; public Grid view(params long[] sizes) => this; }
                class Use { Grid M(Grid g) => g.transpose(0, 1).view(-1); }
            }
            """);

    [Fact]
    public Task Without_torchsharp_nothing_is_reported()
        => Verifier.AnalyzerWithoutTorchSharpAsync("""
            class Grid { public Grid transpose(long a, long b) => this; public Grid view(params long[] sizes) => this; }
            class Use { Grid M(Grid g) => g.transpose(0, 1).view(-1); }
            """);

    [Fact]
    public Task The_contiguous_fix_inserts_contiguous_before_view()
        => Verifier.CodeFixAsync(
            Attention("        return y.transpose(1, 2).{|#0:view(B, T, C)|};"),
            Attention("        return y.transpose(1, 2).contiguous().view(B, T, C);"),
            ViewLayoutCodeFix.ContiguousKey,
            MLP010());

    [Fact]
    public Task The_reshape_fix_replaces_view_with_reshape()
        => Verifier.CodeFixAsync(
            Attention("        return y.transpose(1, 2).{|#0:view(B, T, C)|};"),
            Attention("        return y.transpose(1, 2).reshape(B, T, C);"),
            ViewLayoutCodeFix.ReshapeKey,
            MLP010());

    private const string TwoMerges = """
        class Heads
        {
            Tensor Merge(Tensor x, long heads)
            {
                var (B, T, C) = (x.shape[0], x.shape[1], x.shape[2]);
                var y = x.view(B, heads, T, C / heads);
                return y.transpose(1, 2).{|#0:view(B, T, C)|};
            }

            Tensor Flatten(Tensor img)
            {
                var (n, c, h, w) = (img.shape[0], img.shape[1], img.shape[2], img.shape[3]);
                var nhwc = img.permute(0, 2, 3, 1);
                return nhwc.{|#1:view(n, h * w * c)|};
            }
        }
        """;

    [Theory]
    [InlineData(ViewLayoutCodeFix.ContiguousKey, "y.transpose(1, 2).contiguous().view(B, T, C)", "nhwc.contiguous().view(n, h * w * c)")]
    [InlineData(ViewLayoutCodeFix.ReshapeKey, "y.transpose(1, 2).reshape(B, T, C)", "nhwc.reshape(n, h * w * c)")]
    public Task Fix_all_applies_the_chosen_fix_to_every_view_in_the_file(string key, string merged, string flattened)
    {
        var test = Verifier.Create();
        test.TestCode = Verifiers.TorchSharpSources.Usings + TwoMerges;
        test.FixedCode = Verifiers.TorchSharpSources.Usings + TwoMerges
            .Replace("y.transpose(1, 2).{|#0:view(B, T, C)|}", merged)
            .Replace("nhwc.{|#1:view(n, h * w * c)|}", flattened);
        test.CodeActionEquivalenceKey = key;
        test.ExpectedDiagnostics.AddRange(new[] { MLP010(0), MLP010(1) });
        test.NumberOfFixAllIterations = 1;
        return test.RunAsync();
    }
}
