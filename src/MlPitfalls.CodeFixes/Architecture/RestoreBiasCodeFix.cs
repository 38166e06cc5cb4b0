using System.Collections.Immutable;
using System.Composition;
using System.Threading;
using System.Threading.Tasks;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CodeActions;
using Microsoft.CodeAnalysis.CodeFixes;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using MlPitfalls.Analyzers;
using MlPitfalls.Analyzers.Architecture;
using MlPitfalls.CodeFixes.Infrastructure;

namespace MlPitfalls.CodeFixes.Architecture;

/// <summary>
/// MLP006: give the output layer its bias back by removing <c>hasBias: false</c> / <c>bias: false</c> (the default is a
/// bias). The layer is the diagnostic's location when it is created in the member that computes the loss, otherwise
/// additional location 1, which may lie in another document of the project; every other argument is untouched.
/// </summary>
[ExportCodeFixProvider(LanguageNames.CSharp, Name = nameof(RestoreBiasCodeFix)), Shared]
public sealed class RestoreBiasCodeFix : CodeFixProvider
{
    public const string EquivalenceKey = "MlPitfalls.Architecture.RestoreBias";

    public override ImmutableArray<string> FixableDiagnosticIds { get; } = ImmutableArray.Create(Descriptors.MLP006_OutputLayerWithoutBias.Id);

    public override FixAllProvider GetFixAllProvider() => WellKnownFixAllProviders.BatchFixer;

    public override Task RegisterCodeFixesAsync(CodeFixContext context)
    {
        foreach (var diagnostic in context.Diagnostics)
        {
            if (!diagnostic.Properties.TryGetValue(OutputLayerWithoutBiasAnalyzer.FlagProperty, out var flag) || flag is null)
            {
                continue;
            }

            var layer = diagnostic.AdditionalLocations.Count > 1 ? diagnostic.AdditionalLocations[1] : diagnostic.Location;
            if (layer.SourceTree is not { } tree || context.Document.Project.Solution.GetDocument(tree) is not { } document)
            {
                continue;
            }

            context.RegisterCodeFix(
                CodeAction.Create(
                    $"Give the output layer a bias (remove '{flag}: false')",
                    token => RemoveFlagAsync(document, layer, flag, token),
                    EquivalenceKey),
                diagnostic);
        }

        return Task.CompletedTask;
    }

    private static async Task<Solution> RemoveFlagAsync(Document document, Location layer, string flag, CancellationToken cancellationToken)
    {
        var root = await document.GetSyntaxRootAsync(cancellationToken).ConfigureAwait(false);
        var model = await document.GetSemanticModelAsync(cancellationToken).ConfigureAwait(false);
        if (root?.FindNode(layer.SourceSpan, getInnermostNodeForTie: true) is not InvocationExpressionSyntax creation
            || model?.GetSymbolInfo(creation, cancellationToken).Symbol is not IMethodSymbol factory)
        {
            return document.Project.Solution;
        }

        return document.WithSyntaxRoot(root.ReplaceNode(creation, BooleanArgument.Remove(creation, factory, flag))).Project.Solution;
    }
}
