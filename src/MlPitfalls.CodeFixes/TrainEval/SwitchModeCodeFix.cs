using System.Collections.Generic;
using System.Collections.Immutable;
using System.Composition;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CodeActions;
using Microsoft.CodeAnalysis.CodeFixes;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using Microsoft.CodeAnalysis.Editing;
using Microsoft.CodeAnalysis.Formatting;
using MlPitfalls.Analyzers;
using MlPitfalls.Analyzers.TrainEval;

namespace MlPitfalls.CodeFixes.TrainEval;

/// <summary>
/// MLP007 and MLP008 fixes: switch the module's mode where the analyzer says it is safe. MLP007 inserts
/// <c>module.eval();</c> before the evaluation (the grad-disabled <c>using</c>, guard statement or measuring loop) and,
/// when that evaluation stands in a loop that goes on training, <c>module.train();</c> after it. MLP008 inserts
/// <c>module.train();</c> at the top of the epoch loop whose later iterations trained in evaluation mode, or before the
/// training loop. The analyzer chooses the place (additional location 0) and hands over the module's text.
/// </summary>
[ExportCodeFixProvider(LanguageNames.CSharp, Name = nameof(SwitchModeCodeFix)), Shared]
public sealed class SwitchModeCodeFix : CodeFixProvider
{
    public override ImmutableArray<string> FixableDiagnosticIds { get; } =
        ImmutableArray.Create(Descriptors.MLP007_EvaluatedInTrainingMode.Id, Descriptors.MLP008_TrainedInEvaluationMode.Id);

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
            if (PlanEdit(root, diagnostic) is not { } edit)
            {
                continue;
            }

