using System.Threading.Tasks;
using Microsoft.CodeAnalysis.Testing;
using MlPitfalls.CodeFixes.Losses;
using Xunit;
using CrossEntropy = MlPitfalls.Analyzers.Tests.Verifiers.Verify<
    MlPitfalls.Analyzers.Losses.LogitsLossGivenProbabilitiesAnalyzer,
    MlPitfalls.CodeFixes.Losses.LossPairingCodeFix>;
using KLDiv = MlPitfalls.Analyzers.Tests.Verifiers.Verify<
    MlPitfalls.Analyzers.Losses.KLDivTargetNotInLogSpaceAnalyzer,
    MlPitfalls.CodeFixes.Losses.LossPairingCodeFix>;
using Probability = MlPitfalls.Analyzers.Tests.Verifiers.Verify<
    MlPitfalls.Analyzers.Losses.ProbabilityLossGivenWrongInputAnalyzer,
    MlPitfalls.CodeFixes.Losses.LossPairingCodeFix>;

namespace MlPitfalls.Analyzers.Tests.Losses;

public class LossPairingCodeFixTests
{
    private static DiagnosticResult MLP002(int marker = 0) => CrossEntropy.DiagnosticAnyMessage(Descriptors.MLP002_LogitsLossGivenProbabilities).WithLocation(marker);

    private static DiagnosticResult MLP003(int marker = 0) => Probability.DiagnosticAnyMessage(Descriptors.MLP003_ProbabilityLossGivenWrongInput).WithLocation(marker);

    private static DiagnosticResult MLP004(int marker = 0) => KLDiv.DiagnosticAnyMessage(Descriptors.MLP004_KLDivTargetNotInLogSpace).WithLocation(marker);

    private static string Method(string body) => $$"""
        class Trainer
        {
            Tensor Loss(Module<Tensor, Tensor> model, Tensor x, Tensor y)
            {
        {{body}}
            }
        }
        """;

    [Fact]
    public Task Activation_feeding_only_the_loss_is_removed_in_every_spelling()
        => CrossEntropy.CodeFixAsync(
            Method("""
                    var criterion = nn.CrossEntropyLoss();
                    var probs = {|#0:model.call(x).softmax(1)|};
                    var a = criterion.call(probs, y);
                    var b = functional.cross_entropy({|#1:functional.softmax(model.call(x), 1)|}, y);
                    var c = functional.cross_entropy({|#2:torch.softmax(model.call(x) + 1, 1)|}, y);
                    return a + b + c;
            """),
            Method("""
                    var criterion = nn.CrossEntropyLoss();
                    var probs = model.call(x);
                    var a = criterion.call(probs, y);
                    var b = functional.cross_entropy(model.call(x), y);
                    var c = functional.cross_entropy(model.call(x) + 1, y);
                    return a + b + c;
            """),
            LossPairingCodeFix.RemoveActivationKey,
            MLP002(0), MLP002(1), MLP002(2));

    [Fact]
    public Task Activation_also_read_elsewhere_gets_no_removal_fix()
        => CrossEntropy.NoCodeFixAsync(
            Method("""
                    var probs = {|#0:model.call(x).softmax(1)|};
                    var accuracy = probs.argmax(1).eq(y).sum();
                    return functional.cross_entropy(probs, y);
            """),
            MLP002());

    [Fact]
    public Task Final_softmax_child_of_a_sequential_is_removed()
        => CrossEntropy.CodeFixAsync(
            """
            class Trainer
            {
                private readonly Module<Tensor, Tensor> model = nn.Sequential(
                    ("fc", nn.Linear(4, 3)),
                    ("probs", nn.Softmax(1)));

                Tensor Loss(Tensor x, Tensor y) => nn.CrossEntropyLoss().call({|#0:model.call(x)|}, y);
            }
            """,
            """
            class Trainer
            {
                private readonly Module<Tensor, Tensor> model = nn.Sequential(
                    ("fc", nn.Linear(4, 3)));

                Tensor Loss(Tensor x, Tensor y) => nn.CrossEntropyLoss().call(model.call(x), y);
            }
            """,
            LossPairingCodeFix.RemoveLayerKey,
            MLP002());

    [Fact]
    public Task Sigmoid_into_bce_with_logits_can_switch_to_bce_loss()
        => CrossEntropy.CodeFixAsync(
            Method("""
                    var bce = nn.BCEWithLogitsLoss();
                    var p = {|#0:model.call(x).sigmoid()|};
                    var extra = p.mean();
                    return bce.call(p, y) + extra;
            """),
            Method("""
                    var bce = nn.BCELoss();
                    var p = model.call(x).sigmoid();
                    var extra = p.mean();
                    return bce.call(p, y) + extra;
            """),
            LossPairingCodeFix.SwitchLossKey,
            MLP002());

