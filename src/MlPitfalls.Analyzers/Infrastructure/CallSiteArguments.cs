using System.Collections.Concurrent;
using System.Threading;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using Microsoft.CodeAnalysis.Operations;

namespace MlPitfalls.Analyzers.Infrastructure;

/// <summary>
/// What a <c>bool</c> parameter of a private source method or constructor is at every call: a factory
/// <c>ConvBlock(int channels, bool bias = true)</c> called only as <c>ConvBlock(16)</c> always has <c>bias</c> true. Calls are
/// found by a text search of the outermost type that contains it (every part) for the method's name (for a constructor also <c>new(</c>, <c>base(</c> and
/// <c>this(</c>, which do not name it); only occurrences that are calls by their syntax are bound. A mention of a method's
/// name that is no call (a method group, a delegate) and a call with a computed argument make the answer unknown.
/// Computed once per parameter, and asked only where a rule has already found everything else it needs.
/// </summary>
internal sealed class CallSiteArguments
{
    private readonly AnalysisServices _services;
    private readonly ConcurrentDictionary<IParameterSymbol, bool?> _constants = new(SymbolEqualityComparer.Default);

    public CallSiteArguments(AnalysisServices services) => _services = services;

    /// <summary>
    /// The value <paramref name="parameter"/> has at every call, when all calls agree and there is at least one; null
    /// otherwise, and for a parameter its own method may change (assigned, passed by reference) or a method that an
    /// override, an interface or a delegate may reach another way.
    /// </summary>
    public bool? ConstantAtEveryCall(IParameterSymbol parameter, CancellationToken cancellationToken)
        => _constants.GetOrAdd(parameter, p => Compute(p, cancellationToken));

    private bool? Compute(IParameterSymbol parameter, CancellationToken cancellationToken)
    {
        // Only a private method or constructor: its calls can only be written in its own type, where they are searched
        // for. A more visible one may be called by code the search does not read as a call of it (an alias, a primary
        // constructor's base call, an interface it implements, another project).
        if (parameter.RefKind != RefKind.None || parameter.Type.SpecialType != SpecialType.System_Boolean
            || parameter.ContainingSymbol is not IMethodSymbol method
            || method.MethodKind is not (MethodKind.Ordinary or MethodKind.Constructor) || method.DeclaredAccessibility != Accessibility.Private
            || method.IsVirtual || method.IsOverride || method.IsAbstract || method.ExplicitInterfaceImplementations.Length > 0
            || method.IsGenericMethod || method.ContainingType.IsGenericType // a generic name is spelled with its type arguments
            || method.DeclaringSyntaxReferences.Length != 1 || IsWritten(parameter, method, cancellationToken))
        {
            return null;
        }

        var names = method.MethodKind == MethodKind.Constructor
            ? new[] { method.ContainingType.Name, "new", "base", "this" }
            : new[] { method.Name };
        bool? agreed = null;
        foreach (var reference in OutermostType(method.ContainingType).DeclaringSyntaxReferences)
        {
            var declaration = reference.GetSyntax(cancellationToken);
            var tree = declaration.SyntaxTree;
            foreach (var name in names)
            {
                foreach (var token in _services.TokensNaming(declaration, name, cancellationToken))
                {
                    switch (ArgumentAt(token, tree, method, parameter, cancellationToken))
                    {
                        case Site.NotThisMethod:
                            continue;
                        case Site.Unknown:
                            return null;
                        case var site:
                            var value = site == Site.True;
                            if (agreed is { } earlier && earlier != value)
                            {
                                return null;
                            }

                            agreed = value;
                            break;
                    }
                }
            }
        }

        return agreed;
    }

    private enum Site
    {
        NotThisMethod,
        Unknown,
        True,
        False,
    }

    /// <summary>What the occurrence of a name at <paramref name="token"/> passes for <paramref name="parameter"/>.</summary>
    private Site ArgumentAt(SyntaxToken token, SyntaxTree tree, IMethodSymbol method, IParameterSymbol parameter, CancellationToken cancellationToken)
    {
        var node = token.Parent;
        var call = node switch
        {
            IdentifierNameSyntax { Parent: MemberAccessExpressionSyntax { Parent: InvocationExpressionSyntax invocation } access } when access.Name == node => invocation,
            IdentifierNameSyntax { Parent: InvocationExpressionSyntax invocation } => invocation,
            IdentifierNameSyntax { Parent: ObjectCreationExpressionSyntax creation } => creation,
            IdentifierNameSyntax { Parent: QualifiedNameSyntax { Parent: ObjectCreationExpressionSyntax creation } qualified } when qualified.Right == node => creation,
            ImplicitObjectCreationExpressionSyntax creation => creation,
            ConstructorInitializerSyntax initializer => initializer,
            _ => (SyntaxNode?)null,
        };

        if (call is null)
        {
            // Decided from syntax, without binding (binding a mention binds its whole member, the cost of this search): a
            // type's name outside a creation is no call of its constructor; any other mention of a method's name may be
            // a method group or a delegate that calls it with anything, so the answer is unknown (a same-named other
            // symbol only makes the rule quieter).
            return method.MethodKind != MethodKind.Constructor && token.IsKind(SyntaxKind.IdentifierToken) && node is SimpleNameSyntax
                ? Site.Unknown
                : Site.NotThisMethod;
        }

        if (_services.SemanticModel(tree) is not { } model)
        {
            return Site.Unknown; // a call in a referenced compilation
        }

        var bound = model.GetOperation(call, cancellationToken);
        if (bound is IDynamicInvocationOperation or IDynamicObjectCreationOperation or IInvalidOperation
            || bound is IExpressionStatementOperation { Operation: IDynamicInvocationOperation or IInvalidOperation })
        {
            return Site.Unknown; // bound at run time, or not at all: it may call this method with anything
        }

        var (target, arguments) = bound switch
        {
            IInvocationOperation invocation => (invocation.TargetMethod, invocation.Arguments),
            IObjectCreationOperation { Constructor: { } constructor } creation => (constructor, creation.Arguments),
            IExpressionStatementOperation { Operation: IInvocationOperation chained } => (chained.TargetMethod, chained.Arguments),
            _ => (null, default),
        };

        if (target is null || !Same(target, method))
        {
            return Site.NotThisMethod;
        }

        return arguments.BooleanArgument(parameter.Name) switch
        {
            true => Site.True,
            false => Site.False,
            null => Site.Unknown,
        };
    }

    /// <summary>The type that contains <paramref name="type"/>, outermost: a private member's calls can be anywhere in it.</summary>
    private static INamedTypeSymbol OutermostType(INamedTypeSymbol type)
    {
        while (type.ContainingType is { } outer)
        {
            type = outer;
        }

        return type;
    }

    private static bool Same(IMethodSymbol a, IMethodSymbol b)
        => SymbolEqualityComparer.Default.Equals((a.ReducedFrom ?? a).OriginalDefinition, (b.ReducedFrom ?? b).OriginalDefinition);

    /// <summary>True when <paramref name="method"/>'s own body assigns <paramref name="parameter"/> or hands it on by reference.</summary>
    private bool IsWritten(IParameterSymbol parameter, IMethodSymbol method, CancellationToken cancellationToken)
        => _services.GetBody(method, cancellationToken) is not { } body || body.WritesTo(parameter);
}
