using System.Threading.Tasks;
using Microsoft.CodeAnalysis.Testing;
using Xunit;
using Verifier = MlPitfalls.Analyzers.Tests.Verifiers.Verify<
    MlPitfalls.Analyzers.Losses.ProbabilityLossGivenWrongInputAnalyzer,
    MlPitfalls.CodeFixes.Losses.LossPairingCodeFix>;

namespace MlPitfalls.Analyzers.Tests.Losses;

public class ProbabilityLossGivenWrongInputTests
{
    private static DiagnosticResult MLP003(int marker = 0) => Verifier.DiagnosticAnyMessage(Descriptors.MLP003_ProbabilityLossGivenWrongInput).WithLocation(marker);

    private static string Step(string body) => $$"""
        class Trainer
        {
            private readonly Module<Tensor, Tensor> classifier = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3));

            void Train(Module<Tensor, Tensor> model, Tensor x, Tensor y, Tensor q)
            {
        {{body}}
            }
        }
        """;

    [Fact]
    public Task Softmax_into_nll_loss_is_reported_with_the_log_softmax_advice()
        => Verifier.AnalyzerAsync(
            Step("        var loss = nn.NLLLoss().call({|#0:model.call(x).softmax(1)|}, y);"),
            Verifier.Diagnostic(Descriptors.MLP003_ProbabilityLossGivenWrongInput).WithLocation(0).WithArguments(
                "'model.call(x).softmax(1)'", "NLLLoss",
                "log-probabilities, not probabilities: it only picks and negates the input at the target class, so the model is " +
                "trained on -p instead of -log p; use log_softmax instead of softmax"));

    [Fact]
    public Task Known_logits_into_nll_loss_and_bce_loss_are_reported_on_the_input()
        => Verifier.AnalyzerAsync(Step("""
                    var nll = functional.nll_loss({|#0:classifier.call(x)|}, y);
                    var logits = classifier.call(x);
                    var bce = nn.BCELoss().call({|#1:logits|}, q);
                    var fc = nn.Linear(4, 1);
                    var direct = functional.binary_cross_entropy({|#2:fc.call(x)|}, q);
            """), MLP003(0), MLP003(1), MLP003(2));

    [Fact]
    public Task Softmax_input_into_kl_div_is_reported()
        => Verifier.AnalyzerAsync(Step("""
                    var kl = functional.kl_div({|#0:model.call(x).softmax(1)|}, q.log_softmax(1));
                    var klModule = nn.KLDivLoss(log_target: false).call({|#1:functional.softmax(model.call(x), 1)|}, q);
            """), MLP003(0), MLP003(1));

    [Fact]
    public Task Correct_pairings_are_not_reported()
        => Verifier.AnalyzerAsync(Step("""
                    var a = nn.NLLLoss().call(model.call(x).log_softmax(1), y);
                    var b = functional.nll_loss(nn.Sequential(nn.Linear(4, 3), nn.LogSoftmax(1)).call(x), y);
                    var c = nn.BCELoss().call(classifier.call(x).sigmoid(), q);
                    var d = functional.binary_cross_entropy(nn.Sequential(nn.Linear(4, 1), nn.Sigmoid()).call(x), q);
                    var e = functional.kl_div(model.call(x).softmax(1).log(), q, log_target: false);
                    var f = functional.kl_div(torch.log(model.call(x).softmax(1)), q.log_softmax(1));
                    var g = functional.nll_loss(model.call(x), y);
                    var h = nn.BCELoss().call(model.call(x), q);
            """));

    [Fact]
    public Task Logits_are_not_assumed_through_unknown_layers_or_arithmetic()
        => Verifier.AnalyzerAsync(Step("""
                    var scaled = functional.nll_loss(classifier.call(x) / 2.0, y);
                    var normalised = functional.nll_loss(nn.Sequential(nn.Linear(4, 3), nn.LayerNorm(3)).call(x), y);
                    var embedded = functional.nll_loss(nn.Embedding(10, 3).call(x), y);
            """));

    [Fact]
    public Task A_users_own_nll_loss_and_linear_are_not_reported()
        => Verifier.AnalyzerAsync("""
            namespace Mine
            {
                class NLLLoss : Module<Tensor, Tensor, Tensor> { public NLLLoss() : base("nll") { } public override Tensor forward(Tensor a, Tensor b) => a; }
                class Linear : Module<Tensor, Tensor> { public Linear() : base("lin") { } public override Tensor forward(Tensor x) => x.log_softmax(1); }
                class Use
                {
                    Tensor M(Tensor x, Tensor y) => new NLLLoss().call(x.softmax(1), y) + functional.nll_loss(new Linear().call(x), y);
                }
            }
            """);

    [Fact]
    public Task Without_torchsharp_nothing_is_reported()
        => Verifier.AnalyzerWithoutTorchSharpAsync("""
            class NLLLoss { public double call(double p, int y) => -p; }
            class C { double M(double p) => new NLLLoss().call(System.Math.Exp(p), 1); }
            """);
}
