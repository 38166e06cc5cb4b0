using System.Threading.Tasks;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Testing;
using Xunit;
using Verifier = MlPitfalls.Analyzers.Tests.Verifiers.Verify<
    MlPitfalls.Analyzers.Architecture.BiasBeforeNormalizationAnalyzer,
    MlPitfalls.CodeFixes.Architecture.DisableBiasCodeFix>;

namespace MlPitfalls.Analyzers.Tests.Architecture;

/// <summary>An independent review's cases for MLP005: look-alikes that must stay quiet, true positives, broken code, the fix.</summary>
public class BiasBeforeNormalizationReviewTests
{
    private static DiagnosticResult MLP005(int marker = 0) => Verifier.DiagnosticAnyMessage(Descriptors.MLP005_BiasBeforeNormalization).WithLocation(marker);

    /// <summary>Broken code: whatever MLP005 reports there is acceptable; an analyzer exception (AD0001) is not.</summary>
    internal static async Task Broken(string source)
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

    private const string Head = """
        class Net : Module<Tensor, Tensor>
        {
            private readonly Conv2d conv = Conv2d(3, 16, 3);
            private readonly BatchNorm2d bn = BatchNorm2d(16);
            public Net() : base("net") { RegisterComponents(); }
        """;

    // ------------------------------------------------ false positives
    [Fact]
    public Task FP_nested_class_uses_outer_field_unnormalized()
        => Verifier.AnalyzerAsync(Head + """
                public override Tensor forward(Tensor x) => bn.call(conv.call(x));
                public sealed class Probe { public Tensor Features(Net net, Tensor x) => net.conv.call(x); }
            }
            """);

    [Fact]
    public Task FP_layer_of_nested_module_normalized_by_outer_but_returned_by_inner()
        => Verifier.AnalyzerAsync("""
            class Outer : Module<Tensor, Tensor>
            {
                public sealed class Inner : Module<Tensor, Tensor>
                {
                    public readonly Conv2d conv = Conv2d(3, 16, 3);
                    public Inner() : base("inner") { RegisterComponents(); }
                    public override Tensor forward(Tensor x) => conv.call(x);
                }
                private readonly Inner inner = new Inner();
                private readonly BatchNorm2d bn = BatchNorm2d(16);
                public Outer() : base("outer") { RegisterComponents(); }
                public override Tensor forward(Tensor x) => bn.call(inner.conv.call(x)) + inner.call(x);
            }
            """);

    [Fact]
    public Task FP_layer_shared_with_a_sequential()
        => Verifier.AnalyzerAsync("""
            class Net : Module<Tensor, Tensor>
            {
                private readonly Conv2d conv;
                private readonly BatchNorm2d bn = BatchNorm2d(16);
                private readonly Module<Tensor, Tensor> head;
                public Net() : base("net") { conv = Conv2d(3, 16, 3); head = Sequential(conv, ReLU()); RegisterComponents(); }
                public override Tensor forward(Tensor x) => bn.call(conv.call(x)) + head.call(x);
            }
            """);

    [Fact]
    public Task FP_layer_shared_with_a_wrapper_module()
        => Verifier.AnalyzerAsync("""
            sealed class Wrapper : Module<Tensor, Tensor>
            {
                private readonly Module<Tensor, Tensor> m;
                public Wrapper(Module<Tensor, Tensor> m) : base("w") { this.m = m; RegisterComponents(); }
                public override Tensor forward(Tensor x) => m.call(x);
            }
            class Net : Module<Tensor, Tensor>
            {
                private readonly Conv2d conv;
                private readonly BatchNorm2d bn = BatchNorm2d(16);
                private readonly Wrapper raw;
                public Net() : base("net") { conv = Conv2d(3, 16, 3); raw = new Wrapper(conv); RegisterComponents(); }
                public override Tensor forward(Tensor x) => bn.call(conv.call(x)) + raw.call(x);
            }
            """);

