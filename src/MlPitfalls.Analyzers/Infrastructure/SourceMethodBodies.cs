using System.Linq;
using System.Threading;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp.Syntax;

namespace MlPitfalls.Analyzers.Infrastructure;

/// <summary>
/// What every analysis asks about a source method's body before following a call into it: whether it is an iterator
/// (its code runs while it is enumerated, not at the call), and which declaration holds the body.
/// </summary>
internal static class SourceMethodBodies
{
    /// <summary>True for a body with a <c>yield</c> of its own (not one in a lambda or local function inside it): an iterator, whose code runs while it is enumerated.</summary>
    public static bool IsIterator(SyntaxNode declaration)
        => declaration.DescendantNodes(n => n == declaration || n is not (AnonymousFunctionExpressionSyntax or LocalFunctionStatementSyntax)).OfType<YieldStatementSyntax>().Any();

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
