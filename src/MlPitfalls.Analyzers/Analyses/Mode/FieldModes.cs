using System.Collections.Concurrent;
using System.Collections.Immutable;
using System.Linq;
using System.Runtime.CompilerServices;
using System.Threading;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using MlPitfalls.Analyzers.Infrastructure;

namespace MlPitfalls.Analyzers.Analyses.Mode;

/// <summary>
/// A class-wide fact about a module field: when the class creates the module itself, never hands it out and never
/// switches it out of training mode, the module is in training mode wherever the class reads it, whatever called the
/// reading method (a trainer's <c>Evaluate()</c> that never calls <c>eval()</c>, an inference wrapper's
/// <c>Predict()</c>). The fact holds on every path, so the mode analysis can use it where it knows nothing else.
/// <para>
/// It holds only for a private field of a class that is not itself a module (a module container can be switched from
/// outside), whose every assignment is a creation (<c>new Net()</c>, <c>nn.Sequential(...)</c>, optionally moved with
/// <c>to</c>/<c>cuda</c>/<c>cpu</c>) of a type whose constructors do not switch modes and that does not override
/// <c>train</c>, and whose every other mention is the receiver of <c>forward</c>, of a TorchSharp method other than
/// <c>eval</c>, <c>apply</c> and <c>train(false)</c>/<c>train(flag)</c>, or of a TorchSharp property that is not a module.
/// Anything else (an argument, a return value, an alias, a source method of the module) may switch it, and the field
/// gets no fact.
/// </para>
/// </summary>
internal static class FieldModes
{
    private static readonly ConditionalWeakTable<AnalysisServices, ConcurrentDictionary<IFieldSymbol, ModuleMode>> Facts = new();

    /// <summary>
    /// Training mode (with the creations as origins) when <paramref name="field"/> is provably never switched out of it;
    /// <see cref="ModuleMode.Unknown"/> otherwise. Computed once per field.
    /// </summary>
    public static ModuleMode ModeOf(AnalysisServices services, IFieldSymbol field, CancellationToken cancellationToken)
    {
        if (!MayHaveFact(services.Torch, field))
        {
            return ModuleMode.Unknown;
        }

        var facts = Facts.GetValue(services, static _ => new ConcurrentDictionary<IFieldSymbol, ModuleMode>(SymbolEqualityComparer.Default));
        if (facts.TryGetValue(field, out var known))
        {
            return known;
        }

        return facts.GetOrAdd(field, Compute(services, field, cancellationToken));
    }

    /// <summary>The checks that need no source: most module fields fail one of them (public, in a module, a type parameter).</summary>
    private static bool MayHaveFact(TorchSymbols torch, IFieldSymbol field)
        => field.DeclaredAccessibility == Accessibility.Private
           && field.ContainingType is { TypeKind: TypeKind.Class or TypeKind.Struct } owner && !owner.DeclaringSyntaxReferences.IsEmpty
           && !torch.IsModule(owner)
           && field.Type is INamedTypeSymbol type && torch.IsModule(type) && !ModeAnalysis.OverridesTrain(type);

    private static ModuleMode Compute(AnalysisServices services, IFieldSymbol field, CancellationToken cancellationToken)
    {
        var torch = services.Torch;
        var origins = ImmutableArray.CreateBuilder<SyntaxNode>();
        foreach (var part in field.ContainingType.DeclaringSyntaxReferences)
        {
            var declaration = part.GetSyntax(cancellationToken);
            var model = services.SemanticModel(declaration.SyntaxTree);
            foreach (var token in services.TokensNaming(declaration, field.Name, cancellationToken))
            {
                if (token.Parent is VariableDeclaratorSyntax declarator)
                {
                    if (!SymbolEqualityComparer.Default.Equals(model.GetDeclaredSymbol(declarator, cancellationToken), field))
                    {
                        continue; // a local or another field of the same name
                    }

                    if (declarator.Initializer is { Value: var initial })
                    {
                        if (!IsCreation(torch, model, initial, cancellationToken))
                        {
                            return ModuleMode.Unknown;
                        }

                        origins.Add(initial);
                    }

                    continue;
                }

                if (token.Parent is not IdentifierNameSyntax name)
                {
                    return ModuleMode.Unknown; // a name the fact cannot read
                }

                var symbol = model.GetSymbolInfo(name, cancellationToken);
                if (!SymbolEqualityComparer.Default.Equals(symbol.Symbol, field))
                {
                    if (symbol.Symbol is null && symbol.CandidateSymbols.Contains(field, SymbolEqualityComparer.Default))
                    {
                        return ModuleMode.Unknown; // broken code that may mean the field
                    }

                    continue;
                }

                var (keeps, created) = Use(torch, model, name, cancellationToken);
                if (!keeps)
                {
                    return ModuleMode.Unknown;
                }

                if (created is not null)
                {
                    origins.Add(created);
                }
            }
        }

        return origins.Count == 0 ? ModuleMode.Unknown : new ModuleMode(ModeKind.Train, origins.ToImmutable());
    }

