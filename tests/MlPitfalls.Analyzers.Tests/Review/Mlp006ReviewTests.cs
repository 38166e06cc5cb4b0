using System.Collections.Immutable;
using System.Linq;
using System.Threading.Tasks;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.Diagnostics;
using Microsoft.CodeAnalysis.Testing;
using MlPitfalls.Analyzers.Architecture;
using MlPitfalls.Analyzers.Tests.AllRules;
using MlPitfalls.Analyzers.Tests.Verifiers;
using Xunit;
using Verifier = MlPitfalls.Analyzers.Tests.Verifiers.Verify<
    MlPitfalls.Analyzers.Architecture.OutputLayerWithoutBiasAnalyzer,
    MlPitfalls.CodeFixes.Architecture.RestoreBiasCodeFix>;

namespace MlPitfalls.Analyzers.Tests.Review;

/// <summary>
/// An independent review of MLP006 (the output layer has no bias). Each test states the correct behaviour; a failing
/// one demonstrates a defect. R* robustness, P* false positives, N* false negatives, C* code fix, M* messages,
/// OK* behaviour confirmed correct.
/// </summary>
public class Mlp006ReviewTests
{
    private static DiagnosticResult MLP006(int marker = 0) => Verifier.DiagnosticAnyMessage(Descriptors.MLP006_OutputLayerWithoutBias).WithLocation(marker);

    // ================================================================ R: analyzer exceptions

    private static async Task<ImmutableArray<Diagnostic>> RunOnlyMlp006Async(LanguageVersion version, bool addUsings, params string[] sources)
    {
        var compilation = AllAnalyzers.Compile(version, addUsings, sources);
        var options = new CompilationWithAnalyzersOptions(
            new AnalyzerOptions(ImmutableArray<AdditionalText>.Empty), onAnalyzerException: null, concurrentAnalysis: true, logAnalyzerExecutionTime: false);
        return await compilation.WithAnalyzers(ImmutableArray.Create<DiagnosticAnalyzer>(new OutputLayerWithoutBiasAnalyzer()), options)
            .GetAnalyzerDiagnosticsAsync().ConfigureAwait(false);
    }

    private const string OddCode = """
        partial class Part : Module<Tensor, Tensor>
        {
            private readonly Linear head = nn.Linear(8, 2, hasBias: false);
            public Part() : base("p") { RegisterComponents(); }
        }
        partial class Part
        {
            public override Tensor forward(Tensor x) => head.call(x);
        }
        class Gen<T> : Module<Tensor, Tensor> where T : struct
        {
            private readonly Module<Tensor, Tensor> head = nn.Linear(8, 2, false);
            public Gen() : base("g") { RegisterComponents(); }
            public override Tensor forward(Tensor x) => head.call(x);
            public Tensor Loss(Tensor x, Tensor y) => functional.cross_entropy(forward(x), y);
        }
        class Prim(long classes) : Module<Tensor, Tensor>("prim")
        {
            private readonly Linear head = nn.Linear(8, classes, hasBias: false);
            public override Tensor forward(Tensor x) => head.call(x);
            public Tensor Loss(Tensor x, Tensor y) => functional.cross_entropy(this.call(x), y);
        }
        record Cfg(Module<Tensor, Tensor> Model)
        {
            public Tensor Loss(Tensor x, Tensor y) => nn.CrossEntropyLoss().call(Model.call(x), y);
            public Tensor Own(Tensor x, Tensor y) => functional.cross_entropy(nn.Sequential(nn.Linear(8, 2, hasBias: false)).call(x), y);
        }
        record struct RS(int N)
        {
            public Tensor Loss(Tensor x, Tensor y) => functional.binary_cross_entropy_with_logits(nn.Conv1d(3, 1, 1, bias: false).call(x), y);
        }
        class Trainer
        {
            static Tensor X = torch.zeros(1), Y = torch.zeros(1);
            static Tensor FieldLoss = functional.cross_entropy(nn.Linear(8, 2, hasBias: false).call(X), Y);
            Tensor Lambda(Tensor x, Tensor y)
            {
                Func<Tensor> closure = () => functional.cross_entropy(nn.Sequential(nn.ReLU(), nn.Linear(8, 2, hasBias: false)).call(x), y);
                Tensor Local() => functional.cross_entropy(new Part().call(x), y);
                Func<Tensor, Tensor> f = null;
                f = t => f(t);
                return closure() + Local() + functional.cross_entropy(f(nn.Linear(8, 2, hasBias: false).call(x)), y)
                     + functional.cross_entropy(new Gen<int>().call(x), y) + functional.cross_entropy(new Prim(3).call(x), y);
            }
            Tensor Broken(Tensor x, Tensor y)
            {
                var a = functional.cross_entropy(nn.Linear(8, 2, hasBias: fals).call(x), y);
                var b = functional.cross_entropy(nn.Linear(8, hasBias: false).call(x), y);
                var c = functional.cross_entropy(nn.Sequential(nn.Linear(8, 2), , nn.Linear(2, 2, hasBias: false)).call(x), y);
                var d = functional.cross_entropy(Unknown.Linear(8, 2, hasBias: false).call(x), y);
                var e = functional.cross_entropy(nn.Linear(8, 2, hasBias: false, hasBias: false).call(x), y);
                var f = functional.cross_entropy(nn.Linear(8, 2, bias: false).call(x), y);
                var g = functional.cross_entropy(nn.Sequential(("a", nn.Linear(8, 2, hasBias: false)), ("b")).call(x), y);
                var h = functional.cross_entropy(nn.Sequential(new Missing(), nn.Linear(8, 2, hasBias: false)).call(x), y);
                var i = functional.cross_entropy(nn.Sequential(nn.LayerNorm(8), nn.Linear(8, 2, hasBias: false), x).call(x), y);
                var j = functional.cross_entropy(nn.Sequential(null, nn.Linear(8, 2, hasBias: false)).call(x), y);
                var k = functional.cross_entropy(nn.Sequential(("a", null), ("b", nn.Linear(8, 2, hasBias: false))).call(x), y);
                var l = functional.cross_entropy(nn.Sequential(default(Module<Tensor, Tensor>)!, nn.Linear(8, 2, hasBias: default)).call(x), y);
                var m = functional.cross_entropy(nn.Sequential(new Module<Tensor, Tensor>[] { nn.LayerNorm(8), nn.Linear(8, 2, hasBias: false) }).call(x), y);
                var n = functional.cross_entropy(nn.Sequential(x is null ? nn.LayerNorm(8) : nn.ReLU(), nn.Linear(8, 2, hasBias: false)).call(x), y);
                var o = functional.cross_entropy(nn.Sequential(nn.Linear(8, 2, hasBias: false)).to(x.device).call(x), y);
                return a + b + c + d + e + f + g + h + i + j + k + l + m + n + o;
            }
        }
        """;

