using System.Threading.Tasks;
using Microsoft.CodeAnalysis.Testing;
using Xunit;
using Verifier = MlPitfalls.Analyzers.Tests.Verifiers.Verify<
    MlPitfalls.Analyzers.Architecture.OutputLayerWithoutBiasAnalyzer,
    MlPitfalls.CodeFixes.Architecture.RestoreBiasCodeFix>;

namespace MlPitfalls.Analyzers.Tests.Architecture;

public class OutputLayerWithoutBiasTests
{
    private static DiagnosticResult MLP006(int marker = 0) => Verifier.DiagnosticAnyMessage(Descriptors.MLP006_OutputLayerWithoutBias).WithLocation(marker);

    /// <summary>A training method that builds <paramref name="model"/> and feeds its output to <paramref name="loss"/>.</summary>
    private static string Train(string model, string loss = "functional.cross_entropy(model.call(x), y)") => $$"""
        class Trainer
        {
            void Train(Tensor x, Tensor y)
            {
                var model = {{model}};
                var loss = {{loss}};
            }
        }
        """;

    /// <summary>A classifier module with the given fields (created in the constructor), trained by another class.</summary>
    private static string Classifier(string fields, string constructor, string forward, string loss = "functional.cross_entropy({|#0:output|}, y)") => $$"""
        class Classifier : Module<Tensor, Tensor>
        {
            {{fields}}
            public Classifier() : base("classifier")
            {
        {{constructor}}
                RegisterComponents();
            }
            public override Tensor forward(Tensor x)
            {
        {{forward}}
            }
        }

        class Trainer
        {
            void Train(Classifier model, Tensor x, Tensor y)
            {
                var output = model.call(x);
                var loss = {{loss}};
            }
        }
        """;

    // ---------------------------------------------------------------- the output layer of a Sequential

    [Theory]
    [InlineData("nn.Sequential(nn.Linear(784, 128), nn.ReLU(), {|#0:nn.Linear(128, 10, hasBias: false)|})")]
    [InlineData("nn.Sequential(nn.Linear(784, 128), nn.ReLU(), {|#0:nn.Linear(128, 10, false)|})")]
    [InlineData("nn.Sequential(nn.Flatten(), {|#0:nn.Linear(784, 10, hasBias: false)|})")]
    [InlineData("nn.Sequential({|#0:nn.Linear(784, 10, hasBias: false)|})")]
    [InlineData("nn.Sequential(nn.Conv2d(3, 16, 3), nn.ReLU(), {|#0:nn.Conv2d(16, 10, 1, bias: false)|}, nn.Flatten())")]
    [InlineData("nn.Sequential((\"hidden\", nn.Linear(784, 128)), (\"act\", nn.ReLU()), (\"head\", {|#0:nn.Linear(128, 10, hasBias: false)|}))")]
    public Task A_bias_free_last_layer_whose_output_feeds_cross_entropy_is_reported(string model)
        => Verifier.AnalyzerAsync(Train(model), MLP006());

    [Fact]
    public Task The_message_names_the_layer_the_loss_and_the_argument()
        => Verifier.AnalyzerAsync(
            Train("nn.Sequential(nn.Linear(784, 128), nn.ReLU(), {|#0:nn.Linear(128, 10, hasBias: false)|})"),
            Verifier.Diagnostic(Descriptors.MLP006_OutputLayerWithoutBias).WithLocation(0)
                .WithArguments("'nn.Linear(128, 10, hasBias: false)'", "cross_entropy", "hasBias"));

    [Theory]
    [InlineData("nn.CrossEntropyLoss().call(model.call(x), y)")]
    [InlineData("nn.BCEWithLogitsLoss().call(model.call(x), y)")]
    [InlineData("functional.binary_cross_entropy_with_logits(model.call(x).squeeze(1), y)")]
    [InlineData("functional.cross_entropy(model.call(x).view(-1, 10), y)")]
    public Task Every_logits_loss_spelling_is_reported(string loss)
        => Verifier.AnalyzerAsync(Train("nn.Sequential(nn.Linear(784, 128), nn.ReLU(), {|#0:nn.Linear(128, 10, hasBias: false)|})", loss), MLP006());