    [Fact]
    public Task FP_layer_passed_to_a_helper_method()
        => Verifier.AnalyzerAsync(Head + """
                private static Tensor Run(Module<Tensor, Tensor> m, Tensor x) => m.call(x);
                public override Tensor forward(Tensor x) => bn.call(conv.call(x)) + Run(conv, x);
            }
            """);

    [Fact]
    public Task FP_layer_hooked_by_a_helper()
        => Verifier.AnalyzerAsync("""
            class Net : Module<Tensor, Tensor>
            {
                private readonly Conv2d conv = Conv2d(3, 16, 3);
                private readonly BatchNorm2d bn = BatchNorm2d(16);
                public Net() : base("net") { Hook(conv); RegisterComponents(); }
                private static void Hook(Conv2d m) => m.register_forward_hook((mod, i, o) => o * 2);
                public override Tensor forward(Tensor x) => bn.call(conv.call(x));
            }
            """);

    [Fact]
    public Task FP_layer_called_through_an_expression_bodied_property()
        => Verifier.AnalyzerAsync(Head + """
                private Conv2d Conv => conv;
                public override Tensor forward(Tensor x) => bn.call(conv.call(x));
                public Tensor Features(Tensor x) => Conv.call(x);
            }
            """);

    [Fact]
    public Task FP_layer_called_through_a_method_group()
        => Verifier.AnalyzerAsync(Head + """
                public override Tensor forward(Tensor x)
                {
                    Func<Tensor, Tensor> f = conv.call;
                    return bn.call(conv.call(x)) + f(x);
                }
            }
            """);

    [Fact]
    public Task FP_output_returned_from_a_catch_handler()
        => Verifier.AnalyzerAsync(Head + """
                public override Tensor forward(Tensor x)
                {
                    Tensor h = conv.call(x);
                    try { return bn.call(h); }
                    catch (Exception) { return h; }
                }
            }
            """);

    [Fact]
    public Task FP_output_read_after_ref_local_write()
        => Verifier.AnalyzerAsync(Head + """
                public override Tensor forward(Tensor x)
                {
                    Tensor h = conv.call(x);
                    Tensor y = bn.call(h);
                    ref Tensor r = ref y;
                    r = y.relu();
                    return y + h;
                }
            }
            """);

    [Fact]
    public Task FP_partial_class_other_part_uses_output()
        => Verifier.AnalyzerAsync(Head.Replace("class Net", "partial class Net") + """
                public override Tensor forward(Tensor x) => bn.call(conv.call(x));
            }
            partial class Net
            {
                public Tensor Features(Tensor x) => conv.call(x);
            }
            """);

    [Fact]
    public Task FP_generic_module_other_member_uses_output()
        => Verifier.AnalyzerAsync(Head.Replace("class Net", "class Net<T>") + """
                public override Tensor forward(Tensor x) => bn.call(conv.call(x));
                public Tensor Features(Tensor x) => conv.call(x);
            }
            """);

    [Fact]
    public Task FP_using_var_output_used_twice()
        => Verifier.AnalyzerAsync(Head + """
                public override Tensor forward(Tensor x)
                {
                    using var h = conv.call(x);
                    using var y = bn.call(h);
                    return y + h;
                }
            }
            """);

    [Fact]
    public Task FP_inplace_op_between()
        => Verifier.AnalyzerAsync(Head + """
                public override Tensor forward(Tensor x)
                {
                    var h = conv.call(x);
                    h.relu_();
                    return bn.call(h);
                }
            }
            """);

    [Fact]
    public Task FP_iterator_yields_output()
        => Verifier.AnalyzerAsync(Head + """
                public override Tensor forward(Tensor x) => bn.call(conv.call(x));
                public IEnumerable<Tensor> Stages(Tensor x) { yield return conv.call(x); }
            }
            """);

