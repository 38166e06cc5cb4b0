using System.Linq;
using System.Runtime.CompilerServices;
using System.Threading;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using Microsoft.CodeAnalysis.Text;

namespace MlPitfalls.Analyzers.Infrastructure;

/// <summary>
/// What every analysis asks about a source method's body before following a call into it: whether it is an iterator
/// (its code runs while it is enumerated, not at the call), and which declaration holds the body.
/// </summary>
internal static class SourceMethodBodies
{
    /// <summary>
    /// True for a body with a <c>yield</c> of its own (not one in a lambda or local function inside it): an iterator, whose
    /// code runs while it is enumerated. Asked at every call into a source method, so the answer is kept per declaration,
    /// and a declaration whose text has no <c>yield</c> (nearly every one) is answered without a walk over its nodes.
    /// </summary>
    public static bool IsIterator(SyntaxNode declaration)
        => Iterators.GetValue(declaration, static d => new StrongBox<bool>(
            MayBeWritten(d, "yield")
            && d.DescendantNodes(n => n == d || n is not (AnonymousFunctionExpressionSyntax or LocalFunctionStatementSyntax)).OfType<YieldStatementSyntax>().Any())).Value;

    private static readonly ConditionalWeakTable<SyntaxNode, StrongBox<bool>> Iterators = new();

    /// <summary>
    /// False when <paramref name="node"/>'s text cannot hold the keyword <paramref name="word"/>: the word does not occur
    /// in it, nor a formatting character (Unicode category Cf, which C# drops from a name). A keyword written with a
    /// Unicode escape is an identifier, not the keyword. True when the tree has no text to read.
    /// </summary>
    private static bool MayBeWritten(SyntaxNode node, string word)
    {
        if (!node.SyntaxTree.TryGetText(out var text))
        {
            return true;
        }

        var first = word[0];
        for (int at = node.Span.Start, last = node.Span.End - word.Length; at < node.Span.End; at++)
        {
            var c = text[at];
            if (AnalysisServices.IsFormatCharacter(c))
            {
                return true;
            }

            if (c == first && at <= last && Spells(text, at, word))
            {
                return true;
            }
        }

        return false;
    }

    private static bool Spells(SourceText text, int at, string word)
    {
        for (var i = 1; i < word.Length; i++)
        {
            if (text[at + i] != word[i])
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>True for a method (or local function) whose body is an iterator: its code runs while it is enumerated, not at the call.</summary>
    public static bool IsIterator(IMethodSymbol method, CancellationToken cancellationToken)
        => method.DeclaringSyntaxReferences.Any(r => IsIterator(r.GetSyntax(cancellationToken)));

    /// <summary>
    /// The declaration that holds <paramref name="method"/>'s body: its original definition, or for a partial method the
    /// implementation part (asked of the original definition: a constructed generic method has no implementation part).
    /// </summary>
    public static IMethodSymbol DefinitionWithBody(IMethodSymbol method)
        => method.OriginalDefinition.PartialImplementationPart ?? method.OriginalDefinition;
}
