using System.Threading.Tasks;
using Microsoft.CodeAnalysis.Testing;
using Xunit;
using Verifier = MlPitfalls.Analyzers.Tests.Verifiers.Verify<
    MlPitfalls.Analyzers.Architecture.BiasBeforeNormalizationAnalyzer,
    MlPitfalls.CodeFixes.Architecture.DisableBiasCodeFix>;

namespace MlPitfalls.Analyzers.Tests.Architecture;

public class BiasBeforeNormalizationTests
{
    private static DiagnosticResult MLP005(int marker = 0) => Verifier.DiagnosticAnyMessage(Descriptors.MLP005_BiasBeforeNormalization).WithLocation(marker);

    private static string Sequential(string children) => $$"""
        class Models
        {
            Module<Tensor, Tensor> Build() => Sequential({{children}});
        }
        """;

    /// <summary>A module class with the given fields (created in the constructor) and forward body.</summary>
    private static string Block(string constructor, string forward, string fields = "private readonly Module<Tensor, Tensor> conv, conv2, bn, act; private readonly bool flag;", string more = "") => $$"""
        class Block : Module<Tensor, Tensor>
        {
            {{fields}}
            public Block(bool flag, bool useBias) : base("block")
            {
        {{constructor}}
                RegisterComponents();
            }
            public override Tensor forward(Tensor x)
            {
        {{forward}}
            }
        {{more}}
        }
        """;

    // ---------------------------------------------------------------- Sequential children

    [Theory]
    [InlineData("{|#0:Conv2d(3, 16, 3)|}, BatchNorm2d(16), ReLU()")]
    [InlineData("{|#0:Conv2d(3, 16, 3, bias: true)|}, BatchNorm2d(16)")]
    [InlineData("{|#0:Conv1d(3, 16, 3, padding: 1)|}, BatchNorm1d(16)")]
    [InlineData("{|#0:Conv3d(3, 16, 3)|}, BatchNorm3d(16, affine: false)")]
    [InlineData("{|#0:ConvTranspose2d(16, 3, 3)|}, BatchNorm2d(3, track_running_stats: false)")]
    [InlineData("{|#0:Conv2d(3, 16, 3)|}, InstanceNorm2d(16)")]
    [InlineData("{|#0:Linear(10, 20)|}, BatchNorm1d(20)")]
    [InlineData("{|#0:Linear(10, 20, true)|}, BatchNorm1d(20)")]
    [InlineData("ReLU(), {|#0:Linear(10, 20)|}, BatchNorm1d(20), ReLU(), {|#1:Linear(20, 20)|}, BatchNorm1d(20)")]
    public Task A_layer_with_bias_right_before_normalization_in_a_sequential_is_reported(string children)
    {
        var expected = children.Contains("#1") ? new[] { MLP005(0), MLP005(1) } : new[] { MLP005(0) };
        return Verifier.AnalyzerAsync(Sequential(children), expected);
    }

    [Fact]
    public Task The_message_names_both_layers_and_the_argument_to_change()
        => Verifier.AnalyzerAsync(
            Sequential("""("conv1", {|#0:Conv2d(3, 16, 3)|}), ("bn1", BatchNorm2d(16)), ("relu", ReLU())"""),
            Verifier.Diagnostic(Descriptors.MLP005_BiasBeforeNormalization).WithLocation(0).WithArguments("Conv2d 'conv1'", "BatchNorm2d 'bn1'", "bias"));

    [Theory]
    [InlineData("Conv2d(3, 16, 3, bias: false), BatchNorm2d(16)")]
    [InlineData("Linear(10, 20, hasBias: false), BatchNorm1d(20)")]
    [InlineData("Linear(10, 20, false), BatchNorm1d(20)")]
    [InlineData("Conv2d(3, 16, 3), ReLU(), BatchNorm2d(16)")]
    [InlineData("Conv2d(3, 16, 3), Dropout(0.1), BatchNorm2d(16)")]
    [InlineData("Conv2d(3, 16, 3), MaxPool2d(2), BatchNorm2d(16)")]
    [InlineData("BatchNorm2d(3), ReLU(), Conv2d(3, 16, 3)")]
    [InlineData("Conv2d(3, 16, 3), GroupNorm(4, 16)")]
    [InlineData("Linear(10, 20), LayerNorm(20)")]
    [InlineData("Linear(10, 20), InstanceNorm1d(20)")]
    public Task No_bias_something_in_between_or_a_normalization_that_keeps_the_bias_is_not_reported(string children)
        => Verifier.AnalyzerAsync(Sequential(children));

