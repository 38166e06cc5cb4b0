using System.Collections.Immutable;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using Microsoft.CodeAnalysis.Diagnostics;
using MlPitfalls.Analyzers.Analyses.Mode;

namespace MlPitfalls.Analyzers.TrainEval;

/// <summary>
/// MLP007: a module's forward pass used for evaluation (in a grad-disabled scope, or in a loop or method that only
/// measures) while the module is in training mode on every path: created and never switched, or last switched by
/// <c>train()</c> before a training loop. An explicit <c>train()</c> with no backward pass between it and the evaluation
/// is deliberate (Monte-Carlo dropout) and not reported.
/// </summary>
[DiagnosticAnalyzer(LanguageNames.CSharp)]
public sealed class EvaluatedInTrainingModeAnalyzer : ModeRuleAnalyzer
{
    public override ImmutableArray<DiagnosticDescriptor> SupportedDiagnostics { get; } = ImmutableArray.Create(Descriptors.MLP007_EvaluatedInTrainingMode);

    private protected override ModeUseKind JudgedUse => ModeUseKind.Evaluation;

    private protected override DiagnosticDescriptor Rule => Descriptors.MLP007_EvaluatedInTrainingMode;

    private protected override Diagnostic? Judge(ModeFinding finding)
    {
        if (!finding.Mode.Is(ModeKind.Train) || IsDeliberate(finding))
        {
            return null;
        }

        var module = finding.Module.Syntax.ToString();
        return Diagnostic.Create(
            Rule,
            finding.Call.Syntax.GetLocation(),
            finding.OriginLocations(),
            ImmutableDictionary<string, string?>.Empty.Add(ModuleProperty, module),
            module,
            finding.DescribeOrigin());
    }

    /// <summary>
    /// True when the training mode comes from a <c>train()</c> call in the same member with no backward pass between it
    /// and the evaluation: switching to training mode right before evaluating is on purpose (Monte-Carlo dropout).
    /// </summary>
    private static bool IsDeliberate(ModeFinding finding)
    {
        var use = finding.Call.Syntax;
        foreach (var origin in finding.Mode.Origins)
        {
            if (origin is InvocationExpressionSyntax { Expression: MemberAccessExpressionSyntax { Name.Identifier.ValueText: "train" } or IdentifierNameSyntax { Identifier.ValueText: "train" } }
                && origin.SyntaxTree == use.SyntaxTree && origin.SpanStart < use.SpanStart
                && !HasBackwardBetween(origin, use))
            {
                return true;
            }
        }

        return false;
    }

    private static bool HasBackwardBetween(SyntaxNode from, SyntaxNode to)
    {
        var root = from.SyntaxTree.GetRoot();
        foreach (var token in root.DescendantTokens(new Microsoft.CodeAnalysis.Text.TextSpan(from.Span.End, to.SpanStart - from.Span.End)))
        {
            if (token.ValueText is "backward" or "step" && token.SpanStart >= from.Span.End && token.SpanStart < to.SpanStart)
            {
                return true;
            }
        }

        return false;
    }
}
