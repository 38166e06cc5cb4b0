using System.Collections.Generic;
using System.Collections.Immutable;
using System.Composition;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using MlPitfalls.Analyzers;
using MlPitfalls.Analyzers.TrainingLoop;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CodeActions;
using Microsoft.CodeAnalysis.CodeFixes;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using Microsoft.CodeAnalysis.Editing;
using Microsoft.CodeAnalysis.Formatting;

namespace MlPitfalls.CodeFixes.TrainingLoop;

/// <summary>
/// MLP001 fixes: insert <c>optimizer.zero_grad();</c> as the first statement of the training loop, or move a clear that
/// sits between backward() and step() to just before backward(). The analyzer decides which applies and hands over
/// the optimizer expression and locations, so this class only edits syntax.
/// </summary>
[ExportCodeFixProvider(LanguageNames.CSharp, Name = nameof(GradientsNotClearedCodeFix)), Shared]
public sealed class GradientsNotClearedCodeFix : CodeFixProvider
{
    public const string InsertEquivalenceKey = "MLP001.InsertZeroGrad";
    public const string MoveEquivalenceKey = "MLP001.MoveZeroGradBeforeBackward";

    public override ImmutableArray<string> FixableDiagnosticIds { get; } =
        ImmutableArray.Create(Descriptors.MLP001_GradientsNotCleared.Id);

    public override FixAllProvider GetFixAllProvider() => FixAllProvider.Create(FixAllInDocumentAsync);

    public override async Task RegisterCodeFixesAsync(CodeFixContext context)
    {
        var root = await context.Document.GetSyntaxRootAsync(context.CancellationToken).ConfigureAwait(false);
        if (root is null)
        {
            return;
        }

        foreach (var diagnostic in context.Diagnostics)
        {
            var edit = PlanEdit(root, diagnostic);
            if (edit is null)
            {
                continue;
            }

            var (title, key) = edit.Value.Kind == GradientsNotClearedAnalyzer.InsertFix
                ? ($"Call '{edit.Value.Optimizer}.zero_grad()' at the start of the loop", InsertEquivalenceKey)
                : ("Move the gradient clearing before backward()", MoveEquivalenceKey);
            context.RegisterCodeFix(
                CodeAction.Create(title, ct => ApplyAsync(context.Document, new[] { edit.Value }, ct), key),
                diagnostic);
        }
    }

    private static async Task<Document?> FixAllInDocumentAsync(FixAllContext context, Document document, ImmutableArray<Diagnostic> diagnostics)
    {
        var root = await document.GetSyntaxRootAsync(context.CancellationToken).ConfigureAwait(false);
        if (root is null)
        {
            return null;
        }

        // Both kinds at once, whichever action fix-all started from: `dotnet format analyzers` fixes all of a rule's
        // diagnostics with the first action's key, so a project with a missing and a misplaced clear needed two runs.
        // The edits never overlap (one diagnostic per optimizer and loop, and ApplyAsync groups inserts by loop and moves
        // by clear).
        var edits = diagnostics
            .Select(d => PlanEdit(root, d))
            .Where(e => e is not null)
            .Select(e => e!.Value)
            .ToList();
        return edits.Count == 0 ? null : await ApplyAsync(document, edits, context.CancellationToken).ConfigureAwait(false);
    }

    /// <summary>One edit a diagnostic asks for, validated against the current syntax; null when it cannot be done safely.</summary>
    private readonly struct Edit
    {
        public Edit(string kind, StatementSyntax loop, string? optimizer, StatementSyntax? clear, StatementSyntax? backward)
        {
            Kind = kind;
            Loop = loop;
            Optimizer = optimizer;
            Clear = clear;
            Backward = backward;
        }

        public string Kind { get; }

        public StatementSyntax Loop { get; }

        public string? Optimizer { get; }

        public StatementSyntax? Clear { get; }

        public StatementSyntax? Backward { get; }
    }

    private static Edit? PlanEdit(SyntaxNode root, Diagnostic diagnostic)
    {
        if (!diagnostic.Properties.TryGetValue(GradientsNotClearedAnalyzer.FixProperty, out var kind)
            || diagnostic.AdditionalLocations.Count == 0
            // Innermost: in top-level statements the loop shares its span with the GlobalStatementSyntax around it.
            || root.FindNode(diagnostic.AdditionalLocations[0].SourceSpan, getInnermostNodeForTie: true) is not StatementSyntax loop
            || LoopBody(loop) is null)
        {
            return null;
        }

        if (kind == GradientsNotClearedAnalyzer.InsertFix
            && diagnostic.Properties.TryGetValue(GradientsNotClearedAnalyzer.OptimizerProperty, out var optimizer)
            && !string.IsNullOrWhiteSpace(optimizer))
        {
            return new Edit(kind!, loop, optimizer, null, null);
        }

        if (kind == GradientsNotClearedAnalyzer.MoveFix && diagnostic.AdditionalLocations.Count > 1)
        {
            // Only a clear that is a statement of its own, in the same block as the backward() statement, can move safely.
            var clear = root.FindNode(diagnostic.Location.SourceSpan, getInnermostNodeForTie: true).FirstAncestorOrSelf<ExpressionStatementSyntax>();
            var backward = root.FindNode(diagnostic.AdditionalLocations[1].SourceSpan, getInnermostNodeForTie: true).FirstAncestorOrSelf<StatementSyntax>();
            if (clear is not null && backward is not null && clear.Parent is BlockSyntax block && clear.Parent == backward.Parent
                && clear.SpanStart > backward.SpanStart
                && !CrossesDirective(block, backward, clear))
            {
                return new Edit(kind!, loop, null, clear, backward);
            }
        }

        return null;
    }