    [Fact]
    public Task Children_added_with_append_are_paired_in_chains_and_in_statements()
        => Verifier.AnalyzerAsync("""
            class Models
            {
                Module<Tensor, Tensor> Chain() => Sequential().append({|#0:Conv2d(3, 16, 3)|}).append(BatchNorm2d(16)).append(ReLU());
                Module<Tensor, Tensor> Statements()
                {
                    var s = Sequential(ReLU());
                    s.append("conv", {|#1:Conv2d(3, 16, 3)|});
                    s.append("bn", BatchNorm2d(16));
                    return s;
                }
                Module<Tensor, Tensor> Correct()
                {
                    var s = Sequential();
                    s.append(Conv2d(3, 16, 3, bias: false));
                    s.append(BatchNorm2d(16));
                    s.append(Conv2d(16, 16, 3));
                    s.append(ReLU());
                    s.append(BatchNorm2d(16));
                    return Sequential().append(Linear(4, 8)).append(LayerNorm(8)).append(s);
                }
                Module<Tensor, Tensor> Unknown(bool deep)
                {
                    var s = Sequential();
                    s.append(Conv2d(3, 16, 3));
                    if (deep) s.append(ReLU());
                    s.append(BatchNorm2d(16));
                    return s;
                }
            }
            """, MLP005(0), MLP005(1));

    [Fact]
    public Task A_bias_parameter_that_is_true_at_every_call_is_reported_without_a_fix()
        => Verifier.NoCodeFixAsync("""
            class Models
            {
                static Module<Tensor, Tensor> Stem(long channels, bool bias = true)
                    => Sequential({|#0:Conv2d(3, channels, 3, bias: bias)|}, BatchNorm2d(channels), ReLU());
                Module<Tensor, Tensor> Build() => Sequential(Stem(16), Stem(32, true), Models.Stem(channels: 64));
            }

            sealed class Block : Module<Tensor, Tensor>
            {
                private readonly Module<Tensor, Tensor> conv, bn;
                private Block(long channels, bool useBias = true) : base("block")
                {
                    conv = {|#1:Conv2d(channels, channels, 3, padding: 1, bias: useBias)|};
                    bn = BatchNorm2d(channels);
                    RegisterComponents();
                }
                public override Tensor forward(Tensor x) => bn.call(conv.call(x));
                public static Block Make() => new(16);
                public static Block Wide() => new Block(32, true);
            }
            """, MLP005(0), MLP005(1));

    [Fact]
    public Task A_bias_parameter_of_a_method_others_can_call_is_not_judged()
        => Verifier.AnalyzerAsync("""
            class Models
            {
                public static Module<Tensor, Tensor> Stem(long channels, bool bias = true)
                    => Sequential(Conv2d(3, channels, 3, bias: bias), BatchNorm2d(channels), ReLU());
                Module<Tensor, Tensor> Build() => Stem(16);
            }

            sealed class Block : Module<Tensor, Tensor>
            {
                private readonly Module<Tensor, Tensor> conv, bn;
                public Block(long channels, bool useBias = true) : base("block")
                {
                    conv = Conv2d(channels, channels, 3, padding: 1, bias: useBias);
                    bn = BatchNorm2d(channels);
                    RegisterComponents();
                }
                public override Tensor forward(Tensor x) => bn.call(conv.call(x));
                public static Block Make() => new(16);
            }
            """);

    [Theory]
    // Some call passes false, or a computed value; no call at all; the method may be reached as a method group.
    [InlineData("Module<Tensor, Tensor> Build(bool b) => Sequential(Stem(16), Stem(32, false));")]
    [InlineData("Module<Tensor, Tensor> Build(bool b) => Sequential(Stem(16), Stem(32, b));")]
    [InlineData("")]
    [InlineData("Module<Tensor, Tensor> Build() => Sequential(Stem(16)); System.Func<long, bool, Module<Tensor, Tensor>> f = Stem;")]
    public Task A_bias_parameter_not_true_at_every_call_is_not_reported(string callers)
        => Verifier.AnalyzerAsync($$"""
            class Models
            {
                static Module<Tensor, Tensor> Stem(long channels, bool bias = true)
                    => Sequential(Conv2d(3, channels, 3, bias: bias), BatchNorm2d(channels), ReLU());
                {{callers}}
            }
            """);