    private const string TopLevel = """
        using System;
        using TorchSharp;
        using static TorchSharp.torch;
        using static TorchSharp.torch.nn;
        var x = torch.zeros(4, 8);
        var y = torch.zeros(4, ScalarType.Int64);
        var model = nn.Sequential(nn.Linear(8, 4), nn.ReLU(), nn.Linear(4, 2, hasBias: false));
        var loss = functional.cross_entropy(model.call(x), y);
        Tensor Local() => functional.cross_entropy(nn.Linear(8, 2, hasBias: false).call(x), y);
        class Net : Module<Tensor, Tensor>
        {
            private readonly Linear head = nn.Linear(8, 2, hasBias: false);
            public Net() : base("n") { RegisterComponents(); }
            public override Tensor forward(Tensor x) => head.call(x);
        }
        """;

    [Fact]
    public async Task R01_odd_and_broken_code_raises_no_analyzer_exception()
    {
        foreach (var version in new[] { LanguageVersion.CSharp7_3, LanguageVersion.CSharp9, LanguageVersion.CSharp12, LanguageVersion.Latest })
        {
            var diagnostics = await RunOnlyMlp006Async(version, addUsings: true, OddCode);
            Assert.DoesNotContain(diagnostics, d => d.Id == "AD0001");
        }
    }

    [Fact]
    public async Task R02_top_level_statements_raise_no_analyzer_exception()
    {
        var diagnostics = await RunOnlyMlp006Async(LanguageVersion.Latest, addUsings: false, TopLevel);
        Assert.DoesNotContain(diagnostics, d => d.Id == "AD0001");
    }

    [Fact]
    public async Task R03_odd_code_cut_off_anywhere_raises_no_analyzer_exception()
    {
        foreach (var source in new[] { OddCode, TopLevel })
        {
            for (var cut = 0; cut < source.Length; cut += 17)
            {
                var truncated = source.Substring(0, cut);
                var withHole = source.Remove(cut, System.Math.Min(5, source.Length - cut));
                foreach (var text in new[] { truncated, withHole })
                {
                    var diagnostics = await RunOnlyMlp006Async(LanguageVersion.Latest, addUsings: source == OddCode, text);
                    Assert.False(diagnostics.Any(d => d.Id == "AD0001"), $"AD0001 at cut {cut}: {string.Join("; ", diagnostics.Where(d => d.Id == "AD0001"))}");
                }
            }
        }
    }