    [Fact]
    public Task FP_list_insert_between()
        => Verifier.AnalyzerAsync("""
            class M
            {
                Module<Tensor, Tensor> Build()
                {
                    var modules = new List<Module<Tensor, Tensor>>();
                    modules.Add(Conv2d(3, 16, 3));
                    modules.Add(BatchNorm2d(16));
                    modules.Insert(1, ReLU());
                    return Sequential(modules);
                }
                Module<Tensor, Tensor> Build2()
                {
                    var modules = new List<Module<Tensor, Tensor>>();
                    modules.Add(Conv2d(3, 16, 3));
                    modules.Add(BatchNorm2d(16));
                    modules[1] = ReLU();
                    return Sequential(modules);
                }
                Module<Tensor, Tensor> Build3()
                {
                    var modules = new List<Module<Tensor, Tensor>>();
                    var alias = modules;
                    modules.Add(Conv2d(3, 16, 3));
                    modules.Add(BatchNorm2d(16));
                    alias.RemoveAt(1);
                    return Sequential(modules);
                }
                Module<Tensor, Tensor> Build4()
                {
                    var modules = new List<Module<Tensor, Tensor>>();
                    Action fix = () => modules.Insert(1, ReLU());
                    modules.Add(Conv2d(3, 16, 3));
                    modules.Add(BatchNorm2d(16));
                    fix();
                    return Sequential(modules);
                }
            }
            """);

    [Fact]
    public Task FP_top_level_list_insert_in_another_statement()
    {
        var test = Verifier.Create();
        test.TestState.OutputKind = OutputKind.ConsoleApplication;
        test.TestCode = Verifier.Usings + """
            var modules = new List<Module<Tensor, Tensor>>();
            for (var i = 0; i < 1; i++)
            {
                modules.Add(Conv2d(3, 16, 3));
                modules.Add(BatchNorm2d(16));
            }
            modules.Insert(1, ReLU());
            var model = Sequential(modules);
            """;
        return test.RunAsync();
    }

    [Fact]
    public Task FP_normalization_replaced_later()
        => Verifier.AnalyzerAsync("""
            class Net : Module<Tensor, Tensor>
            {
                private readonly Conv2d conv = Conv2d(3, 16, 3);
                private Module<Tensor, Tensor> bn = BatchNorm2d(16);
                public Net() : base("net") { RegisterComponents(); }
                public void NoNorm() => bn = Identity();
                public override Tensor forward(Tensor x) => bn.call(conv.call(x));
            }
            """);

    // ------------------------------------------------ true positives
    [Fact]
    public Task TP_property_and_this_assignment_and_sequential_last_child()
        => Verifier.AnalyzerAsync("""
            class Net : Module<Tensor, Tensor>
            {
                private Conv2d Conv { get; } = {|#0:Conv2d(3, 16, 3)|};
                private readonly Linear fc;
                private readonly Module<Tensor, Tensor> features;
                private readonly BatchNorm2d bn = BatchNorm2d(16);
                private readonly BatchNorm1d bn1 = BatchNorm1d(8);
                private readonly InstanceNorm1d inorm = InstanceNorm1d(16);
                private readonly ConvTranspose1d up = {|#3:ConvTranspose1d(16, 16, 3)|};
                public Net() : base("net")
                {
                    this.fc = {|#1:Linear(16, 8)|};
                    features = Sequential(ReLU(), {|#2:Conv2d(16, 16, 3)|});
                    RegisterComponents();
                }
                public override Tensor forward(Tensor x)
                {
                    var a = functional.relu(bn.call(Conv.call(x)));
                    var b = functional.relu(bn.call(features.call(a)));
                    var c = functional.relu(inorm.call(up.call(b)));
                    return bn1.call(fc.call(c));
                }
            }
            """, MLP005(0), MLP005(1), MLP005(2), MLP005(3));