    [Fact]
    public Task A_bias_parameter_its_method_changes_or_a_constructor_called_with_false_is_not_reported()
        => Verifier.AnalyzerAsync("""
            class Models
            {
                static Module<Tensor, Tensor> Stem(long channels, bool bias = true)
                {
                    bias = channels > 8;
                    return Sequential(Conv2d(3, channels, 3, bias: bias), BatchNorm2d(channels), ReLU());
                }
                Module<Tensor, Tensor> Build() => Stem(16);
            }

            sealed class Block : Module<Tensor, Tensor>
            {
                private readonly Module<Tensor, Tensor> conv, bn;
                public Block(long channels, bool useBias = true) : base("block")
                {
                    conv = Conv2d(channels, channels, 3, padding: 1, bias: useBias);
                    bn = BatchNorm2d(channels);
                    RegisterComponents();
                }
                public override Tensor forward(Tensor x) => bn.call(conv.call(x));
            }

            sealed class Deeper : Module<Tensor, Tensor>
            {
                private readonly Block a = new Block(8), b = new(8, false);
                public Deeper() : base("deeper") => RegisterComponents();
                public override Tensor forward(Tensor x) => b.call(a.call(x));
            }
            """);

    [Fact]
    public Task Children_in_a_collection_expression_are_paired()
        => Verifier.AnalyzerAsync("""
            class Models
            {
                Module<Tensor, Tensor> Bare() => Sequential([{|#0:Conv2d(3, 16, 3)|}, BatchNorm2d(16), ReLU()]);
                Module<Tensor, Tensor> Named() => Sequential([("conv", {|#1:Conv2d(3, 16, 3)|}), ("bn", BatchNorm2d(16))]);
                Module<Tensor, Tensor> Correct() => Sequential([Conv2d(3, 16, 3, bias: false), BatchNorm2d(16), Conv2d(16, 16, 3), ReLU()]);
                Module<Tensor, Tensor> Spread(Module<Tensor, Tensor>[] more) => Sequential([Conv2d(3, 16, 3), .. more, BatchNorm2d(16)]);
            }
            """, MLP005(0), MLP005(1));

    /// <summary>TorchAudio's Tacotron2: a factory with a bias parameter, its layers put before BatchNorm1d in Sequentials.</summary>
    private const string Factory = """
        static Conv1d ConvLayer(long inChannels, long outChannels, long kernelSize = 1, bool bias = true)
        {
            var conv1d = nn.Conv1d(inChannels, outChannels, kernelSize, padding: (kernelSize - 1) / 2, bias: bias);
            nn.init.xavier_uniform_(conv1d.weight);
            return conv1d;
        }
        """;

    [Fact]
    public Task A_layer_made_by_a_factory_is_reported_on_the_call_when_its_bias_argument_is_on_there()
        => Verifier.CodeFixAsync($$"""
            class Postnet
            {
                {{Factory}}
                Module<Tensor, Tensor> Build(long channels) => nn.Sequential(
                    {|#0:ConvLayer(80, channels, kernelSize: 5)|}, nn.BatchNorm1d(channels), nn.Tanh(),
                    ConvLayer(channels, channels, 5, bias: false), nn.BatchNorm1d(channels),
                    {|#1:ConvLayer(channels, 80, 5, true)|}, nn.BatchNorm1d(80),
                    ConvLayer(80, 80, 1), nn.ReLU());
            }
            """, $$"""
            class Postnet
            {
                {{Factory}}
                Module<Tensor, Tensor> Build(long channels) => nn.Sequential(
                    ConvLayer(80, channels, kernelSize: 5, bias: false), nn.BatchNorm1d(channels), nn.Tanh(),
                    ConvLayer(channels, channels, 5, bias: false), nn.BatchNorm1d(channels),
                    ConvLayer(channels, 80, 5, false), nn.BatchNorm1d(80),
                    ConvLayer(80, 80, 1), nn.ReLU());
            }
            """, Verifier.Diagnostic(Descriptors.MLP005_BiasBeforeNormalization).WithLocation(0)
                .WithArguments("Conv1d (made by 'ConvLayer')", "BatchNorm1d", "bias"), MLP005(1));

