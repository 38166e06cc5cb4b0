using System.Threading.Tasks;
using Microsoft.CodeAnalysis.Testing;
using Xunit;
using Verifier = MlPitfalls.Analyzers.Tests.Verifiers.Verify<
    MlPitfalls.Analyzers.Losses.KLDivTargetNotInLogSpaceAnalyzer,
    MlPitfalls.CodeFixes.Losses.LossPairingCodeFix>;

namespace MlPitfalls.Analyzers.Tests.Losses;

public class KLDivTargetNotInLogSpaceTests
{
    private static DiagnosticResult MLP004(int marker = 0) => Verifier.DiagnosticAnyMessage(Descriptors.MLP004_KLDivTargetNotInLogSpace).WithLocation(marker);

    private static string Distill(string body) => $$"""
        class Distill
        {
            Tensor Loss(Module<Tensor, Tensor> student, Module<Tensor, Tensor> teacher, Tensor x, float temperature)
            {
                var log_p = (student.call(x) / temperature).log_softmax(1);
                var teacherProbs = (teacher.call(x) / temperature).softmax(1);
        {{body}}
            }
        }
        """;

    [Fact]
    public Task Probability_target_with_the_default_log_target_is_reported_with_a_message_explaining_the_default()
        => Verifier.AnalyzerAsync(
            Distill("        return {|#0:functional.kl_div(log_p, teacherProbs)|};"),
            Verifier.Diagnostic(Descriptors.MLP004_KLDivTargetNotInLogSpace).WithLocation(0).WithArguments(
                "kl_div", "softmax probabilities", "true by default (PyTorch's default is false)"));

    [Fact]
    public Task Module_form_with_explicit_true_and_a_sigmoid_target_are_reported()
        => Verifier.AnalyzerAsync(Distill("""
                    var kl = nn.KLDivLoss();
                    var explicitTrue = nn.KLDivLoss(log_target: true);
                    return {|#0:kl.call(log_p, teacherProbs)|} + {|#1:explicitTrue.forward(log_p, teacher.call(x).sigmoid())|};
            """), MLP004(0), MLP004(1));

    [Fact]
    public Task Log_target_false_or_a_log_space_target_is_not_reported()
        => Verifier.AnalyzerAsync(Distill("""
                    var a = functional.kl_div(log_p, teacherProbs, log_target: false);
                    var b = nn.KLDivLoss(false).call(log_p, teacherProbs);
                    var c = functional.kl_div(log_p, teacherProbs.log());
                    var d = functional.kl_div(log_p, teacher.call(x).log_softmax(1));
                    var e = functional.kl_div(log_p, teacher.call(x));
                    return a + b + c + d + e;
            """));

    [Fact]
    public Task Log_target_computed_at_run_time_is_not_reported()
        => Verifier.AnalyzerAsync("""
            class Distill
            {
                Tensor Loss(Tensor log_p, Tensor logits, bool logSpace) => functional.kl_div(log_p, logits.softmax(1), log_target: logSpace);
            }
            """);

    [Fact]
    public Task A_users_own_kl_div_is_not_reported()
        => Verifier.AnalyzerAsync("""
            namespace Mine
            {
                static class F { public static Tensor kl_div(Tensor input, Tensor target, bool log_target = true) => input; }
                class Use { Tensor M(Tensor p, Tensor q) => F.kl_div(p.log_softmax(1), q.softmax(1)); }
            }
            """);

    [Fact]
    public Task Without_torchsharp_nothing_is_reported()
        => Verifier.AnalyzerWithoutTorchSharpAsync("""
            static class F { public static double kl_div(double p, double q, bool log_target = true) => p - q; }
            class C { double M() => F.kl_div(0.5, 0.5); }
            """);
}