    /// <summary>
    /// What a mention of the field does: whether it keeps the module in training mode (it only runs or reads the module,
    /// or assigns a new one) rather than possibly switching it or handing it out, and the created module when it assigns one.
    /// </summary>
    private static (bool Keeps, ExpressionSyntax? Created) Use(TorchSymbols torch, SemanticModel model, IdentifierNameSyntax name, CancellationToken cancellationToken)
    {
        ExpressionSyntax mention = name.Parent is MemberAccessExpressionSyntax { Expression: ThisExpressionSyntax } qualified && qualified.Name == name ? qualified : name;
        switch (mention.Parent)
        {
            case AssignmentExpressionSyntax assignment when assignment.Left == mention:
                return (assignment.IsKind(SyntaxKind.SimpleAssignmentExpression) || assignment.IsKind(SyntaxKind.CoalesceAssignmentExpression))
                       && IsCreation(torch, model, assignment.Right, cancellationToken)
                    ? (true, assignment.Right)
                    : (false, null);
            case MemberAccessExpressionSyntax access when access.Expression == mention:
                var member = model.GetSymbolInfo(access, cancellationToken).Symbol;
                if (access.Parent is InvocationExpressionSyntax invocation && invocation.Expression == access)
                {
                    return (member is IMethodSymbol method && KeepsTrainingMode(torch, model, method, invocation, cancellationToken), null);
                }

                return (member is IPropertySymbol property && torch.IsInTorchSharp(property) && !torch.IsModule(property.Type), null);
            default:
                return (false, null);
        }
    }

    /// <summary>True for a call on the module that leaves it in training mode: a forward pass, or TorchSharp's own methods other than the mode switches.</summary>
    private static bool KeepsTrainingMode(TorchSymbols torch, SemanticModel model, IMethodSymbol method, InvocationExpressionSyntax invocation, CancellationToken cancellationToken)
    {
        if (!torch.IsInTorchSharp(method))
        {
            return method.Name == "forward"; // a source method may switch the module (a Freeze() or a Predict() that calls eval())
        }

        return method.Name switch
        {
            "eval" or "apply" => false,
            "train" => invocation.ArgumentList.Arguments.Count == 0
                       || model.GetConstantValue(invocation.ArgumentList.Arguments[0].Expression, cancellationToken) is { HasValue: true, Value: true },

            // A call that hands out the module or its children (to(device) returns the module itself; modules(),
            // children(), named_modules() the modules under it) lets the caller switch them, unless the result is dropped.
            _ => IsDropped(invocation) || !MayHoldModule(torch, method.ReturnType, depth: 0),
        };
    }

    /// <summary>True when the call's value is thrown away: a statement, or the body of a constructor or void method (<c>Ctor(string w) => _net.load(w);</c>).</summary>
    private static bool IsDropped(InvocationExpressionSyntax invocation)
        => invocation.Parent is ExpressionStatementSyntax
           || (invocation.Parent is ArrowExpressionClauseSyntax arrow
               && arrow.Parent is ConstructorDeclarationSyntax or MethodDeclarationSyntax { ReturnType: PredefinedTypeSyntax { Keyword.RawKind: (int)SyntaxKind.VoidKeyword } });

    /// <summary>True for a module type, or a type that can hold one: an array, a tuple or a generic type over one, an unknown type.</summary>
    internal static bool MayHoldModule(TorchSymbols torch, ITypeSymbol? type, int depth)
    {
        switch (type)
        {
            case null or IErrorTypeSymbol or ITypeParameterSymbol:
                return true;
            case IArrayTypeSymbol array:
                return MayHoldModule(torch, array.ElementType, depth + 1);
            case INamedTypeSymbol named:
                if (torch.IsModule(named) || named.SpecialType == SpecialType.System_Object)
                {
                    return true;
                }

                return depth < 4 && (named.IsTupleType ? named.TupleElements.Select(e => e.Type) : named.TypeArguments).Any(t => MayHoldModule(torch, t, depth + 1));
            default:
                return false;
        }
    }

    /// <summary>A module created right there: <c>new Net()</c>, a TorchSharp factory (<c>nn.Linear(...)</c>), moved with <c>to</c>/<c>cuda</c>/<c>cpu</c>.</summary>
    private static bool IsCreation(TorchSymbols torch, SemanticModel model, ExpressionSyntax expression, CancellationToken cancellationToken)
    {
        switch (expression)
        {
            case BaseObjectCreationExpressionSyntax creation:
                return model.GetTypeInfo(creation, cancellationToken).Type is INamedTypeSymbol type && torch.IsModule(type)
                       && !ModeAnalysis.OverridesTrain(type) && !ConstructorsSwitchModes(type, cancellationToken);
            case InvocationExpressionSyntax invocation when model.GetSymbolInfo(invocation, cancellationToken).Symbol is IMethodSymbol method:
                if (invocation.Expression is MemberAccessExpressionSyntax { Name.Identifier.ValueText: "to" or "cuda" or "cpu" } moved && torch.IsInTorchSharp(method))
                {
                    return IsCreation(torch, model, moved.Expression, cancellationToken);
                }

                return method.IsStatic && !method.IsExtensionMethod && SymbolEqualityComparer.Default.Equals(method.ContainingType, torch.Nn) && torch.IsModule(method.ReturnType);
            case ParenthesizedExpressionSyntax parenthesized:
                return IsCreation(torch, model, parenthesized.Expression, cancellationToken);
            default:
                return false;
        }
    }

    /// <summary>True when a constructor of the type or a source base names <c>train</c> or <c>eval</c> (a pretrained wrapper that ends its constructor with <c>eval()</c>).</summary>
    internal static bool ConstructorsSwitchModes(INamedTypeSymbol type, CancellationToken cancellationToken)
    {
        for (var current = type; current is not null && !current.DeclaringSyntaxReferences.IsEmpty; current = current.BaseType)
        {
            foreach (var constructor in current.InstanceConstructors)
            {
                foreach (var reference in constructor.DeclaringSyntaxReferences)
                {
                    if (reference.GetSyntax(cancellationToken).DescendantTokens().Any(t => t.ValueText is "train" or "eval"))
                    {
                        return true;
                    }
                }
            }
        }

        return false;
    }
}
