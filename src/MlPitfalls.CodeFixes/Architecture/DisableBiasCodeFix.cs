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
/// MLP005: create the layer without its bias — <c>bias: false</c> for a convolution, <c>hasBias: false</c> for
/// <c>Linear</c> (the analyzer names the argument). An argument already given keeps its place and style; the other
/// arguments are untouched. Each diagnostic edits its own creation call, so fix-all cannot overlap.
/// </summary>
[ExportCodeFixProvider(Microsoft.CodeAnalysis.LanguageNames.CSharp, Name = nameof(DisableBiasCodeFix)), Shared]
public sealed class DisableBiasCodeFix : CodeFixProvider
{
    public const string EquivalenceKey = "MlPitfalls.Architecture.DisableBias";

    public override ImmutableArray<string> FixableDiagnosticIds { get; } = ImmutableArray.Create(Descriptors.MLP005_BiasBeforeNormalization.Id);

    public override FixAllProvider GetFixAllProvider() => WellKnownFixAllProviders.BatchFixer;

    public override async Task RegisterCodeFixesAsync(CodeFixContext context)
    {
        var root = await context.Document.GetSyntaxRootAsync(context.CancellationToken).ConfigureAwait(false);
        var model = await context.Document.GetSemanticModelAsync(context.CancellationToken).ConfigureAwait(false);
        if (root is null || model is null)
        {
            return;
        }

        foreach (var diagnostic in context.Diagnostics)
        {
            if (!diagnostic.Properties.TryGetValue(BiasBeforeNormalizationAnalyzer.FlagProperty, out var flag) || flag is null
                || root.FindNode(diagnostic.Location.SourceSpan, getInnermostNodeForTie: true) is not InvocationExpressionSyntax creation
                || model.GetSymbolInfo(creation, context.CancellationToken).Symbol is not IMethodSymbol factory)
            {
                continue;
            }

            context.RegisterCodeFix(
                CodeAction.Create(
                    $"Create the layer with '{flag}: false'",
                    _ => Task.FromResult(context.Document.WithSyntaxRoot(root.ReplaceNode(creation, BooleanArgument.SetFalse(creation, factory, flag)))),
                    EquivalenceKey),
                diagnostic);
        }
    }
}