    [Theory]
    // A bias, by default or given.
    [InlineData("nn.Sequential(nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10))", "functional.cross_entropy(model.call(x), y)")]
    [InlineData("nn.Sequential(nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10, hasBias: true))", "functional.cross_entropy(model.call(x), y)")]
    // The bias-free layer is not the last: something follows it.
    [InlineData("nn.Sequential(nn.Linear(784, 128, hasBias: false), nn.ReLU(), nn.Linear(128, 10))", "functional.cross_entropy(model.call(x), y)")]
    [InlineData("nn.Sequential(nn.Linear(784, 10, hasBias: false), nn.BatchNorm1d(10))", "functional.cross_entropy(model.call(x), y)")]
    // A normalization right before the head: its shift offsets every output.
    [InlineData("nn.Sequential(nn.Linear(784, 128), nn.LayerNorm(128), nn.Linear(128, 10, hasBias: false))", "functional.cross_entropy(model.call(x), y)")]
    [InlineData("nn.Sequential(nn.Linear(784, 128), nn.BatchNorm1d(128), nn.Linear(128, 10, hasBias: false))", "functional.cross_entropy(model.call(x), y)")]
    // Something else is added to the output: arithmetic ends the logits.
    [InlineData("nn.Sequential(nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10, hasBias: false))", "functional.cross_entropy(model.call(x) + 1, y)")]
    // A loss that does not read logits (MLP003's business), or a regression loss.
    [InlineData("nn.Sequential(nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10, hasBias: false))", "functional.nll_loss(functional.log_softmax(model.call(x), 1), y)")]
    [InlineData("nn.Sequential(nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 1, hasBias: false))", "functional.mse_loss(model.call(x), y)")]
    public Task A_bias_a_following_layer_a_normalization_before_or_another_loss_is_not_reported(string model, string loss)
        => Verifier.AnalyzerAsync(Train(model, loss));

    [Fact]
    public Task A_computed_bias_flag_is_not_reported()
        => Verifier.AnalyzerAsync("""
            class Trainer
            {
                void Train(Tensor x, Tensor y, bool useBias)
                {
                    var model = nn.Sequential(nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10, hasBias: useBias));
                    var loss = functional.cross_entropy(model.call(x), y);
                }
            }
            """);

    [Fact]
    public Task A_constant_flag_is_read()
        => Verifier.AnalyzerAsync("""
            class Trainer
            {
                const bool HeadBias = false;
                void Train(Tensor x, Tensor y)
                {
                    var model = nn.Sequential(nn.Linear(784, 128), nn.ReLU(), {|#0:nn.Linear(128, 10, hasBias: HeadBias)|});
                    var loss = functional.cross_entropy(model.call(x), y);
                }
            }
            """, MLP006());

    [Fact]
    public Task A_model_that_may_end_in_another_layer_is_not_reported()
        => Verifier.AnalyzerAsync("""
            class Trainer
            {
                void Train(Tensor x, Tensor y, bool flag)
                {
                    var model = flag
                        ? nn.Sequential(nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10, hasBias: false))
                        : nn.Sequential(nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10));
                    var loss = functional.cross_entropy(model.call(x), y);
                }
            }
            """);

    // ---------------------------------------------------------------- a custom module's forward

    [Fact]
    public Task The_layer_a_custom_forward_returns_is_reported_at_the_loss_input_naming_the_layer()
        => Verifier.AnalyzerAsync(
            Classifier(
                "private readonly Module<Tensor, Tensor> hidden, head;",
                """
                        hidden = nn.Linear(784, 128);
                        head = nn.Linear(128, 10, hasBias: false);
                """,
                "        return head.call(functional.relu(hidden.call(x)));"),
            Verifier.Diagnostic(Descriptors.MLP006_OutputLayerWithoutBias).WithLocation(0)
                .WithArguments("The layer 'nn.Linear(128, 10, hasBias: false)' (Test0.cs line 14)", "cross_entropy", "hasBias"));

    [Fact]
    public Task A_custom_module_with_a_normalization_is_not_reported()
        => Verifier.AnalyzerAsync(Classifier(
            "private readonly Module<Tensor, Tensor> hidden, norm, head;",
            """
                    hidden = nn.Linear(784, 128);
                    norm = nn.LayerNorm(128);
                    head = nn.Linear(128, 10, hasBias: false);
            """,
            "        return head.call(norm.call(hidden.call(x)));",
            loss: "functional.cross_entropy(output, y)"));

    [Fact]
    public Task A_language_model_head_is_not_reported()
        => Verifier.AnalyzerAsync(Classifier(
            "private readonly Module<Tensor, Tensor> embed, head;",
            """
                    embed = nn.Embedding(1000, 64);
                    head = nn.Linear(64, 1000, hasBias: false);
            """,
            "        return head.call(embed.call(x));",
            loss: "functional.cross_entropy(output.view(-1, 1000), y.view(-1))"));

    [Fact]
    public Task An_inner_projection_whose_output_no_loss_reads_is_not_reported()
        => Verifier.AnalyzerAsync("""
            class Attention : Module<Tensor, Tensor>
            {
                private readonly Module<Tensor, Tensor> qkv, proj;
                public Attention() : base("attention")
                {
                    qkv = nn.Linear(64, 192, hasBias: false);
                    proj = nn.Linear(64, 64, hasBias: false);
                    RegisterComponents();
                }
                public override Tensor forward(Tensor x) => proj.call(qkv.call(x).narrow(1, 0, 64));
            }

            class Trainer
            {
                void Train(Attention attention, Module<Tensor, Tensor> head, Tensor x, Tensor y)
                {
                    var loss = functional.cross_entropy(head.call(attention.call(x)), y);
                }
            }
            """);

