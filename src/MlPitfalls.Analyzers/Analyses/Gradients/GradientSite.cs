using Microsoft.CodeAnalysis;
using MlPitfalls.Analyzers.FlowAnalysis;

namespace MlPitfalls.Analyzers.Analyses.Gradients;

/// <summary>What a body does to gradients at a site.</summary>
internal enum GradientSiteKind
{
    /// <summary><c>loss.backward()</c>: adds gradients to every optimizer's buffers.</summary>
    Backward,

    /// <summary><c>optimizer.step()</c>: applies what the optimizer's buffers hold.</summary>
    Step,

    /// <summary>A clear of an optimizer's buffers: <c>zero_grad()</c> of the optimizer or of a module it holds parameters of, <c>p.grad = null</c>, or a call that may clear.</summary>
    Clear,
}

/// <summary>
/// One gradient event as the analysed body sees it: at <see cref="Anchor"/> (the event itself, or the call in the body
/// that reaches it inside a helper, a local function or a lambda), on the optimizer the body names <see cref="Path"/>,
/// with that optimizer's history just before the event, joined over every time the body reaches it.
/// </summary>
internal sealed class GradientSite
{
    public GradientSite(GradientSiteKind kind, SyntaxNode anchor, AccessPath? path, AccessPath? key, string? optimizerName, string? through, bool definite)
    {
        Kind = kind;
        Anchor = anchor;
        Path = path;
        Key = key;
        OptimizerName = optimizerName;
        Through = through;
        Definite = definite;
    }

    public GradientSiteKind Kind { get; }

    /// <summary>Where the body runs the event: the event's own syntax, or the call in the body that reaches it.</summary>
    public SyntaxNode Anchor { get; }

    /// <summary>
    /// The optimizer stepped or cleared, as the body names it; null for a backward(), or for an optimizer only the code the
    /// body calls can name (a helper's local built from a module the body passes).
    /// </summary>
    public AccessPath? Path { get; }

    /// <summary>The optimizer's name where it is stepped or cleared (for a message when <see cref="Path"/> is null); null for a backward().</summary>
    public string? OptimizerName { get; }

    /// <summary>
    /// Where the analysis keeps the history of <see cref="Path"/>'s gradients: the module whose parameters the optimizer
    /// holds, when its creation shows it, or the path itself. Two sites with one key step or clear the same buffers.
    /// </summary>
    public AccessPath? Key { get; }

    /// <summary>The name of what the body calls to reach the event (a helper, a local function, a lambda's variable); null when the event stands in the body.</summary>
    public string? Through { get; }

    /// <summary>For a clear: true when it certainly clears <see cref="Path"/> each time it runs (not a clear that only may).</summary>
    public bool Definite { get; private set; }

    /// <summary>The optimizer's history just before the event, on every path and every run that reaches it.</summary>
    public GradientHistory Before { get; private set; } = GradientHistory.Bottom;

    /// <summary>True when the event stands in the analysed body itself, not inside something it calls.</summary>
    public bool IsDirect => Through is null;

    internal void Add(GradientHistory before, bool definite)
    {
        Before = Before.Join(before);
        Definite &= definite;
    }
}