    [Fact]
    public Task TP_top_level_and_static_field_sequential()
    {
        var test = Verifier.Create();
        test.TestState.OutputKind = OutputKind.ConsoleApplication;
        test.TestCode = Verifier.Usings + """
            var model = Sequential({|#0:Conv2d(3, 16, 3)|}, BatchNorm2d(16));
            static class Models { public static readonly Module<Tensor, Tensor> Net = Sequential({|#1:Linear(3, 16)|}, BatchNorm1d(16)); }
            """;
        test.ExpectedDiagnostics.Add(MLP005(0));
        test.ExpectedDiagnostics.Add(MLP005(1));
        return test.RunAsync();
    }

    [Fact]
    public Task TP_using_var()
        => Verifier.AnalyzerAsync(Head.Replace("Conv2d(3, 16, 3);", "{|#0:Conv2d(3, 16, 3)|};") + """
                public override Tensor forward(Tensor x)
                {
                    using var h = conv.call(x);
                    return bn.call(h);
                }
            }
            """, MLP005());

    // ------------------------------------------------ AD0001
    [Theory]
    [InlineData("Module<Tensor, Tensor> A() => Sequential();")]
    [InlineData("Module<Tensor, Tensor> A() => Sequential(null);")]
    [InlineData("Module<Tensor, Tensor> A() => Sequential(Conv2d(3, 16), BatchNorm2d(16));")]
    [InlineData("Module<Tensor, Tensor> A() => Sequential(Conv2d(3, 16, 3), BatchNorm2d());")]
    [InlineData("Module<Tensor, Tensor> A() => Sequential(Linear(3, 16, hasBias: ), BatchNorm1d(16));")]
    [InlineData("Module<Tensor, Tensor> A() => Sequential(Conv2d(3, 16, 3, bias: true, bias: false), BatchNorm2d(16));")]
    [InlineData("Module<Tensor, Tensor> A() => Sequential(Conv2d(3, 16, 3), BatchNorm2d(16)")]
    [InlineData("Module<Tensor, Tensor> A() => Sequential(modules);")]
    [InlineData("Module<Tensor, Tensor> A() => Sequential(Conv2dd(3, 16, 3), BatchNorm2d(16));")]
    [InlineData("Module<Tensor, Tensor> A() => Sequential((Conv2d(3, 16, 3), \"a\"), (\"b\"));")]
    [InlineData("Module<Tensor, Tensor> A() { var s = Sequential(Conv2d(3, 16, 3)); s.append(); s.append(\"x\"); return s; }")]
    [InlineData("Module<Tensor, Tensor> A() { var l = new List<Module<Tensor, Tensor>>(); l.Add(); l.Add(Conv2d(3, 16, 3)); l.Add(BatchNorm2d(16)); return Sequential(l); }")]
    [InlineData("Module<Tensor, Tensor> A() { var l = new List<Module<Tensor, Tensor>>(); l.Add(Conv2d(3, 16, 3)); l.Add(BatchNorm2d(16)); return Sequential(l, l); }")]
    [InlineData("Module<Tensor, Tensor> A() { var l = new List<Module<Tensor, Tensor>>(); l.Add(Conv2d(3, 16, 3)); l.Add(BatchNorm2d(16)) return Sequential(l); }")]
    [InlineData("Module<Tensor, Tensor> A() { var l = new List<Foo>(); l.Add(Conv2d(3, 16, 3)); l.Add(BatchNorm2d(16)); return Sequential(l); }")]
    public Task No_AD0001_on_broken_sequential(string member)
        => Broken("class M { " + member + " }");

    [Theory]
    [InlineData("return bn.call();")]
    [InlineData("return bn.call(conv.call(x), x);")]
    [InlineData("return bn.call(conv.call());")]
    [InlineData("return bn.forward(conv.forward(x, x));")]
    [InlineData("return bn.call(conv.call(x)")]
    [InlineData("return bn.call(foo.call(x));")]
    [InlineData("return bn.call(conv.call(y));")]
    [InlineData("var h = conv.call(x); return bn.call(h, );")]
    [InlineData("")]
    public Task No_AD0001_on_broken_forward(string body)
        => Broken("""
            class Net : Module<Tensor, Tensor>
            {
                private readonly Conv2d conv = Conv2d(3, 16, 3);
                private readonly BatchNorm2d bn = BatchNorm2d(16);
                private readonly Bogus foo = Bogus();
                public Net() : base("net") { RegisterComponents(); }
                public override Tensor forward(Tensor x) {
            """ + body + "\n}\n}");