    [Fact]
    public Task A_factory_that_always_makes_a_bias_is_reported_without_a_fix()
        => Verifier.NoCodeFixAsync("""
            class Models
            {
                static Module<Tensor, Tensor> Conv3x3(long i, long o) => nn.Conv2d(i, o, 3, padding: 1);
                Module<Tensor, Tensor> Build() => nn.Sequential({|#0:Conv3x3(3, 16)|}, nn.BatchNorm2d(16), nn.ReLU());
            }
            """, MLP005());

    [Theory]
    // The layer is kept or handed on by the factory, or it may return another one; or the argument is computed.
    [InlineData("static readonly List<Module<Tensor, Tensor>> made = new(); static Module<Tensor, Tensor> Conv3x3(long i, long o) { var c = nn.Conv2d(i, o, 3); made.Add(c); return c; }", "Conv3x3(3, 16)")]
    [InlineData("static Module<Tensor, Tensor> Conv3x3(long i, long o) { var c = nn.Conv2d(i, o, 3); c.register_forward_hook((m, x, y) => y * 2); return c; }", "Conv3x3(3, 16)")]
    [InlineData("static Module<Tensor, Tensor> Conv3x3(long i, long o) { if (i > 3) return nn.Conv2d(i, o, 1); return nn.Conv2d(i, o, 3); }", "Conv3x3(3, 16)")]
    [InlineData("static Module<Tensor, Tensor> Conv3x3(long i, long o, bool bias = true) => nn.Conv2d(i, o, 3, bias: bias);", "Conv3x3(3, 16, bias: System.Environment.ProcessorCount > 2)")]
    [InlineData("static Module<Tensor, Tensor> Conv3x3(long i, long o, bool bias = true) { bias = i > 3; return nn.Conv2d(i, o, 3, bias: bias); }", "Conv3x3(3, 16)")]
    [InlineData("static Module<Tensor, Tensor> Conv3x3(long i, long o) => nn.Conv2d(i, o, 3, bias: false);", "Conv3x3(3, 16)")]
    public Task A_factory_layer_that_may_be_held_elsewhere_or_has_no_known_bias_is_not_reported(string factory, string call)
        => Verifier.AnalyzerAsync($$"""
            class Models
            {
                {{factory}}
                Module<Tensor, Tensor> Build() => nn.Sequential({{call}}, nn.BatchNorm2d(16), nn.ReLU());
            }
            """);

    /// <summary>A module whose layers live in two ModuleLists filled in a loop, paired by index in forward.</summary>
    private static string Lists(string fill, string forward, string more = "") => $$"""
        sealed class Stack : Module<Tensor, Tensor>
        {
            private readonly ModuleList<Module<Tensor, Tensor>> convs = nn.ModuleList<Module<Tensor, Tensor>>();
            private readonly ModuleList<Module<Tensor, Tensor>> bns = nn.ModuleList<Module<Tensor, Tensor>>();
            public Stack(int layers) : base("stack")
            {
                for (int i = 0; i < layers; i++)
                {
        {{fill}}
                }
                RegisterComponents();
            }
            public override Tensor forward(Tensor x)
            {
        {{forward}}
            }
        {{more}}
        }
        """;

    [Theory]
    [InlineData("for (int i = 0; i < convs.Count; i++) x = functional.relu(bns[i].call(convs[i].call(x)));\n return x;")]
    [InlineData("for (int i = 0; i < convs.Count; i++) { var h = convs[i].call(x); x = functional.relu(bns[i].call(h)); }\n return x;")]
    public Task ModuleLists_paired_by_index_are_reported_on_the_layer_added(string forward)
        => Verifier.AnalyzerAsync(Lists(
            """
                        convs.Add({|#0:nn.Conv1d(16, 16, 3, padding: 1)|});
                        bns.Add(nn.BatchNorm1d(16));
            """,
            forward), MLP005());

