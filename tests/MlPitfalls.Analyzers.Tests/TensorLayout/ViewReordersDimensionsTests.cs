using System.Threading.Tasks;
using Microsoft.CodeAnalysis.Testing;
using Xunit;
using Verifier = MlPitfalls.Analyzers.Tests.Verifiers.Verify<
    MlPitfalls.Analyzers.TensorLayout.ViewReordersDimensionsAnalyzer,
    MlPitfalls.CodeFixes.TensorLayout.ViewLayoutCodeFix>;

namespace MlPitfalls.Analyzers.Tests.TensorLayout;

public class ViewReordersDimensionsTests
{
    private static DiagnosticResult MLP009(int marker = 0) => Verifier.DiagnosticAnyMessage(Descriptors.MLP009_ViewReordersDimensions).WithLocation(marker);

    private static string Method(string body) => $$"""
        class Net
        {
            Tensor M(Tensor x, long heads, bool flag)
            {
        {{body}}
            }
        }
        """;

    [Fact]
    public Task Channels_last_written_with_view_is_reported_with_both_shapes_and_the_permute_in_the_message()
        => Verifier.AnalyzerAsync(
            Method("""
                        var (b, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3]);
                        return x.{|#0:view(b, h, w, c)|};
                """),
            Verifier.Diagnostic(Descriptors.MLP009_ViewReordersDimensions).WithLocation(0).WithArguments(
                "x.view(b, h, w, c)", "(b, c, h, w)", "(b, h, w, c)", "view", "x.permute(0, 2, 3, 1)"));

    [Fact]
    public Task A_reordering_with_merges_is_reported_and_the_message_says_permute_then_reshape()
        => Verifier.AnalyzerAsync(
            Method("""
                        long b = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3);
                        return x.{|#0:reshape(b, h * w, c)|};
                """),
            Verifier.Diagnostic(Descriptors.MLP009_ViewReordersDimensions).WithLocation(0).WithArguments(
                "x.reshape(b, h * w, c)", "(b, c, h, w)", "(b, h * w, c)", "reshape", "x.permute(0, 2, 3, 1).reshape(b, h * w, c)"));

    [Fact]
    public Task Sizes_read_inline_from_the_tensor_in_another_order_are_reported()
        => Verifier.AnalyzerAsync(Method("        return x.{|#0:view(x.shape[1], x.shape[0], x.shape[2])|};"), MLP009());

    [Fact]
    public Task A_view_that_undoes_the_order_an_earlier_view_gave_is_reported()
        => Verifier.AnalyzerAsync(
            Method("""
                        var (b, t, d) = (x.shape[0], x.shape[1], x.shape[2]);
                        var q = x.view(b, t, heads, d / heads);
                        return q.{|#0:view(b, heads, t, d / heads)|};
                """),
            MLP009());

    [Fact]
    public Task Sizes_from_an_array_variable_and_the_static_reshape_are_reported()
        => Verifier.AnalyzerAsync(
            Method("""
                        long b = x.shape[0], c = x.shape[1], h = x.shape[2], w = x.shape[3];
                        var sizes = new long[] { b, h, w, c };
                        var y = x.{|#0:view(sizes)|};
                        return torch.{|#1:reshape(x, b, w, h, c)|} + y;
                """),
            MLP009(0), MLP009(1));

    [Fact]
    public Task Known_sizes_alone_prove_the_order_changed_even_with_unknown_sizes_among_them()
        => Verifier.AnalyzerAsync("""
            class Head
            {
                // tokens: (batch, h * w, channels); the side of the square image is computed, so unknown.
                Tensor M(Tensor tokens, long side)
                {
                    long b = tokens.shape[0], c = tokens.shape[2];
                    var n = tokens.shape[1];
                    return tokens.{|#0:view(b, c, side, side)|};
                }
            }
            """,
            MLP009());

    [Fact]
    public Task A_tensor_made_with_the_sizes_of_another_in_another_order_and_viewed_back_is_reported()
        => Verifier.AnalyzerAsync(Method("""
                    var y = torch.zeros(x.shape[1], x.shape[0]);
                    return y.{|#0:view(x.shape[0], x.shape[1])|};
            """), MLP009());

    [Fact]
    public Task An_inferred_size_that_must_hold_dimensions_placed_after_a_later_one_is_reported()
        => Verifier.AnalyzerAsync(Method("""
                    var (b, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3]);
                    return x.{|#0:view(b, -1, c)|};
            """), MLP009());