    [Fact]
    public async Task R04_two_files_with_the_model_in_one_and_broken_trainer_in_the_other_raise_no_analyzer_exception()
    {
        var model = """
            class Classifier : Module<Tensor, Tensor>
            {
                private readonly Linear head = nn.Linear(8, 2, hasBias: false);
                public Classifier() : base("c") { RegisterComponents(); }
                public override Tensor forward(Tensor x) => head.call(x);
            }
            """;
        var trainer = """
            class Trainer
            {
                void Train(Classifier m, Tensor x, Tensor y)
                {
                    var loss = functional.cross_entropy(m.call(x), y
            """;
        var diagnostics = await RunOnlyMlp006Async(LanguageVersion.Latest, addUsings: true, model, trainer);
        Assert.DoesNotContain(diagnostics, d => d.Id == "AD0001");
    }

    [Fact]
    public Task OK01_without_TorchSharp_a_class_named_nn_is_not_analysed()
        => Verifier.AnalyzerWithoutTorchSharpAsync("""
            static class nn { public static Lin Linear(int i, int o, bool hasBias = true) => new Lin(); }
            class Lin { public object call(object x) => x; }
            static class functional { public static object cross_entropy(object a, object b) => a; }
            class Trainer
            {
                object Train(object x, object y) => functional.cross_entropy(nn.Linear(4, 2, hasBias: false).call(x), y);
            }
            """);

    // ================================================================ P: false positives

    [Fact]
    public Task P01_a_partial_class_whose_other_part_holds_the_normalization_is_not_reported()
    {
        // The rule says "a class whose text names any normalization is not judged", but reads only the part that
        // creates the head; the LayerNorm right before the head is in the other part of the same class.
        var test = Verifier.Create();
        test.TestState.Sources.Add(("Classifier.Layers.cs", Verifier.Usings + """
            partial class Classifier : Module<Tensor, Tensor>
            {
                private readonly Linear head = nn.Linear(128, 10, hasBias: false);
            }
            """));
        test.TestState.Sources.Add(("Classifier.cs", Verifier.Usings + """
            partial class Classifier
            {
                private readonly Linear hidden = nn.Linear(784, 128);
                private readonly LayerNorm norm = nn.LayerNorm(128);
                public Classifier() : base("classifier") => RegisterComponents();
                public override Tensor forward(Tensor x) => head.call(norm.call(hidden.call(x)));
            }

            class Trainer
            {
                Tensor Train(Classifier model, Tensor x, Tensor y) => functional.cross_entropy(model.call(x), y);
            }
            """));
        return test.RunAsync();
    }

    [Fact]
    public Task P02_a_head_module_of_its_own_after_the_parents_normalization_is_not_reported()
    {
        // The usual "backbone + norm + classifier head module" layout (ViT, ConvNeXt): the LayerNorm is right before the
        // bias-free projection, but in the parent's forward, and the head's own class never names a normalization.
        return Verifier.AnalyzerAsync("""
            sealed class ClassifierHead : Module<Tensor, Tensor>
            {
                private readonly Linear proj;
                public ClassifierHead(long dim, long classes) : base("head")
                {
                    proj = nn.Linear(dim, classes, hasBias: false);
                    RegisterComponents();
                }
                public override Tensor forward(Tensor x) => proj.call(x);
            }

            sealed class Model : Module<Tensor, Tensor>
            {
                private readonly Linear backbone = nn.Linear(784, 128);
                private readonly LayerNorm norm = nn.LayerNorm(128);
                private readonly ClassifierHead head = new ClassifierHead(128, 10);
                public Model() : base("model") => RegisterComponents();
                public override Tensor forward(Tensor x) => head.call(norm.call(backbone.call(x)));
            }

            class Trainer
            {
                Tensor Train(Model model, Tensor x, Tensor y) => functional.cross_entropy(model.call(x), y);
            }
            """);
    }

    [Fact]
    public Task P03_a_functional_layer_norm_right_before_the_head_is_not_reported()
        => Verifier.AnalyzerAsync("""
            sealed class Classifier : Module<Tensor, Tensor>
            {
                private readonly Linear hidden = nn.Linear(784, 128);
                private readonly Linear head = nn.Linear(128, 10, hasBias: false);
                private readonly Parameter gamma = nn.Parameter(torch.ones(128)), beta = nn.Parameter(torch.zeros(128));
                public Classifier() : base("classifier") => RegisterComponents();
                public override Tensor forward(Tensor x)
                    => head.call(functional.layer_norm(hidden.call(x), new long[] { 128 }, gamma, beta));
            }

            class Trainer
            {
                Tensor Train(Classifier model, Tensor x, Tensor y) => functional.cross_entropy(model.call(x), y);
            }
            """);