    [Theory]
    // The bias is off, or an element's output is used another way too.
    [InlineData("convs.Add(nn.Conv1d(16, 16, 3, padding: 1, bias: false)); bns.Add(nn.BatchNorm1d(16));",
        "for (int i = 0; i < convs.Count; i++) x = bns[i].call(convs[i].call(x)); return x;", "")]
    [InlineData("convs.Add(nn.Conv1d(16, 16, 3, padding: 1)); bns.Add(nn.BatchNorm1d(16));",
        "for (int i = 0; i < convs.Count; i++) x = bns[i].call(convs[i].call(x)) + convs[i].call(x); return x;", "")]
    [InlineData("convs.Add(nn.Conv1d(16, 16, 3, padding: 1)); bns.Add(nn.BatchNorm1d(16));",
        "foreach (var conv in convs) x = conv.call(x); return bns[0].call(convs[0].call(x));", "")]
    // The lists may hold something else: a layer added elsewhere, a list handed on, an element replaced, a layer of another kind.
    [InlineData("convs.Add(nn.Conv1d(16, 16, 3, padding: 1)); bns.Add(nn.BatchNorm1d(16));",
        "for (int i = 0; i < convs.Count; i++) x = bns[i].call(convs[i].call(x)); return x;", "void Extend() => Fill(bns); static void Fill(ModuleList<Module<Tensor, Tensor>> l) => l.Add(nn.ReLU());")]
    [InlineData("convs.Add(nn.Conv1d(16, 16, 3, padding: 1)); bns.Add(nn.BatchNorm1d(16));",
        "for (int i = 0; i < convs.Count; i++) x = bns[i].call(convs[i].call(x)); return x;", "void Swap() => bns[0] = nn.Identity();")]
    [InlineData("convs.Add(nn.Conv1d(16, 16, 3, padding: 1)); bns.Add(nn.BatchNorm1d(16)); bns.Add(nn.LayerNorm(16));",
        "for (int i = 0; i < convs.Count; i++) x = bns[i].call(convs[i].call(x)); return x;", "")]
    [InlineData("convs.Add(nn.Conv1d(16, 16, 3, padding: 1)); bns.Add(nn.BatchNorm1d(16));",
        "for (int i = 0; i < convs.Count; i++) x = bns[i].call(convs[i].call(x)); return x;", "public ModuleList<Module<Tensor, Tensor>> Layers => convs;")]
    public Task ModuleLists_whose_elements_may_be_used_otherwise_or_are_not_all_known_are_not_reported(string fill, string forward, string more)
        => Verifier.AnalyzerAsync(Lists(fill, forward, more));

    private static string Wrapper(string body) => $$"""
        class ConvWrapper : Module<Tensor, Tensor>
        {
        {{body}}
        }
        """;

    [Fact]
    public Task A_wrapper_module_around_one_biased_convolution_is_reported_where_it_is_put_before_the_normalization()
        => Verifier.NoCodeFixAsync(Wrapper("""
                private readonly Conv2d conv;
                public ConvWrapper(long i, long o) : base("wrapper") { conv = Conv2d(i, o, 3, padding: 1); RegisterComponents(); }
                public override Tensor forward(Tensor x) => conv.call(x);
            """) + """

            class Models
            {
                Module<Tensor, Tensor> Build() => Sequential({|#0:new ConvWrapper(3, 16)|}, BatchNorm2d(16), ReLU(), new ConvWrapper(16, 16), ReLU());
            }
            """, Verifier.Diagnostic(Descriptors.MLP005_BiasBeforeNormalization).WithLocation(0)
                .WithArguments("Conv2d 'conv' (in 'ConvWrapper')", "BatchNorm2d", "bias"));

    [Theory]
    [InlineData("private readonly Conv2d conv = Conv2d(3, 16, 3, bias: false); public ConvWrapper() : base(\"w\") => RegisterComponents(); public override Tensor forward(Tensor x) => conv.call(x);")]
    [InlineData("private readonly Conv2d conv = Conv2d(3, 16, 3); public ConvWrapper() : base(\"w\") => RegisterComponents(); public override Tensor forward(Tensor x) => functional.relu(conv.call(x));")]
    [InlineData("private readonly Conv2d conv = Conv2d(3, 16, 3); public ConvWrapper() : base(\"w\") => RegisterComponents(); public override Tensor forward(Tensor x) => conv.call(x); public Tensor Raw(Tensor x) => conv.call(x);")]
    [InlineData("public readonly Conv2d conv = Conv2d(3, 16, 3); public ConvWrapper() : base(\"w\") => RegisterComponents(); public override Tensor forward(Tensor x) => conv.call(x);")]
    [InlineData("private readonly Conv2d conv = Conv2d(3, 16, 3); public ConvWrapper() : base(\"w\") { conv.register_forward_hook((m, i, o) => o * 2); RegisterComponents(); } public override Tensor forward(Tensor x) => conv.call(x);")]
    [InlineData("private readonly Module<Tensor, Tensor> conv = Sequential(Conv2d(3, 16, 3), ReLU()); public ConvWrapper() : base(\"w\") => RegisterComponents(); public override Tensor forward(Tensor x) => conv.call(x);")]
    public Task A_wrapper_that_changes_exposes_or_has_no_bias_on_its_layer_is_not_reported(string body)
        => Verifier.AnalyzerAsync(Wrapper(body) + """

            class Models
            {
                Module<Tensor, Tensor> Build() => Sequential(new ConvWrapper(), BatchNorm2d(16), ReLU());
            }
            """);