    private static async Task<Document> ApplyAsync(Document document, IReadOnlyCollection<Edit> edits, CancellationToken cancellationToken)
    {
        var editor = await DocumentEditor.CreateAsync(document, cancellationToken).ConfigureAwait(false);

        foreach (var group in edits.Where(e => e.Kind == GradientsNotClearedAnalyzer.InsertFix).GroupBy(e => e.Loop))
        {
            var body = LoopBody(group.Key)!;
            // After clears already at the top of the body, so fixing one optimizer at a time gives the same order as fix-all.
            var firstStatement = body is BlockSyntax { Statements.Count: > 0 } block
                ? block.Statements.FirstOrDefault(s => !IsZeroGradStatement(s)) ?? block.Statements[0]
                : body;
            var inserted = group.Select(e => e.Optimizer!).Distinct()
                .Select(optimizer => ZeroGradStatement(optimizer, firstStatement))
                .ToList();
            if (body is BlockSyntax)
            {
                editor.InsertBefore(firstStatement, inserted);
            }
            else
            {
                editor.ReplaceNode(body, SyntaxFactory.Block(inserted.Append(body)).WithAdditionalAnnotations(Formatter.Annotation));
            }
        }

        // One clear can be reported for each optimizer it clears (model.zero_grad() for two optimizers of model): move it once.
        foreach (var move in edits.Where(e => e.Kind == GradientsNotClearedAnalyzer.MoveFix).GroupBy(e => e.Clear).Select(g => g.First()))
        {
            editor.RemoveNode(move.Clear!, SyntaxRemoveOptions.KeepNoTrivia);
            editor.InsertBefore(move.Backward!, move.Clear!.WithAdditionalAnnotations(Formatter.Annotation));
        }

        return editor.GetChangedDocument();
    }

    /// <summary><c>optimizer.zero_grad();</c> indented like <paramref name="next"/>, on a line of its own.</summary>
    private static StatementSyntax ZeroGradStatement(string optimizer, StatementSyntax next)
    {
        var indentation = next.GetLeadingTrivia().Where(t => t.IsKind(SyntaxKind.WhitespaceTrivia)).LastOrDefault();
        var endOfLine = next.GetTrailingTrivia().Where(t => t.IsKind(SyntaxKind.EndOfLineTrivia)).LastOrDefault();
        return SyntaxFactory.ParseStatement($"{optimizer}.zero_grad();")
            .WithLeadingTrivia(indentation == default ? SyntaxFactory.TriviaList() : SyntaxFactory.TriviaList(indentation))
            .WithTrailingTrivia(endOfLine == default ? SyntaxFactory.ElasticCarriageReturnLineFeed : endOfLine)
            .WithAdditionalAnnotations(Formatter.Annotation);
    }

    /// <summary>
    /// True when a preprocessor directive stands among the statements from <paramref name="backward"/> to
    /// <paramref name="clear"/>: moving the clear would carry it into or out of a conditional region, or unbalance it.
    /// </summary>
    private static bool CrossesDirective(BlockSyntax block, StatementSyntax backward, StatementSyntax clear)
    {
        var from = block.Statements.IndexOf(backward);
        var to = block.Statements.IndexOf(clear);
        for (var i = from; i <= to; i++)
        {
            if (block.Statements[i].ContainsDirectives)
            {
                return true;
            }
        }

        return false;
    }

    private static bool IsZeroGradStatement(StatementSyntax statement)
        => statement is ExpressionStatementSyntax { Expression: InvocationExpressionSyntax { Expression: MemberAccessExpressionSyntax { Name.Identifier.ValueText: "zero_grad" } } };

    private static StatementSyntax? LoopBody(StatementSyntax loop) => loop switch
    {
        ForStatementSyntax @for => @for.Statement,
        CommonForEachStatementSyntax @foreach => @foreach.Statement,
        WhileStatementSyntax @while => @while.Statement,
        DoStatementSyntax @do => @do.Statement,
        _ => null,
    };
}