    [Fact]
    public Task P04_a_cosine_classifier_on_normalized_features_is_not_reported()
        // A normalized-feature (cosine / prototype) classifier is bias-free by design: a bias would break the
        // "logit = similarity to the class prototype" meaning.
        => Verifier.AnalyzerAsync("""
            sealed class CosineClassifier : Module<Tensor, Tensor>
            {
                private readonly Linear backbone = nn.Linear(784, 128);
                private readonly Linear prototypes = nn.Linear(128, 10, hasBias: false);
                public CosineClassifier() : base("cosine") => RegisterComponents();
                public override Tensor forward(Tensor x) => prototypes.call(functional.normalize(backbone.call(x), dim: 1));
            }

            class Trainer
            {
                Tensor Train(CosineClassifier model, Tensor x, Tensor y) => functional.cross_entropy(model.call(x), y);
            }
            """);

    [Fact]
    public Task P05_a_nested_Sequential_ending_in_a_normalization_before_the_head_is_not_reported()
        // The rule counts a user module before the head as a possible normalization, but not a nested Sequential
        // (a TorchSharp type whose name has no "Norm"), even when its last child is a LayerNorm.
        => Verifier.AnalyzerAsync("""
            class Trainer
            {
                Tensor Train(Tensor x, Tensor y)
                {
                    var model = nn.Sequential(
                        nn.Sequential(nn.Linear(784, 128), nn.ReLU(), nn.LayerNorm(128)),
                        nn.Linear(128, 10, hasBias: false));
                    return functional.cross_entropy(model.call(x), y);
                }
            }
            """);

    [Fact]
    public Task P06_a_normalization_then_dropout_before_the_head_is_not_reported()
        // LayerNorm -> Dropout -> Linear: the normalization's shift still reaches every output through the weights
        // (dropout is the identity in eval); the rule only looks at the child right before the head.
        => Verifier.AnalyzerAsync("""
            class Trainer
            {
                Tensor Train(Tensor x, Tensor y)
                {
                    var model = nn.Sequential(nn.Linear(784, 128), nn.LayerNorm(128), nn.Dropout(0.1), nn.Linear(128, 10, hasBias: false));
                    return functional.cross_entropy(model.call(x), y);
                }
            }
            """);

    [Fact]
    public Task P07_a_language_model_head_in_its_own_class_tied_to_the_parents_embedding_is_not_reported()
        => Verifier.AnalyzerAsync("""
            sealed class LmHead : Module<Tensor, Tensor>
            {
                public readonly Linear proj;
                public LmHead(long dim, long vocab) : base("lm_head")
                {
                    proj = nn.Linear(dim, vocab, hasBias: false);
                    RegisterComponents();
                }
                public override Tensor forward(Tensor x) => proj.call(x);
            }

            sealed class TinyGpt : Module<Tensor, Tensor>
            {
                private readonly Embedding wte = nn.Embedding(1000, 64);
                private readonly LmHead head = new LmHead(64, 1000);
                public TinyGpt() : base("gpt")
                {
                    head.proj.weight = wte.weight; // tied weights
                    RegisterComponents();
                }
                public override Tensor forward(Tensor x) => head.call(wte.call(x));
            }

            class Trainer
            {
                Tensor Train(TinyGpt model, Tensor x, Tensor y) => functional.cross_entropy(model.call(x).view(-1, 1000), y.view(-1));
            }
            """);

    [Fact]
    public Task P08_a_ModuleDict_of_task_heads_is_not_reported()
        => Verifier.AnalyzerAsync("""
            sealed class MultiTask : Module<Tensor, Tensor>
            {
                private readonly ModuleDict<Module<Tensor, Tensor>> heads = new ModuleDict<Module<Tensor, Tensor>>();
                public string Task = "a";
                public MultiTask() : base("mt")
                {
                    heads.Add("a", nn.Linear(128, 10, hasBias: false));
                    heads.Add("b", nn.Linear(128, 3, hasBias: false));
                    RegisterComponents();
                }
                public override Tensor forward(Tensor x) => heads[Task].call(x);
            }

            class Trainer
            {
                Tensor Train(MultiTask model, Tensor x, Tensor y) => functional.cross_entropy(model.call(x), y);
            }
            """);

    [Fact]
    public Task P09_a_factory_made_head_right_after_a_BatchNorm_in_a_Sequential_is_not_reported()
        // The head comes from a helper, so the "child right before it" check is skipped (the creation is not inside the
        // Sequential call) and the helper's class text, which has no "Norm", is read instead.
        => Verifier.AnalyzerAsync("""
            static class Layers
            {
                public static Linear Dense(long i, long o) => nn.Linear(i, o, hasBias: false);
            }

            class Trainer
            {
                Tensor Train(Tensor x, Tensor y)
                {
                    var model = nn.Sequential(nn.Linear(784, 128), nn.BatchNorm1d(128), Layers.Dense(128, 10));
                    return functional.cross_entropy(model.call(x), y);
                }
            }
            """);

