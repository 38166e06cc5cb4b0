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

    // Same as A01/A02 but the body is forced onto the dataflow by a tensor local written twice.
    [Fact]
    public Task F01_object_local_written_twice_same_member_with_flow()
        => Verifier.AnalyzerAsync(Head + """
                public override Tensor forward(Tensor x)
                {
                    Tensor z = x; z = z + 1;
                    object o = conv.call(x);
                    var y = bn.call(conv.call(x));
                    if (flag) o = y;
                    return y + (Tensor)o + z;
                }
            }
            """);

    [Fact]
    public Task F03_assignment_expression_returned_with_flow()
        => Verifier.AnalyzerAsync(Head + """
                public override Tensor forward(Tensor x) => bn.call(conv.call(x));
                public Tensor Features(Tensor x) { Tensor z = x; z = z + 1; Tensor h; return (h = conv.call(x)) + z * 0; }
            }
            """);

    [Fact]
    public Task F04_assignment_expression_returned_no_flow_plain()
        => Verifier.AnalyzerAsync(Head + """
                public override Tensor forward(Tensor x) => bn.call(conv.call(x));
                public Tensor Features(Tensor x) { Tensor h; var y = (h = conv.call(x)) + x; return y; }
            }
            """);

    [Fact]
    public Task S01_list_aliased_by_declaration_then_mutated_through_the_other_name()
        => Verifier.AnalyzerAsync("""
            class M
            {
                Module<Tensor, Tensor> Build()
                {
                    var other = new List<Module<Tensor, Tensor>>();
                    var modules = other;
                    modules.Add(Conv2d(3, 16, 3));
                    modules.Add(BatchNorm2d(16));
                    other.Insert(1, ReLU());
                    return Sequential(modules);
                }
            }
            """);

    [Fact]
    public Task S02_list_reassigned_to_alias_then_mutated()
        => Verifier.AnalyzerAsync("""
            class M
            {
                Module<Tensor, Tensor> Build(List<Module<Tensor, Tensor>> shared)
                {
                    var modules = new List<Module<Tensor, Tensor>>();
                    modules = shared;
                    modules.Add(Conv2d(3, 16, 3));
                    modules.Add(BatchNorm2d(16));
                    shared.Insert(1, ReLU());
                    return Sequential(modules);
                }
            }
            """);

    [Fact]
    public Task S03_array_local_element_used_elsewhere()
        => Verifier.AnalyzerAsync("""
            class M
            {
                Module<Tensor, Tensor> Build(out Module<Tensor, Tensor> raw)
                {
                    var arr = new Module<Tensor, Tensor>[] { Conv2d(3, 16, 3), BatchNorm2d(16) };
                    raw = arr[0];
                    return Sequential(arr);
                }
                Module<Tensor, Tensor> Build2()
                {
                    var arr = new Module<Tensor, Tensor>[] { Conv2d(3, 16, 3), BatchNorm2d(16) };
                    arr[1] = ReLU();
                    return Sequential(arr);
                }
            }
            """);

    [Fact]
    public Task S04_list_add_in_lambda_body_consecutive()
        => Verifier.AnalyzerAsync("""
            class M
            {
                Module<Tensor, Tensor> Build()
                {
                    var modules = new List<Module<Tensor, Tensor>>();
                    modules.Add(Conv2d(3, 16, 3));
                    modules.Add(BatchNorm2d(16));
                    var first = Sequential(modules);
                    modules.RemoveAt(1);
                    return first;
                }
            }
            """);

    [Fact]
    public Task S05_sequential_in_place_child_handed_to_a_tuple_list_variable()
        => Verifier.AnalyzerAsync("""
            class M
            {
                Module<Tensor, Tensor> Build()
                {
                    var modules = new List<(string, Module<Tensor, Tensor>)>();
                    modules.Add(("conv", {|#0:Conv2d(3, 16, 3)|}));
                    modules.Add(("bn", BatchNorm2d(16)));
                    return Sequential(modules);
                }
            }
            """, MLP005());

    [Fact]
    public Task O02_private_holder_in_class_nested_in_another()
        => Verifier.AnalyzerAsync("""
            class Outer
            {
                public sealed class Net : Module<Tensor, Tensor>
                {
                    private readonly Conv2d conv = {|#0:Conv2d(3, 16, 3)|};
                    private readonly BatchNorm2d bn = BatchNorm2d(16);
                    public Net() : base("net") { RegisterComponents(); }
                    public override Tensor forward(Tensor x) => bn.call(conv.call(x));
                }
            }
            """, MLP005());

    [Fact]
    public Task O03_creation_assigned_to_local_then_field()
        => Verifier.AnalyzerAsync("""
            class Net : Module<Tensor, Tensor>
            {
                private readonly Conv2d conv;
                private readonly BatchNorm2d bn = BatchNorm2d(16);
                public Net() : base("net") { var c = Conv2d(3, 16, 3); conv = c; RegisterComponents(); }
                public override Tensor forward(Tensor x) => bn.call(conv.call(x));
            }
            """);

    [Fact]
    public Task O04_holder_name_collides_with_private_field_of_other_object()
        => Verifier.AnalyzerAsync("""
            class Holder { public Conv2d conv; }
            class Net : Module<Tensor, Tensor>
            {
                private readonly Conv2d conv = Conv2d(3, 16, 3, bias: false);
                private readonly BatchNorm2d bn = BatchNorm2d(16);
                private readonly Holder holder = new Holder();
                public Net() : base("net") { holder.conv = Conv2d(3, 16, 3); RegisterComponents(); }
                public override Tensor forward(Tensor x) => bn.call(conv.call(x)) + holder.conv.call(x);
            }
            """);

    [Theory]
    [InlineData("var h = h; return bn.call(h);")]
    [InlineData("Tensor a = b, b = a; return bn.call(a);")]
    [InlineData("var h = conv.call(x); var h = bn.call(h); return h;")]
    [InlineData("return bn.call(h); var h = conv.call(x);")]
    [InlineData("using var = conv.call(x); return x;")]
    [InlineData("var (a, b) = conv.call(x); return bn.call(a);")]
    [InlineData("ref var r = conv.call(x); return bn.call(r);")]
    [InlineData("foreach (var t in conv.call(x)) return bn.call(t); return x;")]
    [InlineData("h = conv.call(x); return bn.call(h);")]
    [InlineData("switch (1) { case 1: var h = conv.call(x); break; } return bn.call(h);")]
    [InlineData("Tensor h = conv.call(x) return bn.call(h);")]
    [InlineData("var h = conv.call(x); { var h = x; h = bn.call(h); } return bn.call(h);")]
    [InlineData("var h = conv.call(x); Tensor F() => h; return bn.call(h) + F();")]
    [InlineData("Tensor h = conv.call(x); if (h is Tensor h) return h; return bn.call(h);")]
    [InlineData("var a = conv.call(x); var b = a; var c = b; var d = c; var e = d; var f = e; var g = f; var h = g; var i = h; var j = i; return bn.call(j);")]
    public Task No_AD0001(string body)
        => Architecture.BiasBeforeNormalizationReviewTests.Broken("""
            class Net : Module<Tensor, Tensor>
            {
                private readonly Conv2d conv = Conv2d(3, 16, 3);
                private readonly BatchNorm2d bn = BatchNorm2d(16);
                public Net() : base("net") { RegisterComponents(); }
                public override Tensor forward(Tensor x) {
            """ + body + "\n}\n}");
}
