using System.Collections.Concurrent;
using System.Linq;
using System.Threading;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using Microsoft.CodeAnalysis.Operations;

namespace MlPitfalls.Analyzers.Infrastructure;

/// <summary>
/// Finds the body of a method, local function or accessor declared in the compilation being analysed, so that a
/// rule can follow a call (<c>TrainStep(batch)</c>, <c>ZeroGrads()</c>) into what it does. One instance lives for
/// one compilation-start scope; bodies are bound once and shared by every operation analysed in it.
/// </summary>
internal sealed class SourceMethodBodies
{
    private readonly Compilation _compilation;
    private readonly ConcurrentDictionary<IMethodSymbol, IOperation?> _bodies = new(SymbolEqualityComparer.Default);

    public SourceMethodBodies(Compilation compilation) => _compilation = compilation;

    /// <summary>
    /// The body of <paramref name="method"/>, or null when it has none the compiler can see: a metadata method, an
    /// abstract or interface member, an extern or a partial declaration without implementation.
    /// </summary>
    public IOperation? GetBody(IMethodSymbol method, SemanticModel callerModel, CancellationToken cancellationToken)
    {
        var definition = DefinitionWithBody(method);
        if (definition.IsAbstract || definition.IsExtern || definition.DeclaringSyntaxReferences.Length == 0)
        {
            return null;
        }

        if (_bodies.TryGetValue(definition, out var cached))
        {
            return cached;
        }

        var body = Bind(definition, callerModel, cancellationToken);
        return _bodies.GetOrAdd(definition, body);
    }

    /// <summary>True for a body with a <c>yield</c> of its own (not one in a lambda or local function inside it): an iterator, whose code runs while it is enumerated.</summary>
    public static bool IsIterator(SyntaxNode declaration)
        => declaration.DescendantNodes(n => n == declaration || n is not (AnonymousFunctionExpressionSyntax or LocalFunctionStatementSyntax)).OfType<YieldStatementSyntax>().Any();

    /// <summary>
    /// The declaration that holds <paramref name="method"/>'s body: its original definition, or for a partial method the
    /// implementation part (asked of the original definition: a constructed generic method has no implementation part).
    /// </summary>
    public static IMethodSymbol DefinitionWithBody(IMethodSymbol method)
        => method.OriginalDefinition.PartialImplementationPart ?? method.OriginalDefinition;

    private IOperation? Bind(IMethodSymbol method, SemanticModel callerModel, CancellationToken cancellationToken)
        => GetOperation(method.DeclaringSyntaxReferences[0].GetSyntax(cancellationToken), callerModel, cancellationToken) switch
        {
            IMethodBodyOperation body => (IOperation?)body.BlockBody ?? body.ExpressionBody,
            IConstructorBodyOperation body => (IOperation?)body.BlockBody ?? body.ExpressionBody,
            ILocalFunctionOperation localFunction => localFunction.Body,
            _ => null,
        };

    /// <summary>
    /// The operation for a declaration anywhere in the compilation (a field initializer, a constructor, ...). Not cached:
    /// for occasional look-ups once a rule already knows it has something to report.
    /// </summary>
    public IOperation? GetOperation(SyntaxNode syntax, SemanticModel callerModel, CancellationToken cancellationToken)
    {
        if (!_compilation.ContainsSyntaxTree(syntax.SyntaxTree))
        {
            return null; // a declaration in another compilation (a project reference in the IDE): not bindable here
        }

        var model = syntax.SyntaxTree == callerModel.SyntaxTree
            ? callerModel
#pragma warning disable RS1030 // Following a call into another file needs that file's semantic model; bodies are bound once and cached.
            : _compilation.GetSemanticModel(syntax.SyntaxTree);
#pragma warning restore RS1030
        return model.GetOperation(syntax, cancellationToken);
    }
}