    [Fact]
    public Task A_dimension_a_factory_or_a_view_gave_keeps_its_name_through_locals_and_branches()
        => Verifier.AnalyzerAsync(
            Method("""
                        long n = heads * 2, c = heads + 1, h = x.shape[0], w = x.shape[1];
                        var image = flag ? torch.zeros(n, c, h, w) : torch.ones(n, c, h, w);
                        image = image.relu();
                        return image.{|#0:view(n, h, w, c)|};
                """),
            MLP009());

    [Fact]
    public Task Flattening_merging_in_order_splitting_and_identity_views_are_not_reported()
        => Verifier.AnalyzerAsync(Method("""
                    var (b, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3]);
                    var a = x.view(b, -1);
                    var d = x.view(b, c, h * w);
                    var e = x.view(b, c * h * w);
                    var f = x.view(b, c, h, w);
                    var g = x.view(b, c / heads, heads, h, w);
                    var k = x.reshape(-1, w);
                    var m = x.view(b, c, 1, h, w);
                    var n = x.view(b * c, h, w);
                    return a + d + e + f + g + k + m + n;
            """));

    [Fact]
    public Task The_canonical_attention_split_and_merge_are_not_reported()
        => Verifier.AnalyzerAsync(Method("""
                    var (B, T, C) = (x.shape[0], x.shape[1], x.shape[2]);
                    var q = x.view(B, T, heads, C / heads).transpose(1, 2);
                    var k = x.view(B, T, heads, C / heads).transpose(1, 2);
                    var v = x.view(B, T, heads, C / heads).transpose(1, 2);
                    var att = torch.matmul(q, k.transpose(-2, -1)).softmax(-1);
                    var y = torch.matmul(att, v);
                    return y.transpose(1, 2).contiguous().view(B, T, C);
            """));

    [Fact]
    public Task Dimensions_read_before_a_permute_applied_to_the_permuted_tensor_are_not_reported()
        => Verifier.AnalyzerAsync(Method("""
                    var (b, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3]);
                    var tokens = x.permute(0, 2, 3, 1).reshape(b, h * w, c);
                    return tokens.transpose(1, 2).reshape(b, c, h, w);
            """));

    [Fact]
    public Task A_flat_buffer_viewed_with_sizes_from_parameters_is_not_reported()
        => Verifier.AnalyzerAsync("""
            class Reader
            {
                Tensor Image(float[] pixels, long height, long width) => torch.tensor(pixels).view(height, width, 3).permute(2, 0, 1);
                Tensor Batch(float[] data, long n, long c, long h, long w) => torch.tensor(data).reshape(n, h, w, c);
            }
            """);

    [Fact]
    public Task Sizes_read_before_the_variable_is_reassigned_name_the_old_tensor_and_are_not_reported()
        => Verifier.AnalyzerAsync("""
            class Block
            {
                private readonly Module<Tensor, Tensor> conv = nn.Conv2d(3, 8, 3);
                Tensor M(Tensor x)
                {
                    var (b, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3]);
                    x = conv.call(x);
                    return x.view(b, h * w, c);
                }
            }
            """);

    [Fact]
    public Task Sizes_that_depend_on_the_branch_or_on_another_tensor_are_not_reported()
        => Verifier.AnalyzerAsync(Method("""
                    var seq = flag ? x.shape[1] : x.shape[2];
                    var other = x.shape[1] == 1 ? x.shape[2] : x.shape[1];
                    var a = x.view(x.shape[0], seq, -1);
                    var s = x.view(x.size(2), x.size(2));
                    return a + s + x.view(x.shape[0], other, -1);
            """));

    [Fact]
    public Task A_size_array_written_to_after_it_was_made_is_not_trusted()
        => Verifier.AnalyzerAsync(Method("""
                    var (b, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3]);
                    var sizes = new long[] { b, h, w, c };
                    sizes[1] = c;
                    sizes[3] = h;
                    return x.view(sizes);
            """));

    [Fact]
    public Task A_users_own_view_method_is_not_reported()
        => Verifier.AnalyzerAsync("""
            namespace Mine
            {
                class Grid { public long[] shape = new long[3]; public Grid view(params long[] sizes) => this; }
                class Use { Grid M(Grid g) => g.view(g.shape[1], g.shape[0], g.shape[2]); }
            }
            """);

    [Fact]
    public Task Heads_put_between_two_neighbouring_dimensions_are_reported_while_a_one_a_minus_one_or_the_split_in_place_are_not()
        => Verifier.AnalyzerAsync(
            Method("""
                        var (B, T, C) = (x.shape[0], x.shape[1], x.shape[2]);
                        var wrong = x.{|#0:view(B, heads, T, C / heads)|};              // the classic attention bug
                        var right = x.view(B, T, heads, C / heads).transpose(1, 2);     // split in place, then move
                        var unit = x.view(B, 1, T, C);                                   // a new axis of size 1
                        var open = x.view(B, -1, T, C);                                  // -1 is 1 here
                        var grouped = x.view(B, T, 2, C / 2);
                        return wrong + right + unit + open + grouped;
                """),
            MLP009());

