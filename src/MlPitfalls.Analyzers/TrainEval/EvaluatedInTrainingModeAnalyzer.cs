using System.Collections.Immutable;
using System.Linq;
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
        var scope = finding.Scope;
        var fix = scope is null || finding.IsSetWithin(scope) ? null : FixFor(finding, scope);
        var (properties, locations) = WithFix(finding, ImmutableDictionary<string, string?>.Empty.Add(ModuleProperty, module), fix, scope);
        return Diagnostic.Create(Rule, finding.Call.Syntax.GetLocation(), locations, properties, module, finding.DescribeOrigin());
    }

    /// <summary>
    /// <c>eval()</c> before the evaluation; and <c>train()</c> after it when training may go on after it without one:
    /// in a loop that does not switch back to training at each iteration itself, or, for a field the class never
    /// switches, in whatever trains it next. No fix when the switch back cannot be placed after the evaluation (a
    /// <c>using var</c> guard scopes the rest of its block; a <c>return</c> leaves from inside it).
    /// </summary>
    private static string? FixFor(ModeFinding finding, SyntaxNode scope)
    {
        if (finding.IsClassWide)
        {
            return CanRestoreAfter(scope) ? InsertEvalAndRestoreFix : null;
        }

        if (!IsInLoop(scope) || SwitchedBackEachIteration(finding, scope))
        {
            return InsertEvalFix;
        }

        return CanRestoreAfter(scope) ? InsertEvalAndRestoreFix : null;
    }

    /// <summary>
    /// True when the training mode comes only from <c>train()</c> calls earlier in the body of the loop around the
    /// evaluation (<c>model.train()</c> at the top of the epoch loop): the loop switches back itself.
    /// </summary>
    private static bool SwitchedBackEachIteration(ModeFinding finding, SyntaxNode scope)
    {
        var loop = scope.Parent?.FirstAncestorOrSelf<StatementSyntax>(n => n is ForStatementSyntax or CommonForEachStatementSyntax or WhileStatementSyntax or DoStatementSyntax);
        return loop is not null && finding.Mode.Origins.All(origin =>
            origin is InvocationExpressionSyntax { Expression: MemberAccessExpressionSyntax { Name.Identifier.ValueText: "train" } or IdentifierNameSyntax { Identifier.ValueText: "train" } }
            && origin.SyntaxTree == scope.SyntaxTree && loop.Span.Contains(origin.Span) && origin.Span.End <= scope.SpanStart);
    }

    /// <summary>
    /// True when the training mode comes from a <c>train()</c> call in the same member with no backward pass or optimizer
    /// step between it and the evaluation (directly or in a helper): switching to training mode right before evaluating
    /// is on purpose (Monte-Carlo dropout).
    /// </summary>
    private static bool IsDeliberate(ModeFinding finding)
    {
        var use = finding.Call.Syntax;
        foreach (var origin in finding.Mode.Origins)
        {
            if (origin is InvocationExpressionSyntax { Expression: MemberAccessExpressionSyntax { Name.Identifier.ValueText: "train" } or IdentifierNameSyntax { Identifier.ValueText: "train" } }
                && origin.SyntaxTree == use.SyntaxTree && origin.Span.End <= use.SpanStart
                && !ModeUses.MayTrainBefore(finding.Services, finding.Call, origin.Span.End, finding.CancellationToken))
            {
                return true;
            }
        }

        return false;
    }
}
