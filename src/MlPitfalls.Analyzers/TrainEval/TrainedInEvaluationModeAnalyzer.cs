using System.Collections.Immutable;
using System.Linq;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using Microsoft.CodeAnalysis.Diagnostics;
using MlPitfalls.Analyzers.Analyses.Mode;

namespace MlPitfalls.Analyzers.TrainEval;

/// <summary>
/// MLP008: a module's forward pass whose output reaches <c>backward()</c> while the module is in evaluation mode on
/// every path, or on every path that has gone round a loop around it once: the epoch loop that calls <c>eval()</c> for
/// validation at the end of each epoch and never <c>train()</c> at the start of the next trains every epoch after the
/// first in evaluation mode.
/// </summary>
[DiagnosticAnalyzer(LanguageNames.CSharp)]
public sealed class TrainedInEvaluationModeAnalyzer : ModeRuleAnalyzer
{
    public override ImmutableArray<DiagnosticDescriptor> SupportedDiagnostics { get; } = ImmutableArray.Create(Descriptors.MLP008_TrainedInEvaluationMode);

    private protected override ModeUseKind JudgedUse => ModeUseKind.Training;

    private protected override DiagnosticDescriptor Rule => Descriptors.MLP008_TrainedInEvaluationMode;

    private protected override Diagnostic? Judge(ModeFinding finding)
    {
        var module = finding.Module.Syntax.ToString();
        if (!finding.Mode.Is(ModeKind.Eval) || SwitchesBackInTheLoop(finding, module))
        {
            return null;
        }

        var properties = ImmutableDictionary<string, string?>.Empty.Add(ModuleProperty, module);
        string when = string.Empty, where = "before the training loop";
        if (finding.Loop is { } loop)
        {
            var line = loop.GetLocation().GetLineSpan().StartLinePosition.Line + 1;
            when = $" from the second iteration of the loop at line {line} on";
            where = "at the start of each iteration of that loop";
            properties = properties.Add(LoopProperty, line.ToString(System.Globalization.CultureInfo.InvariantCulture));
        }

        // An epoch loop gets train() at the top of its body; otherwise train() goes before the training loop, unless the
        // mode is set to eval inside that loop before the call (then no place is safe to choose).
        var (withFix, locations) = finding.Loop is { } epochLoop
            ? WithFix(finding, properties, InsertTrainAtLoopStartFix, epochLoop)
            : WithFix(finding, properties, finding.Scope is { } scope && !finding.IsSetWithin(scope) ? InsertTrainBeforeFix : null, finding.Scope);
        return Diagnostic.Create(Rule, finding.Call.Syntax.GetLocation(), locations, withFix, module, when, finding.DescribeOrigin(), where);
    }

    /// <summary>
    /// True when the training loop itself calls <c>module.train()</c> after the use: the author switches modes within an
    /// iteration on purpose (adversarial training crafts its examples in evaluation mode, then trains).
    /// </summary>
    private static bool SwitchesBackInTheLoop(ModeFinding finding, string module)
        => finding.Scope is { } loop
           && loop.DescendantNodes().OfType<InvocationExpressionSyntax>().Any(invocation =>
               invocation.SpanStart > finding.Call.Syntax.SpanStart
               && invocation.Expression is MemberAccessExpressionSyntax { Name.Identifier.ValueText: "train", Expression: var receiver }
               && receiver.ToString() == module);
}