            var title = edit.Kind switch
            {
                ModeRuleAnalyzer.InsertEvalFix => $"Call '{edit.Module}.eval()' before evaluating",
                ModeRuleAnalyzer.InsertEvalAndRestoreFix => $"Call '{edit.Module}.eval()' before evaluating and '{edit.Module}.train()' after",
                ModeRuleAnalyzer.InsertTrainAtLoopStartFix => $"Call '{edit.Module}.train()' at the start of the loop",
                _ => $"Call '{edit.Module}.train()' before training",
            };
            context.RegisterCodeFix(CodeAction.Create(title, ct => ApplyAsync(context.Document, new[] { edit }, ct), diagnostic.Id + ".SwitchMode"), diagnostic);
        }
    }

    private static async Task<Document?> FixAllInDocumentAsync(FixAllContext context, Document document, ImmutableArray<Diagnostic> diagnostics)
    {
        var root = await document.GetSyntaxRootAsync(context.CancellationToken).ConfigureAwait(false);
        if (root is null)
        {
            return null;
        }

        var edits = diagnostics.Select(d => PlanEdit(root, d)).Where(e => e is not null).Select(e => e!).ToList();
        return edits.Count == 0 ? null : await ApplyAsync(document, edits, context.CancellationToken).ConfigureAwait(false);
    }

    private sealed class Edit
    {
        public Edit(string kind, string module, StatementSyntax statement)
        {
            Kind = kind;
            Module = module;
            Statement = statement;
        }

        public string Kind { get; }

        public string Module { get; }

        public StatementSyntax Statement { get; }
    }

    private static Edit? PlanEdit(SyntaxNode root, Diagnostic diagnostic)
    {
        if (!diagnostic.Properties.TryGetValue(ModeRuleAnalyzer.FixProperty, out var kind) || kind is null
            || !diagnostic.Properties.TryGetValue(ModeRuleAnalyzer.ModuleProperty, out var module) || string.IsNullOrWhiteSpace(module)
            || diagnostic.AdditionalLocations.Count == 0
            || root.FindNode(diagnostic.AdditionalLocations[0].SourceSpan, getInnermostNodeForTie: true) is not StatementSyntax statement)
        {
            return null;
        }

        // The statement must stand where statements can be inserted around it: in a block, a switch section or a top-level program.
        var fitsAround = statement.Parent is BlockSyntax or SwitchSectionSyntax or GlobalStatementSyntax;
        if (kind == ModeRuleAnalyzer.InsertTrainAtLoopStartFix ? LoopBody(statement) is null : !fitsAround)
        {
            return null;
        }

        return new Edit(kind, module!, statement);
    }

    private static async Task<Document> ApplyAsync(Document document, IReadOnlyCollection<Edit> edits, CancellationToken cancellationToken)
    {
        var editor = await DocumentEditor.CreateAsync(document, cancellationToken).ConfigureAwait(false);
        var done = new HashSet<(StatementSyntax, string, string)>();
        foreach (var edit in edits)
        {
            if (!done.Add((edit.Statement, edit.Kind, edit.Module)))
            {
                continue; // two uses in one evaluation block or training loop: switch once
            }

            var anchor = edit.Statement.Parent is GlobalStatementSyntax global ? (SyntaxNode)global : edit.Statement;
            switch (edit.Kind)
            {
                case ModeRuleAnalyzer.InsertEvalFix:
                    InsertBefore(editor, anchor, Call(edit.Module, "eval", anchor));
                    break;
                case ModeRuleAnalyzer.InsertEvalAndRestoreFix:
                    InsertBefore(editor, anchor, Call(edit.Module, "eval", anchor));
                    editor.InsertAfter(anchor, Call(edit.Module, "train", anchor));
                    break;
                case ModeRuleAnalyzer.InsertTrainBeforeFix:
                    InsertBefore(editor, anchor, Call(edit.Module, "train", anchor));
                    break;
                case ModeRuleAnalyzer.InsertTrainAtLoopStartFix:
                    var body = LoopBody(edit.Statement)!;
                    if (body is BlockSyntax { Statements.Count: > 0 } block)
                    {
                        editor.InsertBefore(block.Statements[0], Call(edit.Module, "train", block.Statements[0]));
                    }
                    else if (body is BlockSyntax empty)
                    {
                        editor.ReplaceNode(empty, empty.AddStatements((StatementSyntax)Call(edit.Module, "train", empty)).WithAdditionalAnnotations(Formatter.Annotation));
                    }
                    else
                    {
                        editor.ReplaceNode(body, SyntaxFactory.Block((StatementSyntax)Call(edit.Module, "train", body), body).WithAdditionalAnnotations(Formatter.Annotation));
                    }

                    break;
            }
        }

        return editor.GetChangedDocument();
    }

    /// <summary>
    /// Inserts <paramref name="statement"/> right before <paramref name="anchor"/>, taking over the anchor's leading blank
    /// lines and comments, so the new call sits directly above the statement it switches the mode for.
    /// </summary>
    private static void InsertBefore(DocumentEditor editor, SyntaxNode anchor, SyntaxNode statement)
    {
        var leading = anchor.GetLeadingTrivia();
        var indentation = leading.Where(t => t.IsKind(SyntaxKind.WhitespaceTrivia)).LastOrDefault();
        editor.InsertBefore(anchor, statement.WithLeadingTrivia(leading));
        editor.ReplaceNode(anchor, (node, _) => node.WithLeadingTrivia(indentation == default ? SyntaxFactory.TriviaList() : SyntaxFactory.TriviaList(indentation)));
    }

    /// <summary><c>module.method();</c> indented like <paramref name="next"/>, on a line of its own (a global statement in a top-level program).</summary>
    private static SyntaxNode Call(string module, string method, SyntaxNode next)
    {
        var indentation = next.GetLeadingTrivia().Where(t => t.IsKind(SyntaxKind.WhitespaceTrivia)).LastOrDefault();
        var endOfLine = next.GetTrailingTrivia().Where(t => t.IsKind(SyntaxKind.EndOfLineTrivia)).LastOrDefault();
        var statement = SyntaxFactory.ParseStatement($"{module}.{method}();")
            .WithLeadingTrivia(indentation == default ? SyntaxFactory.TriviaList() : SyntaxFactory.TriviaList(indentation))
            .WithTrailingTrivia(endOfLine == default ? SyntaxFactory.ElasticCarriageReturnLineFeed : endOfLine)
            .WithAdditionalAnnotations(Formatter.Annotation);
        return next is GlobalStatementSyntax ? SyntaxFactory.GlobalStatement(statement) : statement;
    }

    private static StatementSyntax? LoopBody(StatementSyntax loop) => loop switch
    {
        ForStatementSyntax @for => @for.Statement,
        CommonForEachStatementSyntax @foreach => @foreach.Statement,
        WhileStatementSyntax @while => @while.Statement,
        DoStatementSyntax @do => @do.Statement,
        _ => null,
    };
}
