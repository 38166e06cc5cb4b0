using System.Threading.Tasks;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Testing;
using Xunit;
using Verifier = MlPitfalls.Analyzers.Tests.Verifiers.Verify<
    MlPitfalls.Analyzers.Architecture.BiasBeforeNormalizationAnalyzer,
    MlPitfalls.CodeFixes.Architecture.DisableBiasCodeFix>;

namespace MlPitfalls.Analyzers.Tests.Review;

/// <summary>A second independent review's cases (scoped writes, the graph-free layer graph, list-built Sequentials): each pins the behaviour it checked.</summary>
public class SecondReviewMlp005MoreTests
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
        => Broken("""
            class Net : Module<Tensor, Tensor>
            {
                private readonly Conv2d conv = Conv2d(3, 16, 3);
                private readonly BatchNorm2d bn = BatchNorm2d(16);
                public Net() : base("net") { RegisterComponents(); }
                public override Tensor forward(Tensor x) {
            """ + body + "\n}\n}");

    private static async Task Broken(string source)
    {
        var test = Verifier.Create();
        test.TestCode = Verifier.Usings + source;
        test.CompilerDiagnostics = CompilerDiagnostics.None;
        test.TestBehaviors |= TestBehaviors.SkipGeneratedCodeCheck;
        try
        {
            await test.RunAsync();
        }
        catch (System.Exception e) when (!e.Message.Contains("AD0001", System.StringComparison.Ordinal) && e.Message.Contains("MLP005", System.StringComparison.Ordinal))
        {
        }
    }
}