    [Fact]
    public Task A_computed_bias_flag_is_not_reported_and_a_constant_one_is()
        => Verifier.AnalyzerAsync("""
            class Models
            {
                const bool WithBias = true;
                Module<Tensor, Tensor> Build(bool useBatchNorm)
                    => Sequential(Conv2d(3, 16, 3, bias: !useBatchNorm), BatchNorm2d(16), {|#0:Conv2d(16, 16, 3, bias: WithBias)|}, BatchNorm2d(16));
            }
            """, MLP005());

    [Fact]
    public Task A_child_held_elsewhere_is_not_judged_from_the_sequential_alone()
        => Verifier.AnalyzerAsync("""
            class Models
            {
                Module<Tensor, Tensor> Build(out Module<Tensor, Tensor> features)
                {
                    var conv = Conv2d(3, 16, 3);
                    features = conv;
                    return Sequential(conv, BatchNorm2d(16));
                }
            }
            """);

    [Fact]
    public Task Children_added_to_a_list_by_consecutive_statements_are_neighbours_in_the_sequential_built_from_it()
        => Verifier.AnalyzerAsync("""
            class Vgg
            {
                Module<Tensor, Tensor> Build(long[] channels)
                {
                    var modules = new List<(string, Module<Tensor, Tensor>)>();
                    long inChannels = 3;
                    for (var i = 0; i < channels.Length; i++)
                    {
                        if (channels[i] == 0)
                        {
                            modules.Add(($"pool-{i}", MaxPool2d(kernel_size: 2, stride: 2)));
                        }
                        else
                        {
                            modules.Add(($"conv-{i}", {|#0:Conv2d(inChannels, channels[i], kernel_size: 3, padding: 1)|}));
                            modules.Add(($"bn-{i}", BatchNorm2d(channels[i])));
                            modules.Add(($"relu-{i}", ReLU(inplace: true)));
                            modules.Add(($"conv-{i}b", Conv2d(channels[i], channels[i], kernel_size: 3, padding: 1, bias: false)));
                            modules.Add(($"bn-{i}b", BatchNorm2d(channels[i])));
                            inChannels = channels[i];
                        }
                    }

                    modules.Add(("flatten", Flatten()));
                    modules.Add(("linear", Linear(512, 10)));
                    return Sequential(modules);
                }

                Module<Tensor, Tensor> Reordered()
                {
                    var modules = new List<Module<Tensor, Tensor>>();
                    modules.Add(Conv2d(3, 16, 3));
                    modules.Add(BatchNorm2d(16));
                    modules.Reverse();
                    return Sequential(modules);
                }
            }
            """, MLP005());

    // ---------------------------------------------------------------- a module's own forward

    [Theory]
    [InlineData("return bn.forward(conv.forward(x));")]
    [InlineData("return functional.relu(bn.call(conv.call(x)));")]
    [InlineData("var h = conv.call(x);\n        h = bn.call(h);\n        return act.call(h);")]
    [InlineData("Tensor h = conv.call(x);\n        var y = bn.call(h);\n        return y;")]
    public Task A_forward_that_normalizes_a_biased_layers_output_is_reported_on_the_layer(string forward)
        => Verifier.AnalyzerAsync(Block("        conv = {|#0:Conv2d(3, 16, 3)|};\n        bn = BatchNorm2d(16);\n        act = ReLU();", forward), MLP005());

