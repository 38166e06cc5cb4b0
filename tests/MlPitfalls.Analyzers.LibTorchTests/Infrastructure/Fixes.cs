using System;
using System.Collections.Generic;
using System.Collections.Immutable;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CodeActions;
using Microsoft.CodeAnalysis.CodeFixes;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using Microsoft.CodeAnalysis.Text;
using MlPitfalls.CodeFixes.TensorLayout;

namespace MlPitfalls.Analyzers.LibTorchTests.Infrastructure;

/// <summary>
/// The layout code fix applied as an IDE applies it: a document in an <see cref="AdhocWorkspace"/>, the analyzers'
/// diagnostics, the code action with the wanted equivalence key (one diagnostic), or the fix-all provider (the document).
/// </summary>
internal static class Fixes
{
    private static readonly ViewLayoutCodeFix Provider = new();

    public static Document Document(string source)
    {
        var workspace = new AdhocWorkspace();
        var project = workspace.AddProject(ProjectInfo.Create(
            ProjectId.CreateNewId(), VersionStamp.Create(), "Snippets", "Snippets", LanguageNames.CSharp,
            compilationOptions: Snippets.Options, metadataReferences: Snippets.References));
        return workspace.AddDocument(project.Id, "Snippets.cs", SourceText.From(source));
    }

    public static async Task<ImmutableArray<Diagnostic>> DiagnosticsAsync(Document document, string id)
    {
        var compilation = (await document.Project.GetCompilationAsync().ConfigureAwait(false))!;
        Snippets.ThrowOnErrors(compilation);
        return (await Snippets.AnalyzeAsync(compilation).ConfigureAwait(false)).Where(d => d.Id == id).OrderBy(d => d.Location.SourceSpan.Start).ToImmutableArray();
    }

    /// <summary>The fix with <paramref name="equivalenceKey"/> for one diagnostic, applied: the whole new document text.</summary>
    public static async Task<string> ApplyAsync(Document document, Diagnostic diagnostic, string equivalenceKey)
    {
        var actions = new List<CodeAction>();
        var context = new CodeFixContext(document, diagnostic, (action, _) => actions.Add(action), CancellationToken.None);
        await Provider.RegisterCodeFixesAsync(context).ConfigureAwait(false);
        var chosen = actions.Where(a => a.EquivalenceKey == equivalenceKey).ToList();
        if (chosen.Count != 1)
        {
            throw new InvalidOperationException($"Expected one code action '{equivalenceKey}' for {diagnostic}, got: {string.Join(", ", actions.Select(a => a.EquivalenceKey))}");
        }

        return await TextAfterAsync(document, chosen[0]).ConfigureAwait(false);
    }

    /// <summary>Fix-all in the document (the provider's fix-all, <see cref="FixAllScope.Document"/>): the new document text.</summary>
    public static async Task<string> FixAllAsync(Document document, string id, string equivalenceKey)
    {
        var diagnostics = await DiagnosticsAsync(document, id).ConfigureAwait(false);
        var context = new FixAllContext(
            document, Provider, FixAllScope.Document, equivalenceKey, new[] { id }, new FixedDiagnostics(diagnostics), CancellationToken.None);
        var action = await Provider.GetFixAllProvider().GetFixAsync(context).ConfigureAwait(false)
                     ?? throw new InvalidOperationException("The fix-all provider offered nothing.");
        return await TextAfterAsync(document, action).ConfigureAwait(false);
    }

    private static async Task<string> TextAfterAsync(Document document, CodeAction action)
    {
        var operations = await action.GetOperationsAsync(CancellationToken.None).ConfigureAwait(false);
        var solution = operations.OfType<ApplyChangesOperation>().Single().ChangedSolution;
        return (await solution.GetDocument(document.Id)!.GetTextAsync().ConfigureAwait(false)).ToString();
    }

    /// <summary>The statements of method <paramref name="name"/> in <paramref name="source"/>, one per line.</summary>
    public static string BodyOf(string source, string name)
    {
        var method = Microsoft.CodeAnalysis.CSharp.CSharpSyntaxTree.ParseText(source).GetRoot().DescendantNodes().OfType<MethodDeclarationSyntax>()
            .Single(m => m.Identifier.ValueText == name);
        return string.Join("\n", method.Body!.Statements.Select(s => s.ToString()));
    }

    private sealed class FixedDiagnostics : FixAllContext.DiagnosticProvider
    {
        private readonly ImmutableArray<Diagnostic> _diagnostics;

        public FixedDiagnostics(ImmutableArray<Diagnostic> diagnostics) => _diagnostics = diagnostics;

        public override Task<IEnumerable<Diagnostic>> GetAllDiagnosticsAsync(Project project, CancellationToken cancellationToken)
            => Task.FromResult<IEnumerable<Diagnostic>>(_diagnostics);

        public override Task<IEnumerable<Diagnostic>> GetDocumentDiagnosticsAsync(Document document, CancellationToken cancellationToken)
            => Task.FromResult<IEnumerable<Diagnostic>>(_diagnostics);

        public override Task<IEnumerable<Diagnostic>> GetProjectDiagnosticsAsync(Project project, CancellationToken cancellationToken)
            => Task.FromResult<IEnumerable<Diagnostic>>(ImmutableArray<Diagnostic>.Empty);
    }
}