    [Theory]
    [InlineData("private readonly Conv2d conv = Conv2d(3, 16);")]
    [InlineData("private readonly Conv2d conv = Conv2d(3, 16, 3, bias: );")]
    [InlineData("private readonly Conv2d conv = Conv2d(3, 16, 3, bias: 1);")]
    [InlineData("private readonly Conv2d conv = Conv2dd(3, 16, 3);")]
    [InlineData("private readonly Conv2dd conv = Conv2d(3, 16, 3);")]
    [InlineData("private readonly Conv2d conv = Conv2d(3, 16, 3), conv;")]
    [InlineData("private readonly Conv2d conv => Conv2d(3, 16, 3);")]
    public Task No_AD0001_on_broken_fields(string field)
        => Broken("""
            class Net : Module<Tensor, Tensor>
            {
            """ + field + """

                private readonly BatchNorm2d bn = BatchNorm2d(16);
                public Net() : base("net") { RegisterComponents(); }
                public override Tensor forward(Tensor x) => bn.call(conv.call(x));
            }
            """);

    // ------------------------------------------------ fix
    private static string Seq(string conv, string norm = "BatchNorm2d(16)") => "class M { Module<Tensor, Tensor> A() => Sequential(" + conv + ", " + norm + "); }";

    [Theory]
    [InlineData("Conv2d(3, 16, 3, 1, 0, 1, PaddingModes.Zeros, 1, true)", "Conv2d(3, 16, 3, 1, 0, 1, PaddingModes.Zeros, 1, false)")]
    [InlineData("Conv2d(3, 16, (3, 3))", "Conv2d(3, 16, (3, 3), bias: false)")]
    [InlineData("Conv2d(3, 16, 3, Padding.Same)", "Conv2d(3, 16, 3, Padding.Same, bias: false)")]
    [InlineData("Conv2d(3, 16, (3, 3), Padding.Same, bias: true)", "Conv2d(3, 16, (3, 3), Padding.Same, bias: false)")]
    [InlineData("Conv2d(groups: 1, kernel_size: 3, out_channels: 16, in_channels: 3)", "Conv2d(groups: 1, kernel_size: 3, out_channels: 16, in_channels: 3, bias: false)")]
    [InlineData("Conv2d(3, 16, kernel_size: 3, 1)", "Conv2d(3, 16, kernel_size: 3, 1, bias: false)")]
    [InlineData("Conv2d(3, 16, 3, bias: /* on */ true /* yes */)", "Conv2d(3, 16, 3, bias: /* on */ false /* yes */)")]
    [InlineData("Conv2d(3, 16, 3 /* k */)", "Conv2d(3, 16, 3 /* k */, bias: false)")]
    [InlineData("Conv2d(3, 16, 3, @bias: true)", "Conv2d(3, 16, 3, @bias: false)")]
    [InlineData("Conv2d(3, 16, 3, bias: (true))", "Conv2d(3, 16, 3, bias: false)")]
    [InlineData("torch.nn.Conv2d(3, 16, 3)", "torch.nn.Conv2d(3, 16, 3, bias: false)")]
    public Task Fix_output(string before, string after)
        => Verifier.CodeFixAsync(Seq("{|#0:" + before + "|}"), Seq(after), MLP005());

    [Fact]
    public Task The_fix_adds_the_argument_before_a_trailing_comment_and_keeps_the_closing_parenthesis_in_place()
        => Verifier.CodeFixAsync(
            Seq("{|#0:Conv2d(\n        3,\n        16,\n        3 // kernel\n    )|}"),
            Seq("Conv2d(\n        3,\n        16,\n        3, bias: false // kernel\n    )"),
            MLP005());