    [Fact]
    public Task Field_initializers_and_typed_fields_are_read_and_the_message_names_the_fields()
        => Verifier.AnalyzerAsync("""
            class Block : Module<Tensor, Tensor>
            {
                private readonly Conv2d conv1 = {|#0:Conv2d(3, 16, 3, padding: 1)|};
                private readonly BatchNorm2d bn1 = BatchNorm2d(16);
                private readonly Linear fc = {|#1:Linear(16, 8)|};
                private readonly BatchNorm1d bn2 = BatchNorm1d(8);
                public Block() : base("block") { RegisterComponents(); }
                public override Tensor forward(Tensor x)
                {
                    var h = functional.relu(bn1.call(conv1.call(x)));
                    h = h.mean(new long[] { 2, 3 });
                    return bn2.call(fc.call(h));
                }
            }
            """,
            Verifier.Diagnostic(Descriptors.MLP005_BiasBeforeNormalization).WithLocation(0).WithArguments("Conv2d 'conv1'", "BatchNorm2d 'bn1'", "bias"),
            Verifier.Diagnostic(Descriptors.MLP005_BiasBeforeNormalization).WithLocation(1).WithArguments("Linear 'fc'", "BatchNorm1d 'bn2'", "hasBias"));

    [Fact]
    public Task A_layer_used_twice_is_reported_once()
        => Verifier.AnalyzerAsync(
            Block("        conv = {|#0:Conv2d(16, 16, 3, padding: 1)|};\n        bn = BatchNorm2d(16);\n        act = ReLU();",
                  "var h = bn.call(conv.call(x));\n        return bn.call(conv.call(h));"),
            MLP005());

    [Theory]
    [InlineData("return bn.call(act.call(conv.call(x)));")] // activation between
    [InlineData("return bn.call(conv.call(x) + x);")] // residual addition
    [InlineData("return bn.call(torch.cat(new[] { conv.call(x), x }, 1));")] // concatenation
    [InlineData("var h = conv.call(x);\n        var y = bn.call(h);\n        return y + h;")] // also used unnormalized
    [InlineData("var h = conv.call(x);\n        return bn.call(h.view(-1, 16, 4, 4));")] // reshaped between
    [InlineData("return conv.call(act.call(bn.call(x)));")] // pre-activation: normalization first
    [InlineData("var h = flag ? conv.call(x) : conv2.call(x);\n        return bn.call(h);")] // not one layer on every path
    [InlineData("Func<Tensor> later = () => conv.call(x);\n        return bn.call(conv.call(x));")] // a lambda the rule does not follow
    public Task A_layer_output_used_any_other_way_is_not_reported(string forward)
        => Verifier.AnalyzerAsync(Block("        conv = Conv2d(16, 16, 3);\n        conv2 = Conv2d(16, 16, 3);\n        bn = BatchNorm2d(16);\n        act = ReLU();", forward));

    [Fact]
    public Task A_layer_whose_output_another_member_uses_unnormalized_is_not_reported()
        => Verifier.AnalyzerAsync(Block(
            "        conv = Conv2d(3, 16, 3);\n        bn = BatchNorm2d(16);\n        act = ReLU();",
            "return bn.call(conv.call(x));",
            more: "    public Tensor Features(Tensor x) => conv.call(x);"));

    [Theory]
    [InlineData("conv = Conv2d(3, 16, 3, bias: false);")]
    [InlineData("conv = Conv2d(3, 16, 3, bias: useBias);")]
    [InlineData("conv = flag ? Conv2d(3, 16, 3) : Conv2d(3, 16, 5);")]
    [InlineData("conv = Conv2d(3, 16, 3);\n        bn = GroupNorm(4, 16);")]
    [InlineData("conv = Conv2d(3, 16, 3);\n        bn = LayerNorm(16);")]
    public Task No_bias_an_unknown_layer_or_a_normalization_that_keeps_the_bias_is_not_reported(string constructor)
        => Verifier.AnalyzerAsync(Block($"        bn = BatchNorm2d(16);\n        {constructor}\n        act = ReLU();", "return bn.call(conv.call(x));"));

    [Fact]
    public Task A_forward_hook_on_the_layer_is_not_reported()
        => Verifier.AnalyzerAsync(Block(
            "        conv = Conv2d(3, 16, 3);\n        bn = BatchNorm2d(16);\n        act = ReLU();\n        conv.register_forward_hook((m, i, o) => o * 2);",
            "return bn.call(conv.call(x));"));

    // ---------------------------------------------------------------- doppelgangers, no TorchSharp, broken code

