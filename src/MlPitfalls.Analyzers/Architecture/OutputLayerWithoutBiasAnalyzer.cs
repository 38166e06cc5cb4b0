using System.Collections.Immutable;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using Microsoft.CodeAnalysis.Diagnostics;
using Microsoft.CodeAnalysis.Operations;
using MlPitfalls.Analyzers.Analyses.Composition;
using MlPitfalls.Analyzers.Analyses.LayerGraph;
using MlPitfalls.Analyzers.Analyses.Provenance;
using MlPitfalls.Analyzers.Infrastructure;
using MlPitfalls.Analyzers.Losses;

namespace MlPitfalls.Analyzers.Architecture;

/// <summary>
/// MLP006. The layer whose raw output a logits loss (CrossEntropyLoss, BCEWithLogitsLoss) reads on every path is a
/// Linear or convolution created with its bias switched off by a constant. What makes a layer the model's output layer
/// is that its output reaches the loss, found by the loss rules' provenance analysis (a model's last <c>Sequential</c>
/// child, or the layer a custom <c>forward</c> returns, through <c>call</c>): a layer at the end of some inner block
/// (an attention projection, a shortcut) is never judged. Reported like the loss rules, in the member that computes the
/// loss: on the layer when it is created there, otherwise on the loss input, naming the layer.
/// </summary>
[DiagnosticAnalyzer(LanguageNames.CSharp)]
public sealed class OutputLayerWithoutBiasAnalyzer : LossPairingAnalyzer
{
    /// <summary>Diagnostic property: the name of the argument the fix removes (<c>bias</c> or <c>hasBias</c>).</summary>
    public const string FlagProperty = BiasBeforeNormalizationAnalyzer.FlagProperty;

    public override ImmutableArray<DiagnosticDescriptor> SupportedDiagnostics { get; } =
        ImmutableArray.Create(Descriptors.MLP006_OutputLayerWithoutBias);

    private protected override ImmutableArray<Diagnostic> Judge(LossPairing pairing)
    {
        var loss = pairing.Loss;
        if (loss.Kind is not (LossKind.CrossEntropy or LossKind.BinaryCrossEntropyWithLogits) || !pairing.Input.Is(TensorKind.Logits)
            || pairing.Input.Origins.IsEmpty)
        {
            return ImmutableArray<Diagnostic>.Empty;
        }

        // Every layer the logits may come from must be a bias-free one: then whichever path runs, the output layer has no bias.
        var services = pairing.Services;
        var layers = ImmutableArray.CreateBuilder<(SyntaxNode Origin, string Flag)>();
        foreach (var origin in pairing.Input.Origins)
        {
            if (BiasFreeLayer(services, origin) is not { } flag || MayBeDeliberate(services, origin))
            {
                return ImmutableArray<Diagnostic>.Empty;
            }

            layers.Add((origin, flag));
        }

        var diagnostics = ImmutableArray.CreateBuilder<Diagnostic>(layers.Count);
        foreach (var (origin, flag) in layers)
        {
            var (location, additional, _) = Place(pairing, origin, loss.Invocation.Syntax);
            diagnostics.Add(Diagnostic.Create(
                Descriptors.MLP006_OutputLayerWithoutBias, location, additional,
                ImmutableDictionary<string, string?>.Empty.Add(FlagProperty, flag),
                Named(pairing, origin), loss.Display, flag));
        }

        return diagnostics.MoveToImmutable();
    }

    /// <summary>
    /// The bias argument's name (<c>bias</c>, <c>hasBias</c>) when <paramref name="origin"/> creates a TorchSharp Linear or
    /// convolution whose bias a constant switches off; null for anything else (a bias on, or computed: <c>bias: useBias</c>).
    /// </summary>
    private static string? BiasFreeLayer(AnalysisServices services, SyntaxNode origin)
    {
        if (origin is not InvocationExpressionSyntax
            || services.SemanticModel(origin.SyntaxTree).GetOperation(origin) is not IInvocationOperation creation)
        {
            return null;
        }

        return LayerKinds.BiasEnabled(services.Torch, creation) == false ? LayerKinds.BiasFlag(services.Torch, creation.Type) : null;
    }

    /// <summary>
    /// True where a bias-free output layer is a known, deliberate design: a language model (the class that creates the
    /// head names an <c>Embedding</c>: heads are bias-free by convention, and often share the embedding's weights), or a
    /// normalization right before the layer, whose own shift already offsets every output. A <c>Sequential</c> child is
    /// judged by the child before it; a layer created anywhere else by whether its class names a normalization at all.
    /// </summary>
    private static bool MayBeDeliberate(AnalysisServices services, SyntaxNode origin)
    {
        if (origin.FirstAncestorOrSelf<TypeDeclarationSyntax>() is not { } declaration)
        {
            return true; // a top-level program's layer: judged only inside a class
        }

        var text = services.TextOf(origin.SyntaxTree, default);
        if (Mentions(text, declaration, "Embedding"))
        {
            return true;
        }

        if (ModuleComposition.SequentialCallAround(origin) is not { } sequentialSyntax)
        {
            return Mentions(text, declaration, "Norm");
        }

        if (services.SemanticModel(origin.SyntaxTree).GetOperation(sequentialSyntax) is not IInvocationOperation sequential
            || ModuleComposition.WrittenChildren(sequential) is not { IsDefault: false } children)
        {
            return true;
        }

        for (var i = 0; i < children.Length; i++)
        {
            if (children[i].Module.WithoutConversions()?.Syntax == origin)
            {
                return i > 0 && MayNormalize(services, children[i - 1].Module);
            }
        }

        return true;
    }

    /// <summary>True unless <paramref name="module"/> is known to be a TorchSharp module that is no normalization.</summary>
    private static bool MayNormalize(AnalysisServices services, IOperation module)
    {
        var type = module.WithoutConversions()?.Type;
        if (type is null || !services.Torch.IsInTorchSharp(type) || type.IsAbstract)
        {
            type = services.Modules.Describe(module, default)?.Type; // a local or field: what it holds
        }

        return type is null || !services.Torch.IsInTorchSharp(type) || type.IsAbstract || type.Name.Contains("Norm");
    }

    private static bool Mentions(string text, SyntaxNode declaration, string name)
        => text.IndexOf(name, declaration.SpanStart, declaration.Span.Length, System.StringComparison.Ordinal) >= 0;

    /// <summary>How the message names the layer: its code, and where it is when that is outside the member computing the loss.</summary>
    private static string Named(LossPairing pairing, SyntaxNode origin)
    {
        if (pairing.IsInMember(origin))
        {
            return Describe(origin);
        }

        var line = origin.GetLocation().GetLineSpan();
        var file = System.IO.Path.GetFileName(line.Path);
        return $"The layer {Describe(origin)} ({(file.Length == 0 ? "" : file + " ")}line {line.StartLinePosition.Line + 1})";
    }
}
