using System.Collections.Immutable;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Diagnostics;
using MlPitfalls.Analyzers.Analyses.Provenance;

namespace MlPitfalls.Analyzers.Losses;

/// <summary>
/// MLP002. A softmax output into CrossEntropyLoss / cross_entropy, or a sigmoid output into BCEWithLogitsLoss /
/// binary_cross_entropy_with_logits: the activation runs twice. Reported on the activation (the call, or the
/// <c>nn.Softmax</c> child of the model) when the input is that activation's output on every path.
/// </summary>
[DiagnosticAnalyzer(LanguageNames.CSharp)]
public sealed class LogitsLossGivenProbabilitiesAnalyzer : LossPairingAnalyzer
{
    public override ImmutableArray<DiagnosticDescriptor> SupportedDiagnostics { get; } =
        ImmutableArray.Create(Descriptors.MLP002_LogitsLossGivenProbabilities);

    private protected override ImmutableArray<Diagnostic> Judge(LossPairing pairing)
    {
        var loss = pairing.Loss;
        string advice;
        switch (loss.Kind)
        {
            case LossKind.CrossEntropy when pairing.Input.Is(TensorKind.Softmax):
                advice = "it applies log_softmax itself, so the model trains through a double softmax whose gradients vanish as " +
                         "predictions grow confident; pass the logits and apply softmax only where probabilities are needed";
                break;
            case LossKind.BinaryCrossEntropyWithLogits when pairing.Input.Is(TensorKind.Sigmoid):
                advice = "it applies sigmoid itself, so the loss sees sigmoid(sigmoid(x)) and its gradients nearly vanish; pass " +
                         "the logits, or use BCELoss on the probabilities";
                break;
            default:
                return ImmutableArray<Diagnostic>.Empty;
        }

        var diagnostics = ImmutableArray.CreateBuilder<Diagnostic>();
        foreach (var origin in pairing.Input.Origins)
        {
            var inMember = pairing.IsInMember(origin);
            var fix = inMember && FeedsOnlyTheLoss(origin, loss) ? RemoveActivationFix
                : origin.SyntaxTree == loss.Invocation.Syntax.SyntaxTree && IsSequentialChild(origin) ? RemoveLayerFix
                : null;
            var switchFix = loss.Kind == LossKind.BinaryCrossEntropyWithLogits && CanSwitch(loss) ? SwitchLossFix : null;
            var (location, additional, described) = Place(pairing, origin, SwitchTarget(loss));
            diagnostics.Add(Diagnostic.Create(
                Descriptors.MLP002_LogitsLossGivenProbabilities, location, additional, Fixes(fix, switchFix),
                described, loss.Display, advice));
        }

        return diagnostics.ToImmutable();
    }

    /// <summary>The call or creation whose name the switch fix changes.</summary>
    internal static SyntaxNode SwitchTarget(LossCall loss) => (loss.ModuleCreation ?? loss.Invocation).Syntax;

    /// <summary>
    /// binary_cross_entropy_with_logits → binary_cross_entropy keeps (input, target, weight, reduction); a pos_weights
    /// argument has no counterpart, and a loss created elsewhere (another file, a parameter) cannot be edited here.
    /// </summary>
    internal static bool CanSwitch(LossCall loss)
    {
        var target = SwitchTarget(loss);
        if (target.SyntaxTree != loss.Invocation.Syntax.SyntaxTree || (loss.ModuleCreation is null && !loss.Invocation.TargetMethod.IsStatic))
        {
            return false;
        }

        var call = (loss.ModuleCreation ?? loss.Invocation) as Microsoft.CodeAnalysis.Operations.IInvocationOperation;
        if (call is null)
        {
            return false;
        }

        foreach (var argument in call.Arguments)
        {
            if (argument.Parameter?.Name == "pos_weights" && argument.ArgumentKind != Microsoft.CodeAnalysis.Operations.ArgumentKind.DefaultValue)
            {
                return false;
            }
        }

        return true;
    }
}