    [Fact]
    public Task OK02_a_user_module_before_the_head_is_not_reported()
        => Verifier.AnalyzerAsync("""
            sealed class Backbone : Module<Tensor, Tensor>
            {
                private readonly Linear fc = nn.Linear(784, 128);
                public Backbone() : base("bb") => RegisterComponents();
                public override Tensor forward(Tensor x) => fc.call(x);
            }

            class Trainer
            {
                Tensor Train(Tensor x, Tensor y)
                {
                    var model = nn.Sequential(new Backbone(), nn.Linear(128, 10, hasBias: false));
                    return functional.cross_entropy(model.call(x), y);
                }
            }
            """);

    [Fact]
    public Task OK03_a_constant_flag_that_is_true_is_not_reported()
        => Verifier.AnalyzerAsync("""
            class Trainer
            {
                const bool UseBias = true;
                Tensor Train(Tensor x, Tensor y)
                {
                    var model = nn.Sequential(nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10, hasBias: UseBias));
                    return functional.cross_entropy(model.call(x), y);
                }
            }
            """);

    [Fact]
    public Task OK04_a_head_whose_output_is_scaled_or_masked_before_the_loss_is_not_reported()
        => Verifier.AnalyzerAsync("""
            sealed class Clip : Module<Tensor, Tensor>
            {
                private readonly Linear proj = nn.Linear(128, 64, hasBias: false);
                public Clip() : base("clip") => RegisterComponents();
                public override Tensor forward(Tensor x) => proj.call(x);
            }

            class Trainer
            {
                Tensor Train(Clip model, Tensor x, Tensor mask, Tensor y)
                {
                    var a = functional.cross_entropy(model.call(x) / 0.07, y);
                    var b = functional.cross_entropy(model.call(x).masked_fill(mask, -1e9), y);
                    var z = functional.normalize(model.call(x), dim: 1);
                    var c = functional.cross_entropy(z.matmul(z.T), y);
                    return a + b + c;
                }
            }
            """);

    [Fact]
    public Task OK05_a_local_LayerNorm_variable_before_the_head_is_not_reported()
        => Verifier.AnalyzerAsync("""
            class Trainer
            {
                Tensor Train(Tensor x, Tensor y)
                {
                    var norm = nn.LayerNorm(128);
                    var model = nn.Sequential(nn.Linear(784, 128), norm, nn.Linear(128, 10, hasBias: false));
                    return functional.cross_entropy(model.call(x), y);
                }
            }
            """);

    [Fact]
    public Task OK06_a_head_whose_output_is_shifted_in_place_before_the_loss_is_not_reported()
        => Verifier.AnalyzerAsync("""
            sealed class Classifier : Module<Tensor, Tensor>
            {
                private readonly Linear head = nn.Linear(128, 10, hasBias: false);
                private readonly Parameter prior = nn.Parameter(torch.zeros(10));
                public Classifier() : base("c") => RegisterComponents();
                public override Tensor forward(Tensor x)
                {
                    var logits = head.call(x);
                    logits.add_(prior);
                    return logits;
                }
            }

            class Trainer
            {
                Tensor Train(Classifier model, Tensor x, Tensor y)
                {
                    var o = model.call(x);
                    return functional.cross_entropy(o, y);
                }
            }
            """);

    [Fact]
    public Task OK07_an_array_built_Sequential_with_a_normalization_before_the_head_is_not_reported()
        => Verifier.AnalyzerAsync("""
            class Trainer
            {
                Tensor Train(Tensor x, Tensor y)
                {
                    var model = nn.Sequential(new Module<Tensor, Tensor>[] { nn.Linear(784, 128), nn.BatchNorm1d(128), nn.Linear(128, 10, hasBias: false) });
                    return functional.cross_entropy(model.call(x), y);
                }
            }
            """);

    [Theory]
    [InlineData(".to(x.device)", "functional.cross_entropy(model.call(x), y)")]
    [InlineData(".to(DeviceType.CPU)", "functional.cross_entropy(model.call(x), y)")]
    [InlineData("", "((Func<Tensor>)(() => functional.cross_entropy(model.call(x), y)))()")]
    [InlineData("", "Local(); Tensor Local() => nn.CrossEntropyLoss().call(model.call(x), y)")]
    public Task N02_a_moved_Sequential_and_a_loss_in_a_lambda_or_local_function_are_reported(string move, string loss)
        => Verifier.AnalyzerAsync($$"""
            class Trainer
            {
                Tensor Train(Tensor x, Tensor y)
                {
                    var model = nn.Sequential(nn.Linear(784, 128), nn.ReLU(), {|#0:nn.Linear(128, 10, hasBias: false)|}){{move}};
                    return {{loss}};
                }
            }
            """, MLP006());

