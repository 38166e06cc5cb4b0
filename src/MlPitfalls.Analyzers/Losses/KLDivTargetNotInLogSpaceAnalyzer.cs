using System.Collections.Immutable;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Diagnostics;
using MlPitfalls.Analyzers.Analyses.Provenance;

namespace MlPitfalls.Analyzers.Losses;

/// <summary>
/// MLP004. kl_div / KLDivLoss read the target in log space by default in TorchSharp (PyTorch: probability space). A
/// target that is a softmax or sigmoid output on every path, with log_target left true, gives a wrong divergence.
/// Reported on the loss call; the fix adds <c>log_target: false</c> where the loss is configured.
/// </summary>
[DiagnosticAnalyzer(LanguageNames.CSharp)]
public sealed class KLDivTargetNotInLogSpaceAnalyzer : LossPairingAnalyzer
{
    public override ImmutableArray<DiagnosticDescriptor> SupportedDiagnostics { get; } =
        ImmutableArray.Create(Descriptors.MLP004_KLDivTargetNotInLogSpace);

    private protected override ImmutableArray<Diagnostic> Judge(LossPairing pairing)
    {
        var loss = pairing.Loss;
        var target = pairing.Target;
        if (loss.Kind != LossKind.KullbackLeibler || loss.LogTarget != true || !(target.Is(TensorKind.Softmax) || target.Is(TensorKind.Sigmoid)))
        {
            return ImmutableArray<Diagnostic>.Empty;
        }

        var configured = (loss.ModuleCreation ?? loss.Invocation).Syntax;
        var fix = configured.SyntaxTree == loss.Invocation.Syntax.SyntaxTree && ConfiguresOnlyThisCall(configured, loss) ? LogTargetFalseFix : null;
        var what = target.Is(TensorKind.Softmax) ? "softmax probabilities" : "sigmoid probabilities";
        var setting = HasExplicitLogTarget(loss) ? "true" : "true by default (PyTorch's default is false)";
        return ImmutableArray.Create(Diagnostic.Create(
            Descriptors.MLP004_KLDivTargetNotInLogSpace,
            loss.Invocation.Syntax.GetLocation(),
            additionalLocations: new[] { configured.GetLocation() },
            properties: Fixes(fix),
            loss.Display, what, setting));
    }

    /// <summary>
    /// True when changing <paramref name="configured"/> affects this loss call only: it is the kl_div call itself, a
    /// KLDivLoss created inline in the call, or one held in a local read once. A module shared with other calls (a field)
    /// may also serve a correct log-space target, which the fix would break.
    /// </summary>
    private static bool ConfiguresOnlyThisCall(SyntaxNode configured, LossCall loss)
    {
        var call = loss.Invocation.Syntax;
        if (call.Span.Contains(configured.Span))
        {
            return true;
        }

        if (configured.Parent is Microsoft.CodeAnalysis.CSharp.Syntax.EqualsValueClauseSyntax { Parent: Microsoft.CodeAnalysis.CSharp.Syntax.VariableDeclaratorSyntax declarator }
            && declarator.Parent?.Parent is Microsoft.CodeAnalysis.CSharp.Syntax.LocalDeclarationStatementSyntax
            && declarator.FirstAncestorOrSelf<Microsoft.CodeAnalysis.CSharp.Syntax.BlockSyntax>() is { } scope)
        {
            return IsReadOnce(declarator, scope);
        }

        return false;
    }

    private static bool HasExplicitLogTarget(LossCall loss)
    {
        var call = (loss.ModuleCreation ?? loss.Invocation) as Microsoft.CodeAnalysis.Operations.IInvocationOperation;
        if (call is null)
        {
            return false;
        }

        foreach (var argument in call.Arguments)
        {
            if (argument.Parameter?.Name == "log_target")
            {
                return argument.ArgumentKind != Microsoft.CodeAnalysis.Operations.ArgumentKind.DefaultValue;
            }
        }

        return false;
    }
}
