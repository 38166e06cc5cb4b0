using System.Collections.Immutable;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Diagnostics;
using MlPitfalls.Analyzers.Analyses.Provenance;

namespace MlPitfalls.Analyzers.Losses;

/// <summary>
/// MLP003. NLLLoss given softmax probabilities or raw logits, BCELoss given raw logits, KLDivLoss given softmax
/// probabilities as its input. Reported on the softmax call (or child) when it is the input on every path, and on the
/// loss input when the input is a layer's raw output on every path.
/// </summary>
[DiagnosticAnalyzer(LanguageNames.CSharp)]
public sealed class ProbabilityLossGivenWrongInputAnalyzer : LossPairingAnalyzer
{
    public override ImmutableArray<DiagnosticDescriptor> SupportedDiagnostics { get; } =
        ImmutableArray.Create(Descriptors.MLP003_ProbabilityLossGivenWrongInput);

    private protected override ImmutableArray<Diagnostic> Judge(LossPairing pairing)
    {
        var loss = pairing.Loss;
        var input = pairing.Input;
        switch (loss.Kind)
        {
            case LossKind.NegativeLogLikelihood when input.Is(TensorKind.Softmax):
                return AtOrigins(pairing, "log-probabilities, not probabilities: it only picks and negates the input at the target " +
                                          "class, so the model is trained on -p instead of -log p; use log_softmax instead of softmax");
            case LossKind.KullbackLeibler when input.Is(TensorKind.Softmax):
                return AtOrigins(pairing, "log-probabilities as its input, not probabilities; use log_softmax instead of softmax");
            case LossKind.NegativeLogLikelihood when input.Is(TensorKind.Logits):
                return AtInput(pairing, "log-probabilities, but this is a layer's raw output: the loss can fall without bound and " +
                                        "does not train a classifier; apply log_softmax over the class dimension, or use cross_entropy",
                               ApplyLogSoftmaxFix);
            case LossKind.BinaryCrossEntropy when input.Is(TensorKind.Logits):
                return AtInput(pairing, "probabilities in [0, 1], but this is a layer's raw output; use BCEWithLogitsLoss / " +
                                        "binary_cross_entropy_with_logits, which applies sigmoid itself and is numerically stable",
                               CanSwitch(loss) ? SwitchLossFix : null);
            default:
                return ImmutableArray<Diagnostic>.Empty;
        }
    }

    private static ImmutableArray<Diagnostic> AtOrigins(LossPairing pairing, string expected)
    {
        var diagnostics = ImmutableArray.CreateBuilder<Diagnostic>();
        foreach (var origin in pairing.Input.Origins)
        {
            // softmax → log_softmax in a helper would change the helper for every caller: offered in the member only.
            var fix = origin is Microsoft.CodeAnalysis.CSharp.Syntax.InvocationExpressionSyntax && pairing.IsInMember(origin) ? UseLogSoftmaxFix : null;
            var (location, additional, described) = Place(pairing, origin, LogitsLossGivenProbabilitiesAnalyzer.SwitchTarget(pairing.Loss));
            diagnostics.Add(Diagnostic.Create(
                Descriptors.MLP003_ProbabilityLossGivenWrongInput, location, additional, Fixes(fix),
                described, pairing.Loss.Display, expected));
        }

        return diagnostics.ToImmutable();
    }

    private static ImmutableArray<Diagnostic> AtInput(LossPairing pairing, string expected, string? fix)
    {
        var input = pairing.Loss.Input.Syntax;
        return ImmutableArray.Create(Diagnostic.Create(
            Descriptors.MLP003_ProbabilityLossGivenWrongInput,
            input.GetLocation(),
            additionalLocations: new[] { LogitsLossGivenProbabilitiesAnalyzer.SwitchTarget(pairing.Loss).GetLocation() },
            properties: Fixes(fix),
            Describe(input), pairing.Loss.Display, expected));
    }

    /// <summary>BCELoss → BCEWithLogitsLoss keeps (weight, reduction); binary_cross_entropy → _with_logits keeps (input, target, weight, reduction).</summary>
    private static bool CanSwitch(LossCall loss)
        => LogitsLossGivenProbabilitiesAnalyzer.SwitchTarget(loss).SyntaxTree == loss.Invocation.Syntax.SyntaxTree
           && (loss.ModuleCreation is not null || loss.Invocation.TargetMethod.IsStatic);
}