    [Fact]
    public Task OK09_a_generic_module_and_a_primary_constructor_module_are_reported_at_the_loss_input()
        => Verifier.AnalyzerAsync("""
            sealed class Gen<T> : Module<Tensor, Tensor>
            {
                private readonly Linear head = nn.Linear(8, 2, hasBias: false);
                public Gen() : base("g") => RegisterComponents();
                public override Tensor forward(Tensor x) => head.call(x);
            }

            sealed class Prim(long classes) : Module<Tensor, Tensor>("prim")
            {
                private readonly Linear head = nn.Linear(8, classes, hasBias: false);
                public override Tensor forward(Tensor x) => head.call(x);
            }

            class Trainer
            {
                Tensor Train(Gen<int> g, Prim p, Tensor x, Tensor y)
                    => functional.cross_entropy({|#0:g.call(x)|}, y) + functional.binary_cross_entropy_with_logits({|#1:p.call(x)|}, y);
            }
            """, MLP006(0), MLP006(1));

    // ================================================================ N: false negatives (cheap ones)

    [Fact]
    public Task N01_the_rule_pages_own_Sequential_example_in_a_top_level_program_is_reported()
    {
        // The documented "Flagged" example, written as a console program (top-level statements, as TorchSharp samples
        // and notebooks often are): MayBeDeliberate returns true for any layer outside a type declaration.
        var test = new Verifier.Test(referenceTorchSharp: true, LanguageVersion.Latest)
        {
            TestCode = """
                using TorchSharp;
                using static TorchSharp.torch;
                using static TorchSharp.torch.nn;
                var x = torch.zeros(4, 784);
                var y = torch.zeros(new long[] { 4 }, ScalarType.Int64);
                var model = nn.Sequential(
                    nn.Linear(784, 128), nn.ReLU(),
                    {|#0:nn.Linear(128, 10, hasBias: false)|});
                var loss = functional.cross_entropy(model.call(x), y);
                """,
        };
        test.TestState.OutputKind = OutputKind.ConsoleApplication;
        test.ExpectedDiagnostics.Add(MLP006());
        return test.RunAsync();
    }

    // ================================================================ C: the code fix

    private static string Train(string model) => $$"""
        class Trainer
        {
            Tensor Train(Tensor x, Tensor y)
            {
                var model = {{model}};
                return functional.cross_entropy(model.call(x), y);
            }
        }
        """;

    [Fact]
    public Task C01_a_named_flag_before_a_positional_argument_is_not_removed_into_code_that_does_not_compile()
        // C# 7.2 non-trailing named argument: removing 'hasBias: false' makes the positional 'null' bind to hasBias.
        => Verifier.CodeFixAsync(
            Train("nn.Sequential(nn.Flatten(), {|#0:nn.Linear(784, 10, hasBias: false, null)|})"),
            Train("nn.Sequential(nn.Flatten(), nn.Linear(784, 10, hasBias: true, null))"),
            MLP006());

    [Fact]
    public Task C02_a_flag_on_its_own_line_before_a_closing_parenthesis_on_its_own_line()
        => Verifier.CodeFixAsync(
            """
            class Trainer
            {
                Tensor Train(Tensor x, Tensor y)
                {
                    var model = nn.Sequential(
                        nn.Linear(784, 128),
                        nn.ReLU(),
                        {|#0:nn.Linear(
                            128,
                            10,
                            hasBias: false // head
                        )|}
                    );
                    return functional.cross_entropy(model.call(x), y);
                }
            }
            """,
            """
            class Trainer
            {
                Tensor Train(Tensor x, Tensor y)
                {
                    var model = nn.Sequential(
                        nn.Linear(784, 128),
                        nn.ReLU(),
                        nn.Linear(
                            128,
                            10 // head
                        )
                    );
                    return functional.cross_entropy(model.call(x), y);
                }
            }
            """,
            MLP006());

    [Fact]
    public Task C03_a_named_flag_between_other_named_arguments_on_separate_lines_keeps_the_layout()
        => Verifier.CodeFixAsync(
            """
            class Trainer
            {
                Tensor Train(Tensor x, Tensor y)
                {
                    var model = nn.Sequential(nn.Flatten(), {|#0:nn.Linear(
                        inputSize: 784,
                        hasBias: false,
                        outputSize: 10)|});
                    return functional.cross_entropy(model.call(x), y);
                }
            }
            """,
            """
            class Trainer
            {
                Tensor Train(Tensor x, Tensor y)
                {
                    var model = nn.Sequential(nn.Flatten(), nn.Linear(
                        inputSize: 784,
                        outputSize: 10));
                    return functional.cross_entropy(model.call(x), y);
                }
            }
            """,
            MLP006());

