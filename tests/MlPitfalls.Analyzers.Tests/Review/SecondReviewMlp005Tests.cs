using System.Threading.Tasks;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Testing;
using Xunit;
using Verifier = MlPitfalls.Analyzers.Tests.Verifiers.Verify<
    MlPitfalls.Analyzers.Architecture.BiasBeforeNormalizationAnalyzer,
    MlPitfalls.CodeFixes.Architecture.DisableBiasCodeFix>;

namespace MlPitfalls.Analyzers.Tests.Review;

/// <summary>A second independent review's cases (scoped writes, the graph-free layer graph, list-built Sequentials): each pins the behaviour it checked.</summary>
public class SecondReviewMlp005Tests
{
    private static DiagnosticResult MLP005(int marker = 0) => Verifier.DiagnosticAnyMessage(Descriptors.MLP005_BiasBeforeNormalization).WithLocation(marker);

    private const string Head = """
        class Net : Module<Tensor, Tensor>
        {
            private readonly Conv2d conv = Conv2d(3, 16, 3);
            private readonly BatchNorm2d bn = BatchNorm2d(16);
            private readonly ReLU act = ReLU();
            private readonly bool flag;
            public Net() : base("net") { RegisterComponents(); }
        """;
    private static string TP(string s) => s.Replace("= Conv2d(3, 16, 3);", "= {|#0:Conv2d(3, 16, 3)|};");

    [Fact]
    public Task A01_object_local_written_twice_same_member()
        => Verifier.AnalyzerAsync(Head + """
                public override Tensor forward(Tensor x)
                {
                    object o = conv.call(x);
                    var y = bn.call(conv.call(x));
                    if (flag) o = y;
                    return y + (Tensor)o;
                }
            }
            """);

    [Fact]
    public Task A02_object_local_written_twice_other_member()
        => Verifier.AnalyzerAsync(Head + """
                public override Tensor forward(Tensor x) => bn.call(conv.call(x));
                public Tensor Features(Tensor x) { object o = conv.call(x); if (flag) o = x; return (Tensor)o; }
            }
            """);

    [Fact]
    public Task A03_assignment_expression_returned()
        => Verifier.AnalyzerAsync(Head + """
                public override Tensor forward(Tensor x) => bn.call(conv.call(x));
                public Tensor Features(Tensor x) { Tensor h; return h = conv.call(x); }
            }
            """);

    [Fact]
    public Task A04_assignment_expression_into_activation()
        => Verifier.AnalyzerAsync(Head + """
                public override Tensor forward(Tensor x)
                {
                    Tensor h;
                    return bn.call(act.call(h = conv.call(x)));
                }
            }
            """);

    [Fact]
    public Task A05_parameter_reassigned_true_positive()
        => Verifier.AnalyzerAsync(TP(Head) + """
                public override Tensor forward(Tensor x)
                {
                    x = conv.call(x);
                    x = bn.call(x);
                    return x;
                }
            }
            """, MLP005());

    [Fact]
    public Task A06_pattern_variable_outvar_foreach()
        => Verifier.AnalyzerAsync(Head + """
                private static void Split(Tensor t, out Tensor a) => a = t;
                public override Tensor forward(Tensor x)
                {
                    Tensor y = x;
                    if (conv.call(x) is Tensor t) y = bn.call(t);
                    Split(conv.call(x), out var s);
                    y = y + bn.call(s);
                    foreach (var f in new[] { conv.call(x) }) y = y + bn.call(f);
                    return y;
                }
            }
            """);

    [Fact]
    public Task A07_switch_section_shared_local()
        => Verifier.AnalyzerAsync(Head + """
                public override Tensor forward(Tensor x)
                {
                    switch (x.Dimensions)
                    {
                        case 0:
                            var h = conv.call(x);
                            return bn.call(h);
                        default:
                            h = conv.call(x);
                            return h;
                    }
                }
            }
            """);

    [Fact]
    public Task A08_loop_local_and_for_iterator_and_catch()
        => Verifier.AnalyzerAsync(Head + """
                public override Tensor forward(Tensor x)
                {
                    var y = x;
                    for (Tensor h = conv.call(x); y.Dimensions > 100; h = x) y = bn.call(h);
                    Tensor g = conv.call(x);
                    try { y = y + x; } catch (Exception) { g = x; }
                    return y + bn.call(g);
                }
            }
            """);

    [Fact]
    public Task A09_deconstruction_and_ref_argument()
        => Verifier.AnalyzerAsync(Head + """
                private static void Swap(ref Tensor a, ref Tensor b) { var t = a; a = b; b = t; }
                public override Tensor forward(Tensor x)
                {
                    var (h, g) = (conv.call(x), x);
                    Tensor a = conv.call(x), b = x;
                    Swap(ref a, ref b);
                    return bn.call(h) + bn.call(b) + a;
                }
            }
            """);

    [Fact]
    public Task A10_sibling_blocks_same_name_true_positive()
        => Verifier.AnalyzerAsync(TP(Head) + """
                public override Tensor forward(Tensor x)
                {
                    if (flag) { var h = conv.call(x); return bn.call(h); }
                    else { var h = x; h = act.call(h); return h; }
                }
            }
            """, MLP005());

    [Fact]
    public Task A11_coalesce_and_compound()
        => Verifier.AnalyzerAsync(Head + """
                public override Tensor forward(Tensor x)
                {
                    Tensor h = conv.call(x);
                    h += x;
                    Tensor g = null;
                    g ??= conv.call(x);
                    return bn.call(h) + g;
                }
            }
            """);

    [Fact]
    public Task A13_goto_backward()
        => Verifier.AnalyzerAsync(Head + """
                public override Tensor forward(Tensor x)
                {
                    var i = 0;
                    Tensor y = x;
                    again:
                    var h = conv.call(y);
                    y = bn.call(h);
                    if (++i < 3) goto again;
                    return y + h;
                }
            }
            """);

    [Fact]
    public Task A14_using_var_loop_true_positive()
        => Verifier.AnalyzerAsync(TP(Head) + """
                public override Tensor forward(Tensor x)
                {
                    var y = x;
                    for (var i = 0; i < 3; i++)
                    {
                        using var h = conv.call(y);
                        y = act.call(bn.call(h));
                    }
                    return y;
                }
            }
            """, MLP005());

    [Fact]
    public Task A15_dynamic_local()
        => Verifier.AnalyzerAsync(Head + """
                public override Tensor forward(Tensor x)
                {
                    dynamic d = conv.call(x);
                    if (flag) d = x;
                    return bn.call(conv.call(x)) + (Tensor)d;
                }
            }
            """);

    [Fact]
    public Task A16_tensor_array_element_written()
        => Verifier.AnalyzerAsync(Head + """
                public override Tensor forward(Tensor x)
                {
                    var hs = new Tensor[] { x };
                    hs[0] = conv.call(x);
                    return bn.call(conv.call(x)) + hs[0];
                }
            }
            """);

    [Fact]
    public Task A18_attribute_and_default_parameter_with_flow()
        => Verifier.AnalyzerAsync(Head + """
                [Obsolete("x")]
                public Tensor Features(Tensor x, bool c = false) { Tensor h = conv.call(x); if (c) h = x; h = bn.call(h); return h + conv.call(x); }
                public override Tensor forward(Tensor x) => bn.call(conv.call(x));
            }
            """);
}
