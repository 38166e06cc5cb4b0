using System.Collections.Immutable;
using System.Threading;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
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
/// MLP006. A layer whose raw output a logits loss (CrossEntropyLoss, BCEWithLogitsLoss) reads is a Linear or convolution
/// created with its bias switched off by a constant (the input must be some layer's raw output on every path; each
/// bias-free one is reported). What makes a layer the model's output layer
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

        // Each layer the logits may come from is an output layer on the paths that bring it (as MLP002 reports each
        // activation): every bias-free one is reported, so fixing one leaves the others reported.
        var services = pairing.Services;
        var layers = ImmutableArray.CreateBuilder<(SyntaxNode Origin, string Flag)>();
        foreach (var origin in pairing.Input.Origins)
        {
            if (BiasFreeLayer(services, origin, pairing.CancellationToken) is { } flag && !MayBeDeliberate(services, origin, pairing.CancellationToken))
            {
                layers.Add((origin, flag));
            }
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

        return diagnostics.ToImmutable();
    }

    /// <summary>
    /// The bias argument's name (<c>bias</c>, <c>hasBias</c>) when <paramref name="origin"/> creates a TorchSharp Linear or
    /// convolution whose bias a constant switches off; null for anything else (a bias on, or computed: <c>bias: useBias</c>).
    /// </summary>
    private static string? BiasFreeLayer(AnalysisServices services, SyntaxNode origin, CancellationToken cancellationToken)
    {
        if (origin is not InvocationExpressionSyntax
            || services.SemanticModel(origin.SyntaxTree)?.GetOperation(origin, cancellationToken) is not IInvocationOperation creation)
        {
            return null;
        }

        return LayerKinds.BiasEnabled(services.Torch, creation) == false ? LayerKinds.BiasFlag(services.Torch, creation.Type) : null;
    }

    /// <summary>
    /// True where a bias-free output layer may be a deliberate design, or where what runs before it is not seen:
    /// <list type="bullet">
    /// <item>a language model: the code around the layer (its class, every part, or a top-level program's file) names an
    /// <c>Embedding</c> (heads are bias-free by convention, and often share the embedding's weights);</item>
    /// <item>a module class that another module class names: it may be a head module whose parent runs a normalization
    /// right before it, or ties its weights;</item>
    /// <item>a layer made by a factory method (one creation for many layers: its call sites are not known here);</item>
    /// <item>a normalization right before the layer, whose shift reaches every output: for a <c>Sequential</c> child, the
    /// child before it (past dropout, flatten and the like); otherwise, or for a first child, any normalization the code
    /// around it names (<c>Norm</c>, <c>layer_norm</c>, <c>normalize</c>, ...).</item>
    /// </list>
    /// </summary>
    private static bool MayBeDeliberate(AnalysisServices services, SyntaxNode origin, CancellationToken cancellationToken)
    {
        if (services.SemanticModel(origin.SyntaxTree) is not { } model)
        {
            return true; // declared in a referenced compilation: nothing here can tell
        }

        var type = origin.FirstAncestorOrSelf<TypeDeclarationSyntax>() is { } declaration
            ? model.GetDeclaredSymbol(declaration, cancellationToken)
            : null;
        bool Mentions(string text)
        {
            if (type is null)
            {
                return services.TextOf(origin.SyntaxTree, cancellationToken).IndexOf(text, System.StringComparison.Ordinal) >= 0;
            }

            // The class and its source base classes: a base's forward helpers run before the head too.
            for (var current = type; current is not null && current.DeclaringSyntaxReferences.Length > 0; current = current.BaseType)
            {
                if (services.MentionsInItsText(current, text, cancellationToken))
                {
                    return true;
                }
            }

            return false;
        }

        if (Mentions("Embedding") || (type is not null && IsNamedByAnotherModule(services, type, cancellationToken)))
        {
            return true;
        }

        if (ModuleComposition.SequentialCallAround(origin) is { } sequentialSyntax)
        {
            if (model.GetOperation(sequentialSyntax, cancellationToken) is not IInvocationOperation sequential
                || ModuleComposition.WrittenChildren(sequential) is not { IsDefault: false } children)
            {
                return true;
            }

            var at = -1;
            for (var i = 0; i < children.Length && at < 0; i++)
            {
                at = children[i].Module.WithoutConversions()?.Syntax == origin ? i : -1;
            }

            for (var before = at - 1; before >= 0; before--)
            {
                if (!PassesValuesOn(services, children[before].Module, cancellationToken))
                {
                    return MayNormalize(services, children[before].Module, cancellationToken);
                }
            }
        }
        else if (origin.FirstAncestorOrSelf<MethodDeclarationSyntax>() is { } method
                 && model.GetDeclaredSymbol(method, cancellationToken) is { } factory && services.Torch.IsModule(factory.ReturnType))
        {
            return true;
        }

        return Mentions("Norm") || Mentions("norm");
    }

    /// <summary>
    /// True when another module class in the compilation names <paramref name="type"/> (a field, a child, a creation), or
    /// code anywhere puts a <c>new</c> one into a <c>Sequential</c>.
    /// </summary>
    private static bool IsNamedByAnotherModule(AnalysisServices services, INamedTypeSymbol type, CancellationToken cancellationToken)
    {
        if (!services.Torch.IsModule(type))
        {
            return false;
        }

        foreach (var tree in services.Compilation.SyntaxTrees)
        {
            foreach (var token in services.TokensNaming(tree.GetRoot(cancellationToken), type.Name, cancellationToken))
            {
                // new Head() as a Sequential child: a part of a larger model, wherever that Sequential is built.
                if (token.Parent?.Parent is ObjectCreationExpressionSyntax creation && ModuleComposition.SequentialCallAround(creation) is not null)
                {
                    return true;
                }

                if (token.Parent?.FirstAncestorOrSelf<TypeDeclarationSyntax>() is { } user
                    && services.SemanticModel(tree)?.GetDeclaredSymbol(user, cancellationToken) is { } other // the compilation's own tree
                    && !SymbolEqualityComparer.Default.Equals(other, type) && services.Torch.IsModule(other))
                {
                    return true;
                }
            }
        }

        return false;
    }

    /// <summary>True for a TorchSharp module that passes its input's values on (dropout, flatten, identity, reshapes).</summary>
    private static bool PassesValuesOn(AnalysisServices services, IOperation module, CancellationToken cancellationToken)
        => ModuleType(services, module, cancellationToken) is { } type && services.Torch.ShapeOnlyModules.NameOf(type) is not null;

    /// <summary>
    /// True unless <paramref name="module"/> is known to be a TorchSharp module that is no normalization; a
    /// <c>Sequential</c> is judged by its last child.
    /// </summary>
    private static bool MayNormalize(AnalysisServices services, IOperation module, CancellationToken cancellationToken)
    {
        var described = services.Modules.Describe(module, cancellationToken);
        if (described is { Children: { IsDefault: false } children } && services.Torch.Containers.NameOf(described.Type) == "Sequential")
        {
            return children.IsEmpty || MayNormalize(services, children[children.Length - 1].Expression, cancellationToken);
        }

        var type = ModuleType(services, module, cancellationToken);
        return type is null || !services.Torch.IsInTorchSharp(type) || type.IsAbstract || type.Name.Contains("Norm")
               || services.Torch.Containers.NameOf(type) is not null;
    }

    /// <summary>The concrete type of a module expression: its own, or what the composition model says it holds.</summary>
    private static ITypeSymbol? ModuleType(AnalysisServices services, IOperation module, CancellationToken cancellationToken)
    {
        var type = module.WithoutConversions()?.Type;
        return type is null || !services.Torch.IsInTorchSharp(type) || type.IsAbstract
            ? services.Modules.Describe(module, cancellationToken)?.Type
            : type;
    }

    /// <summary>How the message names the layer: its code, and where it is when that is outside the member computing the loss.</summary>
    private static string Named(LossPairing pairing, SyntaxNode origin)
    {
        if (pairing.IsInMember(origin))
        {
            return Describe(origin);
        }

        return "The layer " + DescribeWhere(origin);
    }
}