    [Fact]
    public Task C04_a_trailing_comment_after_the_layer_stays()
        => Verifier.CodeFixAsync(
            """
            class Trainer
            {
                Tensor Train(Tensor x, Tensor y)
                {
                    var model = nn.Sequential(
                        nn.Linear(784, 128),
                        nn.ReLU(),
                        {|#0:nn.Linear(128, 10, hasBias: false)|} // head
                    );
                    return functional.cross_entropy(model.call(x), y);
                }
            }
            """,
            """
            class Trainer
            {
                Tensor Train(Tensor x, Tensor y)
                {
                    var model = nn.Sequential(
                        nn.Linear(784, 128),
                        nn.ReLU(),
                        nn.Linear(128, 10) // head
                    );
                    return functional.cross_entropy(model.call(x), y);
                }
            }
            """,
            MLP006());

    [Fact]
    public Task C05_a_positional_conv_flag_followed_by_named_arguments_is_removed()
        => Verifier.CodeFixAsync(
            Train("nn.Sequential(nn.Conv2d(3, 16, 3), nn.ReLU(), {|#0:nn.Conv2d(16, 10, 1, 1, 0, 1, PaddingModes.Zeros, 1, false, device: null)|}, nn.Flatten())"),
            Train("nn.Sequential(nn.Conv2d(3, 16, 3), nn.ReLU(), nn.Conv2d(16, 10, 1, 1, 0, 1, PaddingModes.Zeros, 1, device: null), nn.Flatten())"),
            MLP006());

    [Fact]
    public Task C06_fix_all_with_several_diagnostics_in_one_file()
        => Verifier.CodeFixAsync(
            """
            sealed class Classifier : Module<Tensor, Tensor>
            {
                private readonly Linear head = nn.Linear(128, 10, hasBias: false);
                public Classifier() : base("c") => RegisterComponents();
                public override Tensor forward(Tensor x) => head.call(x);
            }

            class Trainer
            {
                Tensor Train(Classifier m, Tensor x, Tensor y)
                {
                    var a = nn.Sequential(nn.Flatten(), {|#0:nn.Linear(784, 10, hasBias: false)|});
                    var b = nn.Sequential(nn.Flatten(), {|#1:nn.Conv1d(784, 10, 1, bias: false)|});
                    return functional.cross_entropy(a.call(x), y) + functional.cross_entropy(b.call(x), y) + functional.cross_entropy({|#2:m.call(x)|}, y);
                }
            }
            """,
            """
            sealed class Classifier : Module<Tensor, Tensor>
            {
                private readonly Linear head = nn.Linear(128, 10);
                public Classifier() : base("c") => RegisterComponents();
                public override Tensor forward(Tensor x) => head.call(x);
            }

            class Trainer
            {
                Tensor Train(Classifier m, Tensor x, Tensor y)
                {
                    var a = nn.Sequential(nn.Flatten(), nn.Linear(784, 10));
                    var b = nn.Sequential(nn.Flatten(), nn.Conv1d(784, 10, 1));
                    return functional.cross_entropy(a.call(x), y) + functional.cross_entropy(b.call(x), y) + functional.cross_entropy(m.call(x), y);
                }
            }
            """,
            MLP006(0), MLP006(1), MLP006(2));

    [Fact]
    public Task C07_fix_all_with_two_losses_naming_the_same_head_in_another_file()
    {
        var test = Verifier.Create();
        test.TestState.Sources.Add(("Model.cs", Verifier.Usings + """
            sealed class Classifier : Module<Tensor, Tensor>
            {
                private readonly Linear head = nn.Linear(128, 10, hasBias: false);
                public Classifier() : base("c") => RegisterComponents();
                public override Tensor forward(Tensor x) => head.call(x);
            }
            """));
        test.TestState.Sources.Add(("Train.cs", Verifier.Usings + """
            class Trainer
            {
                Tensor Train(Classifier m, Tensor x, Tensor y) => functional.cross_entropy({|#0:m.call(x)|}, y);
                Tensor Validate(Classifier m, Tensor x, Tensor y) => nn.CrossEntropyLoss().call({|#1:m.call(x)|}, y);
            }
            """));
        test.FixedState.Sources.Add(("Model.cs", Verifier.Usings + """
            sealed class Classifier : Module<Tensor, Tensor>
            {
                private readonly Linear head = nn.Linear(128, 10);
                public Classifier() : base("c") => RegisterComponents();
                public override Tensor forward(Tensor x) => head.call(x);
            }
            """));
        test.FixedState.Sources.Add(("Train.cs", Verifier.Usings + """
            class Trainer
            {
                Tensor Train(Classifier m, Tensor x, Tensor y) => functional.cross_entropy(m.call(x), y);
                Tensor Validate(Classifier m, Tensor x, Tensor y) => nn.CrossEntropyLoss().call(m.call(x), y);
            }
            """));
        test.ExpectedDiagnostics.Add(MLP006(0));
        test.ExpectedDiagnostics.Add(MLP006(1));
        return test.RunAsync();
    }