    [Fact]
    public Task Without_torchsharp_nothing_is_reported()
        => Verifier.AnalyzerWithoutTorchSharpAsync("""
            class Grid { public long[] shape = new long[3]; public Grid view(params long[] sizes) => this; }
            class Use { Grid M(Grid g) => g.view(g.shape[1], g.shape[0], g.shape[2]); }
            """);

    [Fact]
    public Task The_fix_writes_the_permute_for_a_pure_reordering()
        => Verifier.CodeFixAsync(
            Method("""
                        var (b, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3]);
                        return x.{|#0:view(b, h, w, c)|};
                """),
            Method("""
                        var (b, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3]);
                        return x.permute(0, 2, 3, 1);
                """),
            MLP009());

    [Fact]
    public Task The_fix_writes_permute_then_reshape_with_the_original_sizes_for_a_reordering_with_merges()
        => Verifier.CodeFixAsync(
            Method("""
                        var (b, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3]);
                        var maps = x.view(b, c, h, w);
                        return maps.{|#0:view(b, -1, c)|};
                """),
            Method("""
                        var (b, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3]);
                        var maps = x.view(b, c, h, w);
                        return maps.permute(0, 2, 3, 1).reshape(b, -1, c);
                """),
            MLP009());

    [Fact]
    public Task Of_a_tensor_of_unknown_rank_a_minus_one_may_take_more_dimensions_so_the_message_leaves_the_shape_open_and_no_fix_is_offered()
        => Verifier.CodeFixAsync(
            Method("""
                        var (b, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3]);
                        return x.{|#0:view(b, -1, c)|};
                """),
            Method("""
                        var (b, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3]);
                        return x.{|#0:view(b, -1, c)|};
                """),
            Verifier.Diagnostic(Descriptors.MLP009_ViewReordersDimensions).WithLocation(0).WithArguments(
                "x.view(b, -1, c)", "(b, c, x.shape[2], x.shape[3], ...)", "(b, -1, c)", "view", "permute (or transpose) to move dimensions, then view to regroup them"));

    [Fact]
    public Task No_fix_is_offered_when_only_part_of_the_shape_is_known_or_for_the_static_form()
        => Verifier.NoCodeFixAsync(
            """
            class Head
            {
                Tensor M(Tensor tokens, long side)
                {
                    long b = tokens.shape[0], c = tokens.shape[2];
                    var n = tokens.shape[1];
                    var y = torch.{|#1:reshape(tokens, tokens.shape[1], tokens.shape[0])|};
                    return tokens.{|#0:view(b, c, side, side)|} + y;
                }
            }
            """,
            MLP009(0), MLP009(1));

    [Fact]
    public Task Fix_all_rewrites_every_fixable_view_in_the_file_and_leaves_the_one_without_a_fix()
    {
        var test = Verifier.Create();
        test.TestCode = Verifiers.TorchSharpSources.Usings + """
            class Encoder
            {
                Tensor ChannelsLast(Tensor x)
                {
                    var (b, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3]);
                    return x.{|#0:view(b, h, w, c)|};
                }

                Tensor Tokens(Tensor x)
                {
                    long b = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3);
                    var tokens = x.{|#1:reshape(b, h * w, c)|};
                    return tokens;
                }

                Tensor Image(Tensor tokens, long side)
                {
                    long b = tokens.shape[0], c = tokens.shape[2];
                    return tokens.{|#2:view(b, c, side, side)|};
                }
            }
            """;
        test.FixedCode = Verifiers.TorchSharpSources.Usings + """
            class Encoder
            {
                Tensor ChannelsLast(Tensor x)
                {
                    var (b, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3]);
                    return x.permute(0, 2, 3, 1);
                }

                Tensor Tokens(Tensor x)
                {
                    long b = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3);
                    var tokens = x.permute(0, 2, 3, 1).reshape(b, h * w, c);
                    return tokens;
                }

                Tensor Image(Tensor tokens, long side)
                {
                    long b = tokens.shape[0], c = tokens.shape[2];
                    return tokens.{|#2:view(b, c, side, side)|};
                }
            }
            """;
        test.ExpectedDiagnostics.AddRange(new[] { MLP009(0), MLP009(1), MLP009(2) });
        test.FixedState.ExpectedDiagnostics.Add(MLP009(2));
        test.NumberOfFixAllIterations = 1;
        return test.RunAsync();
    }
}
