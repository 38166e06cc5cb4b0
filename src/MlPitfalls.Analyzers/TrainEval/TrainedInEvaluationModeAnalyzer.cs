using System.Collections.Immutable;
using Microsoft.CodeAnalysis;
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
        if (!finding.Mode.Is(ModeKind.Eval))
        {
            return null;
        }

        var module = finding.Module.Syntax.ToString();
        var properties = ImmutableDictionary<string, string?>.Empty.Add(ModuleProperty, module);
        string when = string.Empty, where = "before training";
        if (finding.Loop is { } loop)
        {
            var line = loop.GetLocation().GetLineSpan().StartLinePosition.Line + 1;
            when = $" from the second iteration of the loop at line {line} on";
            where = "at the start of each iteration of that loop";
            properties = properties.Add(LoopProperty, line.ToString(System.Globalization.CultureInfo.InvariantCulture));
        }

        return Diagnostic.Create(
            Rule,
            finding.Call.Syntax.GetLocation(),
            finding.OriginLocations(),
            properties,
            module,
            when,
            finding.DescribeOrigin(),
            where);
    }
}
