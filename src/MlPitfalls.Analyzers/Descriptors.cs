using Microsoft.CodeAnalysis;

namespace MlPitfalls.Analyzers;

/// <summary>The catalogue of every MlPitfalls rule. Each rule is created here, through <see cref="Create"/>, and nowhere else.</summary>
public static class Descriptors
{
    /// <summary>Where rule pages live; the help link of rule MLPnnn is this plus <c>MLPnnn.md</c>.</summary>
    public const string HelpLinkBase = "https://github.com/mlpitfalls/mlpitfalls/blob/main/docs/rules/";

    /// <summary>
    /// MLP001: a training loop runs backward() and an optimizer step each iteration without clearing the gradients
    /// (or clears them after backward(), erasing what the step should apply).
    /// </summary>
    public static readonly DiagnosticDescriptor MLP001_GradientsNotCleared = Create(
        id: "MLP001",
        title: "Gradients are not cleared between optimizer steps",
        messageFormat: "Gradients of '{0}' are not cleared between steps: {1}",
        category: Categories.TrainingLoop,
        severity: DiagnosticSeverity.Warning,
        description:
            "TorchSharp adds each backward() into the existing .grad of every parameter. A loop that calls backward() and " +
            "optimizer.step() every iteration must clear the gradients once per iteration, before backward() " +
            "(optimizer.zero_grad() or module.zero_grad()); otherwise every step applies the sum of all gradients so far. " +
            "Clearing between backward() and step() is just as wrong: the step then applies zeroed gradients.");

    private static DiagnosticDescriptor Create(
        string id, string title, string messageFormat, string category, DiagnosticSeverity severity, string description)
        => new(id, title, messageFormat, category, severity, isEnabledByDefault: true, description, HelpLinkBase + id + ".md");
}

/// <summary>Rule categories: each names the kind of mistake, not the API involved.</summary>
public static class Categories
{
    /// <summary>Mistakes in the order or presence of the steps of a training loop.</summary>
    public const string TrainingLoop = "TrainingLoop";
}
