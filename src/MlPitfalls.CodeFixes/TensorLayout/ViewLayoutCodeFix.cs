using System.Collections.Immutable;
using System.Composition;
using System.Linq;
using System.Threading.Tasks;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CodeActions;
using Microsoft.CodeAnalysis.CodeFixes;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using MlPitfalls.Analyzers;
using MlPitfalls.Analyzers.TensorLayout;

namespace MlPitfalls.CodeFixes.TensorLayout;

/// <summary>
/// Fixes for the layout rules. MLP009: write the permute that was meant (<c>x.permute(0, 2, 3, 1)</c>), followed by a
/// reshape with the original sizes when they also merge dimensions; the analyzer passes the permutation. MLP010: insert
/// <c>contiguous()</c> before the view, or use <c>reshape</c>, which copies only when it must.
/// </summary>
[ExportCodeFixProvider(LanguageNames.CSharp, Name = nameof(ViewLayoutCodeFix)), Shared]
public sealed class ViewLayoutCodeFix : CodeFixProvider
{
    public const string PermuteKey = "MlPitfalls.TensorLayout.Permute";
    public const string ContiguousKey = "MlPitfalls.TensorLayout.Contiguous";
    public const string ReshapeKey = "MlPitfalls.TensorLayout.Reshape";

    public override ImmutableArray<string> FixableDiagnosticIds { get; } = ImmutableArray.Create(
        Descriptors.MLP009_ViewReordersDimensions.Id,
        Descriptors.MLP010_ViewOfPermutedTensor.Id);

    public override FixAllProvider GetFixAllProvider() => WellKnownFixAllProviders.BatchFixer;

    public override async Task RegisterCodeFixesAsync(CodeFixContext context)
    {
        var root = await context.Document.GetSyntaxRootAsync(context.CancellationToken).ConfigureAwait(false);
        if (root is null)
        {
            return;
        }

        foreach (var diagnostic in context.Diagnostics)
        {
            // The diagnostic starts at the method name: view(...) or reshape(...).
            if (root.FindToken(diagnostic.Location.SourceSpan.Start).Parent is not IdentifierNameSyntax name
                || name.Parent is not MemberAccessExpressionSyntax { Name: var member } access || member != name
                || access.Parent is not InvocationExpressionSyntax call || IsWrittenThrough(call))
            {
                continue;
            }

            if (diagnostic.Id == Descriptors.MLP009_ViewReordersDimensions.Id)
            {
                if (diagnostic.Properties.TryGetValue(ViewCallAnalyzer.PermutationProperty, out var permutation) && permutation is { Length: > 0 }
                    && diagnostic.Properties.TryGetValue(ViewCallAnalyzer.PermuteOnlyProperty, out var permuteOnly))
                {
                    var dims = permutation.Split(',');
                    var title = permuteOnly == "true"
                        ? $"Use permute({string.Join(", ", dims)})"
                        : $"Use permute({string.Join(", ", dims)}) and then reshape";
                    context.RegisterCodeFix(
                        CodeAction.Create(title, _ => Replace(context.Document, root, call, Permute(call, access, dims, permuteOnly == "true")), PermuteKey),
                        diagnostic);
                }

                continue;
            }

            context.RegisterCodeFix(
                CodeAction.Create("Call contiguous() before view", _ => Replace(context.Document, root, call, Contiguous(call, access)), ContiguousKey),
                diagnostic);
            context.RegisterCodeFix(
                CodeAction.Create("Use reshape instead of view", _ => Replace(context.Document, root, call, call.WithExpression(access.WithName(SyntaxFactory.IdentifierName("reshape").WithTriviaFrom(name)))), ReshapeKey),
                diagnostic);
        }
    }

    /// <summary><c>x.view(args)</c> → <c>x.permute(p)</c>, or <c>x.permute(p).reshape(args)</c>.</summary>
    private static InvocationExpressionSyntax Permute(InvocationExpressionSyntax call, MemberAccessExpressionSyntax access, string[] dims, bool permuteOnly)
    {
        var arguments = SyntaxFactory.ArgumentList(SyntaxFactory.SeparatedList(dims.Select(d =>
            SyntaxFactory.Argument(SyntaxFactory.LiteralExpression(SyntaxKind.NumericLiteralExpression, SyntaxFactory.Literal(int.Parse(d, System.Globalization.CultureInfo.InvariantCulture)))))));
        var permute = SyntaxFactory.InvocationExpression(
            access.WithName(SyntaxFactory.IdentifierName("permute").WithTriviaFrom(access.Name)),
            permuteOnly ? arguments.WithTriviaFrom(call.ArgumentList) : arguments);
        if (permuteOnly)
        {
            return permute.WithTriviaFrom(call);
        }

        return call.WithExpression(SyntaxFactory.MemberAccessExpression(SyntaxKind.SimpleMemberAccessExpression, permute, SyntaxFactory.IdentifierName("reshape")));
    }

    /// <summary>
    /// True when the code writes into the view (<c>x.view(...).copy_(src)</c>, <c>.zero_()</c>, <c>x.view(...)[i] = v</c>):
    /// every fix copies when it must (permute then reshape, contiguous, reshape), and the write would then go to a
    /// temporary instead of the tensor, silently.
    /// </summary>
    private static bool IsWrittenThrough(InvocationExpressionSyntax call)
    {
        SyntaxNode node = call;
        while (node.Parent is ParenthesizedExpressionSyntax parenthesized)
        {
            node = parenthesized;
        }

        return node.Parent switch
        {
            MemberAccessExpressionSyntax { Name.Identifier.ValueText: var name } member when member.Expression == node
                => name.EndsWith("_", System.StringComparison.Ordinal) && member.Parent is InvocationExpressionSyntax,
            ElementAccessExpressionSyntax element when element.Expression == node
                => element.Parent is AssignmentExpressionSyntax assignment && assignment.Left == element,
            ArgumentSyntax { RefKindKeyword.RawKind: not 0 } => true,
            ArgumentSyntax { NameColon.Name.Identifier.ValueText: "out" } => true,
            _ => false,
        };
    }

    /// <summary><c>x.view(args)</c> → <c>x.contiguous().view(args)</c>; on its own line of a fluent chain, a line of its own.</summary>
    private static InvocationExpressionSyntax Contiguous(InvocationExpressionSyntax call, MemberAccessExpressionSyntax access)
    {
        var receiver = access.Expression;
        var onItsOwnLine = receiver.GetTrailingTrivia().Any(t => t.IsKind(SyntaxKind.EndOfLineTrivia));
        var dot = onItsOwnLine ? SyntaxFactory.Token(SyntaxKind.DotToken).WithLeadingTrivia(access.OperatorToken.LeadingTrivia) : SyntaxFactory.Token(SyntaxKind.DotToken);
        var arguments = onItsOwnLine ? SyntaxFactory.ArgumentList().WithTrailingTrivia(receiver.GetTrailingTrivia()) : SyntaxFactory.ArgumentList();
        var contiguous = SyntaxFactory.InvocationExpression(
            SyntaxFactory.MemberAccessExpression(SyntaxKind.SimpleMemberAccessExpression, receiver, dot, SyntaxFactory.IdentifierName("contiguous")),
            arguments);
        return call.WithExpression(access.WithExpression(contiguous));
    }

    private static Task<Document> Replace(Document document, SyntaxNode root, SyntaxNode old, SyntaxNode replacement)
        => Task.FromResult(document.WithSyntaxRoot(root.ReplaceNode(old, replacement)));
}