    [Fact]
    public Task A_layer_created_and_trained_in_the_same_member_is_reported_on_the_layer()
        => Verifier.AnalyzerAsync(Train("nn.Sequential(nn.Flatten(), {|#0:nn.Linear(784, 10, hasBias: false)|})",
            "nn.CrossEntropyLoss().forward(model.forward(x), y)"), MLP006());

    [Fact]
    public Task A_users_own_linear_is_not_reported()
        => Verifier.AnalyzerAsync("""
            static class My
            {
                public static Module<Tensor, Tensor> Linear(long i, long o, bool hasBias = true) => nn.Linear(i, o, hasBias);
            }

            class Trainer
            {
                void Train(Tensor x, Tensor y)
                {
                    var model = nn.Sequential(nn.Linear(784, 128), nn.ReLU(), My.Linear(128, 10, hasBias: false));
                    var loss = functional.cross_entropy(model.call(x), y);
                }
            }
            """);

    [Fact]
    public Task Without_TorchSharp_nothing_is_reported()
        => Verifier.AnalyzerWithoutTorchSharpAsync("""
            class Linear { public Linear(int i, int o, bool hasBias) { } public object call(object x) => x; }
            class Trainer
            {
                object Train(object x) => new Linear(4, 2, hasBias: false).call(x);
            }
            """);

    // ---------------------------------------------------------------- the fix

    [Fact]
    public Task The_fix_removes_the_named_flag()
        => Verifier.CodeFixAsync(
            Train("nn.Sequential(nn.Linear(784, 128), nn.ReLU(), {|#0:nn.Linear(128, 10, hasBias: false)|})"),
            Train("nn.Sequential(nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10))"),
            MLP006());

    [Fact]
    public Task The_fix_removes_a_positional_flag_that_is_last_and_sets_one_followed_by_others_to_true()
        => Verifier.CodeFixAsync(
            Train("nn.Sequential(nn.Conv2d(3, 16, 3), nn.ReLU(), {|#0:nn.Conv2d(16, 10, 1, 1, 0, 1, PaddingModes.Zeros, 1, false)|}, nn.Flatten())"),
            Train("nn.Sequential(nn.Conv2d(3, 16, 3), nn.ReLU(), nn.Conv2d(16, 10, 1, 1, 0, 1, PaddingModes.Zeros, 1), nn.Flatten())"),
            MLP006());

    [Fact]
    public Task The_fix_keeps_later_named_arguments()
        => Verifier.CodeFixAsync(
            Train("nn.Sequential(nn.Flatten(), {|#0:nn.Linear(784, 10, false, device: null)|})"),
            Train("nn.Sequential(nn.Flatten(), nn.Linear(784, 10, device: null))"),
            MLP006());

    [Fact]
    public Task The_fix_edits_the_layer_in_its_own_file_and_fix_all_covers_every_model()
    {
        var test = Verifier.Create();
        test.TestState.Sources.Add(("Model.cs", Verifier.Usings + """
            class Classifier : Module<Tensor, Tensor>
            {
                private readonly Module<Tensor, Tensor> hidden, head;
                public Classifier() : base("classifier")
                {
                    hidden = nn.Linear(784, 128);
                    head = nn.Linear(128, 10,
                        hasBias: false);
                    RegisterComponents();
                }
                public override Tensor forward(Tensor x) => head.call(functional.relu(hidden.call(x)));
            }
            """));
        test.TestState.Sources.Add(("Train.cs", Verifier.Usings + """
            class Trainer
            {
                void Train(Classifier model, Tensor x, Tensor y)
                {
                    var loss = functional.cross_entropy({|#0:model.call(x)|}, y);
                    var other = nn.Sequential(nn.Flatten(), {|#1:nn.Linear(784, 10, hasBias: false)|});
                    var loss2 = functional.cross_entropy(other.call(x), y);
                }
            }
            """));
        test.FixedState.Sources.Add(("Model.cs", Verifier.Usings + """
            class Classifier : Module<Tensor, Tensor>
            {
                private readonly Module<Tensor, Tensor> hidden, head;
                public Classifier() : base("classifier")
                {
                    hidden = nn.Linear(784, 128);
                    head = nn.Linear(128, 10);
                    RegisterComponents();
                }
                public override Tensor forward(Tensor x) => head.call(functional.relu(hidden.call(x)));
            }
            """));
        test.FixedState.Sources.Add(("Train.cs", Verifier.Usings + """
            class Trainer
            {
                void Train(Classifier model, Tensor x, Tensor y)
                {
                    var loss = functional.cross_entropy(model.call(x), y);
                    var other = nn.Sequential(nn.Flatten(), nn.Linear(784, 10));
                    var loss2 = functional.cross_entropy(other.call(x), y);
                }
            }
            """));
        test.ExpectedDiagnostics.Add(MLP006(0));
        test.ExpectedDiagnostics.Add(MLP006(1));
        return test.RunAsync();
    }
}