    [Fact]
    public Task Switching_is_not_offered_for_a_loss_declared_with_its_concrete_type_or_with_pos_weights()
        => CrossEntropy.NoCodeFixAsync(
            """
            class Trainer
            {
                private readonly BCEWithLogitsLoss bce = nn.BCEWithLogitsLoss();

                Tensor Loss(Module<Tensor, Tensor> model, Tensor x, Tensor y, Tensor w)
                {
                    var p = {|#0:model.call(x).sigmoid()|};
                    var q = {|#1:model.call(x + 1).sigmoid()|};
                    return bce.call(p, y) + functional.binary_cross_entropy_with_logits(q, y, pos_weights: w) + p.sum() + q.sum();
                }
            }
            """,
            MLP002(0), MLP002(1));

    [Fact]
    public Task Softmax_into_nll_loss_becomes_log_softmax()
        => Probability.CodeFixAsync(
            Method("""
                    var a = functional.nll_loss({|#0:model.call(x).softmax(1)|}, y);
                    var b = nn.NLLLoss().call({|#1:torch.softmax(model.call(x), 1)|}, y);
                    return a + b;
            """),
            Method("""
                    var a = functional.nll_loss(model.call(x).log_softmax(1), y);
                    var b = nn.NLLLoss().call(model.call(x).log_softmax(1), y);
                    return a + b;
            """),
            LossPairingCodeFix.UseLogSoftmaxKey,
            MLP003(0), MLP003(1));

    [Fact]
    public Task Logits_into_nll_loss_get_log_softmax()
        => Probability.CodeFixAsync(
            Method("""
                    var head = nn.Linear(4, 3);
                    return functional.nll_loss({|#0:head.call(x)|}, y) + nn.NLLLoss().call({|#1:head.call(x)[.., 0]|}, y);
            """),
            Method("""
                    var head = nn.Linear(4, 3);
                    return functional.nll_loss(head.call(x).log_softmax(1), y) + nn.NLLLoss().call(head.call(x)[.., 0].log_softmax(1), y);
            """),
            MLP003(0), MLP003(1));

    [Fact]
    public Task Bce_on_logits_switches_to_the_with_logits_form()
        => Probability.CodeFixAsync(
            Method("""
                    var head = nn.Linear(4, 1);
                    var criterion = nn.BCELoss();
                    return functional.binary_cross_entropy({|#0:head.call(x)|}, y) + criterion.call({|#1:head.call(x)|}, y);
            """),
            Method("""
                    var head = nn.Linear(4, 1);
                    var criterion = nn.BCEWithLogitsLoss();
                    return functional.binary_cross_entropy_with_logits(head.call(x), y) + criterion.call(head.call(x), y);
            """),
            MLP003(0), MLP003(1));

    [Fact]
    public Task A_softmax_layer_before_nll_loss_becomes_a_log_softmax_layer()
        => Probability.CodeFixAsync(
            Method("""
                    var net = nn.Sequential(nn.Linear(4, 3), {|#0:nn.Softmax(1)|});
                    return nn.NLLLoss().call(net.call(x), y);
            """),
            Method("""
                    var net = nn.Sequential(nn.Linear(4, 3), nn.LogSoftmax(1));
                    return nn.NLLLoss().call(net.call(x), y);
            """),
            MLP003(0));

    [Fact]
    public Task A_bce_loss_created_inline_switches_to_with_logits()
        => Probability.CodeFixAsync(
            Method("        return nn.BCELoss().call({|#0:nn.Linear(4, 1).call(x)|}, y);"),
            Method("        return nn.BCEWithLogitsLoss().call(nn.Linear(4, 1).call(x), y);"),
            MLP003(0));

    [Fact]
    public Task A_softmax_layer_held_in_a_field_of_its_concrete_type_is_not_renamed()
        => Probability.NoCodeFixAsync(
            """
            class Net
            {
                private readonly Softmax head = nn.Softmax(1);
                private readonly BCELoss bce = nn.BCELoss();

                Tensor Loss(Tensor x, Tensor y)
                {
                    Softmax local = {|#0:nn.Softmax(1)|};
                    return nn.NLLLoss().call(local.call(x), y) + bce.call({|#1:nn.Linear(4, 1).call(x)|}, y);
                }
            }
            """,
            MLP003(0), MLP003(1));

    [Fact]
    public Task Log_target_false_is_added_or_replaces_an_explicit_true()
        => KLDiv.CodeFixAsync(
            Method("""
                    var p = model.call(x).log_softmax(1);
                    var q = y.softmax(1);
                    var kl = nn.KLDivLoss(true);
                    return {|#0:functional.kl_div(p, q)|} + {|#1:kl.call(p, q)|} + {|#2:functional.kl_div(p, q, log_target: true)|};
            """),
            Method("""
                    var p = model.call(x).log_softmax(1);
                    var q = y.softmax(1);
                    var kl = nn.KLDivLoss(false);
                    return functional.kl_div(p, q, log_target: false) + kl.call(p, q) + functional.kl_div(p, q, log_target: false);
            """),
            MLP004(0), MLP004(1), MLP004(2));
}