    [Fact]
    public Task A_users_own_layers_with_the_same_names_are_not_reported()
        => Verifier.AnalyzerAsync("""
            namespace Mine
            {
                class Conv2d : Module<Tensor, Tensor> { public Conv2d(long i, long o, long k, bool bias = true) : base("c") { } public override Tensor forward(Tensor x) => x; }
                class BatchNorm2d : Module<Tensor, Tensor> { public BatchNorm2d(long c) : base("b") { } public override Tensor forward(Tensor x) => x; }
                class Models
                {
                    Module<Tensor, Tensor> Build() => Sequential(new Conv2d(3, 16, 3), new BatchNorm2d(16));
                    Module<Tensor, Tensor> Mixed() => Sequential(TorchSharp.torch.nn.Conv2d(3, 16, 3), new BatchNorm2d(16));
                }
            }
            """);

    [Fact]
    public Task Code_without_TorchSharp_is_not_analysed()
        => Verifier.AnalyzerWithoutTorchSharpAsync("""
            class Conv2d { }
            class BatchNorm2d { }
            class Models
            {
                static object Sequential(params object[] children) => children;
                object Build() => Sequential(new Conv2d(), new BatchNorm2d());
            }
            """);

    // ---------------------------------------------------------------- the fix

    [Theory]
    [InlineData("Conv2d(3, 16, 3)", "Conv2d(3, 16, 3, bias: false)")]
    [InlineData("Conv2d(3, 16, 3, padding: 1)", "Conv2d(3, 16, 3, padding: 1, bias: false)")]
    [InlineData("Conv2d(3, 16, 3, bias: true, padding: 1)", "Conv2d(3, 16, 3, bias: false, padding: 1)")]
    [InlineData("Linear(10, 16)", "Linear(10, 16, hasBias: false)")]
    [InlineData("Linear(10, 16, true)", "Linear(10, 16, false)")]
    public Task The_fix_turns_the_bias_off_keeping_every_other_argument(string before, string after)
        => Verifier.CodeFixAsync(
            Sequential("{|#0:" + before + "|}, BatchNorm2d(16)".Replace("BatchNorm2d", before.StartsWith("Linear") ? "BatchNorm1d" : "BatchNorm2d")),
            Sequential(after + ", BatchNorm2d(16)".Replace("BatchNorm2d", before.StartsWith("Linear") ? "BatchNorm1d" : "BatchNorm2d")),
            MLP005());

    [Fact]
    public Task Fix_all_turns_off_every_cancelled_bias_in_the_file()
    {
        var test = Verifier.Create();
        test.TestCode = Verifiers.TorchSharpSources.Usings + """
            class Models
            {
                Module<Tensor, Tensor> Stem() => Sequential({|#0:Conv2d(3, 64, 7, stride: 2)|}, BatchNorm2d(64), ReLU());
                Module<Tensor, Tensor> Head() => Sequential({|#1:Linear(64, 32)|}, BatchNorm1d(32), ReLU(), Linear(32, 10));
            }
            class Block : Module<Tensor, Tensor>
            {
                private readonly Conv2d conv = {|#2:Conv2d(64, 64, 3, padding: 1)|};
                private readonly BatchNorm2d bn = BatchNorm2d(64);
                public Block() : base("block") { RegisterComponents(); }
                public override Tensor forward(Tensor x) => functional.relu(bn.call(conv.call(x)) + x);
            }
            """;
        test.FixedCode = Verifiers.TorchSharpSources.Usings + """
            class Models
            {
                Module<Tensor, Tensor> Stem() => Sequential(Conv2d(3, 64, 7, stride: 2, bias: false), BatchNorm2d(64), ReLU());
                Module<Tensor, Tensor> Head() => Sequential(Linear(64, 32, hasBias: false), BatchNorm1d(32), ReLU(), Linear(32, 10));
            }
            class Block : Module<Tensor, Tensor>
            {
                private readonly Conv2d conv = Conv2d(64, 64, 3, padding: 1, bias: false);
                private readonly BatchNorm2d bn = BatchNorm2d(64);
                public Block() : base("block") { RegisterComponents(); }
                public override Tensor forward(Tensor x) => functional.relu(bn.call(conv.call(x)) + x);
            }
            """;
        test.ExpectedDiagnostics.AddRange(new[] { MLP005(0), MLP005(1), MLP005(2) });
        test.NumberOfFixAllIterations = 1;
        return test.RunAsync();
    }
}