    // ------------------------------------------------ more of the review


    [Fact]
    public Task FP_static_layer_used_in_static_field_initializer_lambda()
        => Verifier.AnalyzerAsync("""
            class Net : Module<Tensor, Tensor>
            {
                private static readonly Conv2d conv = Conv2d(3, 16, 3);
                private static readonly Func<Tensor, Tensor> features = x => conv.call(x);
                private readonly BatchNorm2d bn = BatchNorm2d(16);
                public Net() : base("net") { RegisterComponents(); }
                public override Tensor forward(Tensor x) => bn.call(conv.call(x)) + features(x);
            }
            """);

    [Fact]
    public Task FP_async_member_returns_output()
        => Verifier.AnalyzerAsync("""
            class Net : Module<Tensor, Tensor>
            {
                private readonly Conv2d conv = Conv2d(3, 16, 3);
                private readonly BatchNorm2d bn = BatchNorm2d(16);
                public Net() : base("net") { RegisterComponents(); }
                public override Tensor forward(Tensor x) => bn.call(conv.call(x));
                public async System.Threading.Tasks.Task<Tensor> FeaturesAsync(Tensor x) { await System.Threading.Tasks.Task.Yield(); return conv.call(x); }
            }
            """);

    [Fact]
    public Task FP_derived_class_uses_protected_layer()
        => Verifier.AnalyzerAsync("""
            class Base : Module<Tensor, Tensor>
            {
                protected readonly Conv2d conv = Conv2d(3, 16, 3);
                protected readonly BatchNorm2d bn = BatchNorm2d(16);
                public Base() : base("net") { RegisterComponents(); }
                public override Tensor forward(Tensor x) => bn.call(conv.call(x));
            }
            sealed class Derived : Base
            {
                public Tensor Features(Tensor x) => conv.call(x);
            }
            """);

    [Fact]
    public Task FP_output_read_in_finally()
        => Verifier.AnalyzerAsync("""
            class Net : Module<Tensor, Tensor>
            {
                private readonly Conv2d conv = Conv2d(3, 16, 3);
                private readonly BatchNorm2d bn = BatchNorm2d(16);
                public Tensor last;
                public Net() : base("net") { RegisterComponents(); }
                public override Tensor forward(Tensor x)
                {
                    Tensor h = conv.call(x);
                    try { return bn.call(h); }
                    finally { last = h; }
                }
            }
            """);

    [Fact]
    public Task TP_primary_constructor()
        => Verifier.AnalyzerAsync("""
            class Net(long c) : Module<Tensor, Tensor>("net")
            {
                private readonly Conv2d conv = {|#0:Conv2d(c, 16, 3)|};
                private readonly BatchNorm2d bn = BatchNorm2d(16);
                public override Tensor forward(Tensor x) => bn.call(conv.call(x));
            }
            """, MLP005());

    [Fact]
    public Task TP_array_children_and_collection_expressions()
        => Verifier.AnalyzerAsync("""
            class M
            {
                Module<Tensor, Tensor> A() => Sequential(new Module<Tensor, Tensor>[] { {|#0:Conv2d(3, 16, 3)|}, BatchNorm2d(16) });
                Module<Tensor, Tensor> B() => Sequential([{|#1:Conv2d(3, 16, 3)|}, BatchNorm2d(16)]);
            }
            """, MLP005(0), MLP005(1));

    [Fact]
    public Task TP_list_of_named_tuples_and_local_bn()
        => Verifier.AnalyzerAsync("""
            class M
            {
                Module<Tensor, Tensor> A()
                {
                    var bn = BatchNorm2d(16);
                    return Sequential(("conv", {|#0:Conv2d(3, 16, 3)|}), ("bn", bn));
                }
            }
            """, MLP005(0));
}