    [Fact]
    public Task C08_a_head_made_by_a_shared_factory_is_not_judged_so_no_fix_changes_the_hidden_layers()
    {
        // Dense() is the project's helper for every layer (bias-free because BatchNorm follows the hidden ones). A fix
        // would edit the factory's body and give every hidden layer a bias too (raising MLP005 on each); the rule does
        // not see the factory's call sites, so a factory-made head is not judged (documented limit).
        var source = """
            static class Layers
            {
                public static Linear Dense(long i, long o) => nn.Linear(i, o, hasBias: false);
            }

            class Trainer
            {
                Tensor Train(Tensor x, Tensor y)
                {
                    var model = nn.Sequential(
                        Layers.Dense(784, 256), nn.BatchNorm1d(256), nn.ReLU(),
                        Layers.Dense(256, 128), nn.BatchNorm1d(128), nn.ReLU(),
                        Layers.Dense(128, 10));
                    return functional.cross_entropy(model.call(x), y);
                }
            }
            """;
        return Verifier.AnalyzerAsync(source);
    }

    [Fact]
    public Task C09_a_head_whose_forward_may_return_either_of_two_bias_free_layers_gets_both_fixed()
    {
        // Both heads are created outside the member computing the loss, so both diagnostics go to the same loss input
        // location; the analyzer's "one report per location" then drops the second one, and the fix restores only the
        // first head (after which the rule is quiet about the other).
        var test = Verifier.Create();
        test.TestState.Sources.Add(Verifier.Usings + """
            sealed class TwoHeads : Module<Tensor, Tensor>
            {
                private readonly Linear a = nn.Linear(128, 10, hasBias: false), b = nn.Linear(128, 10, hasBias: false);
                public bool UseA;
                public TwoHeads() : base("two") => RegisterComponents();
                public override Tensor forward(Tensor x) => UseA ? a.call(x) : b.call(x);
            }

            class Trainer
            {
                Tensor Train(TwoHeads m, Tensor x, Tensor y) => functional.cross_entropy({|#0:m.call(x)|}, y);
            }
            """);
        test.FixedState.Sources.Add(Verifier.Usings + """
            sealed class TwoHeads : Module<Tensor, Tensor>
            {
                private readonly Linear a = nn.Linear(128, 10), b = nn.Linear(128, 10);
                public bool UseA;
                public TwoHeads() : base("two") => RegisterComponents();
                public override Tensor forward(Tensor x) => UseA ? a.call(x) : b.call(x);
            }

            class Trainer
            {
                Tensor Train(TwoHeads m, Tensor x, Tensor y) => functional.cross_entropy(m.call(x), y);
            }
            """);
        test.ExpectedDiagnostics.Add(MLP006(0));
        test.ExpectedDiagnostics.Add(MLP006(0));
        return test.RunAsync();
    }

    // ================================================================ M: messages

    [Fact]
    public void M01_the_message_does_not_name_a_following_normalization_as_the_exception()
    {
        // "remove 'hasBias: false' unless a normalization or bias follows it": a layer followed by a normalization is
        // not the output layer and never reported; the exception the rule makes is a normalization *before* it.
        var format = Descriptors.MLP006_OutputLayerWithoutBias.MessageFormat.ToString(System.Globalization.CultureInfo.InvariantCulture);
        Assert.DoesNotContain("normalization or bias follows it", format);
    }

    [Fact]
    public Task M03_a_head_made_by_a_factory_is_not_named_by_the_creation_inside_the_factory()
        // The message would name 'nn.Linear(i, o, hasBias: false)' in the factory, not the head 'Layers.Dense(128, 10)':
        // a factory-made head is not judged.
        => Verifier.AnalyzerAsync("""
            static class Layers
            {
                public static Linear Dense(long i, long o) => nn.Linear(i, o, hasBias: false);
            }

            class Trainer
            {
                Tensor Train(Tensor x, Tensor y)
                {
                    var model = nn.Sequential(Layers.Dense(784, 128), nn.ReLU(), Layers.Dense(128, 10));
                    return functional.cross_entropy(model.call(x), y);
                }
            }
            """);
}
