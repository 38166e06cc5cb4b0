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
            if (services.SemanticModel(declaration.SyntaxTree) is not { } model)
            {
                return ModuleMode.Unknown; // declared in a referenced compilation
            }

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
                        if (!IsCreation(services, model, initial, cancellationToken))
                        {
                            return ModuleMode.Unknown;
                        }

                        origins.Add(initial);
                    }

                    continue;
                }

                if (token.Parent is not IdentifierNameSyntax name)
                {
                    continue; // a parameter, local or member declared with the same name
                }

                var symbol = model.GetSymbolInfo(name, cancellationToken);
                if (!SymbolEqualityComparer.Default.Equals(symbol.Symbol, field))
                {
                    if (symbol.Symbol is null)
                    {
                        return ModuleMode.Unknown; // broken code or a dynamic access that may mean the field
                    }

                    continue;
                }

                var (keeps, created) = Use(services, model, name, cancellationToken);
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
    private static (bool Keeps, ExpressionSyntax? Created) Use(AnalysisServices services, SemanticModel model, IdentifierNameSyntax name, CancellationToken cancellationToken)
    {
        var torch = services.Torch;
        ExpressionSyntax mention = name.Parent is MemberAccessExpressionSyntax { Expression: ThisExpressionSyntax } qualified && qualified.Name == name ? qualified : name;
        switch (mention.Parent)
        {
            case AssignmentExpressionSyntax assignment when assignment.Left == mention:
                return (assignment.IsKind(SyntaxKind.SimpleAssignmentExpression) || assignment.IsKind(SyntaxKind.CoalesceAssignmentExpression))
                       && IsCreation(services, model, assignment.Right, cancellationToken)
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
            // A source method may switch the module (a Freeze() or a Predict() that calls eval()); the override of forward
            // is the forward pass (an overload of the same name is any method).
            return method.Name == "forward" && method.IsOverride && torch.IsInTorchSharp(method.OverriddenMethod?.OriginalDefinition);
        }

        foreach (var argument in invocation.ArgumentList.Arguments)
        {
            if (argument.Expression is AnonymousFunctionExpressionSyntax
                || model.GetTypeInfo(argument.Expression, cancellationToken).ConvertedType is not { } type || type.TypeKind is TypeKind.Delegate or TypeKind.Error)
            {
                return false; // a hook or callback registered on the module may switch it whenever it runs
            }
        }

        return method.Name switch
        {
            "eval" or "apply" => false,
            "train" => invocation.ArgumentList.Arguments.Count == 0
                       || model.GetConstantValue(invocation.ArgumentList.Arguments[0].Expression, cancellationToken) is { HasValue: true, Value: true },

            // A call that hands out the module or its children (to(device) returns the module itself; modules(),
            // children(), named_modules() the modules under it) lets the caller switch them, unless the result is dropped.
            _ => IsDropped(invocation) || !torch.MayHoldModule(method.ReturnType),
        };
    }

    /// <summary>True when the call's value is thrown away: a statement, or the body of a constructor or void method (<c>Ctor(string w) => _net.load(w);</c>).</summary>
    private static bool IsDropped(InvocationExpressionSyntax invocation)
        => invocation.Parent is ExpressionStatementSyntax
           || (invocation.Parent is ArrowExpressionClauseSyntax arrow
               && arrow.Parent is ConstructorDeclarationSyntax or MethodDeclarationSyntax { ReturnType: PredefinedTypeSyntax { Keyword.RawKind: (int)SyntaxKind.VoidKeyword } });

    /// <summary>
    /// A module created right there, out of nothing that exists elsewhere: <c>new Net()</c>, a TorchSharp factory
    /// (<c>nn.Linear(...)</c>, <c>nn.Sequential(nn.Linear(...), ...)</c>), moved with <c>to</c>/<c>cuda</c>/<c>cpu</c>. A module
    /// passed in as a part (<c>nn.Sequential(_backbone, ...)</c>) may be switched through the name it has elsewhere.
    /// </summary>
    private static bool IsCreation(AnalysisServices services, SemanticModel model, ExpressionSyntax expression, CancellationToken cancellationToken)
    {
        var torch = services.Torch;
        switch (expression)
        {
            case BaseObjectCreationExpressionSyntax creation:
                return model.GetTypeInfo(creation, cancellationToken).Type is INamedTypeSymbol type && torch.IsModule(type)
                       && !ModeAnalysis.OverridesTrain(type) && !ConstructorsSwitchModes(services, type, cancellationToken)
                       && PartsAreCreations(services, model, creation.ArgumentList, cancellationToken);
            case InvocationExpressionSyntax invocation when model.GetSymbolInfo(invocation, cancellationToken).Symbol is IMethodSymbol method:
                if (invocation.Expression is MemberAccessExpressionSyntax { Name.Identifier.ValueText: "to" or "cuda" or "cpu" } moved && torch.IsInTorchSharp(method))
                {
                    return IsCreation(services, model, moved.Expression, cancellationToken);
                }

                return method.IsStatic && !method.IsExtensionMethod && SymbolEqualityComparer.Default.Equals(method.ContainingType, torch.Nn) && torch.IsModule(method.ReturnType)
                       && PartsAreCreations(services, model, invocation.ArgumentList, cancellationToken);
            case ParenthesizedExpressionSyntax parenthesized:
                return IsCreation(services, model, parenthesized.Expression, cancellationToken);
            default:
                return false;
        }
    }

    /// <summary>True when every argument that may hold a module is itself a creation (<c>nn.Sequential(nn.Linear(...), new Block())</c>).</summary>
    private static bool PartsAreCreations(AnalysisServices services, SemanticModel model, ArgumentListSyntax? arguments, CancellationToken cancellationToken)
    {
        var torch = services.Torch;
        foreach (var argument in arguments?.Arguments ?? default)
        {
            var type = model.GetTypeInfo(argument.Expression, cancellationToken).Type;
            if (type is not null && type.SpecialType == SpecialType.System_String)
            {
                continue; // a name
            }

            if (torch.MayHoldModule(type) && !IsCreation(services, model, argument.Expression, cancellationToken)
                && !(argument.Expression is TupleExpressionSyntax tuple && tuple.Arguments.All(a => !torch.MayHoldModule(model.GetTypeInfo(a.Expression, cancellationToken).Type) || IsCreation(services, model, a.Expression, cancellationToken))))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>
    /// True when a constructor of the type or a source base may switch a mode: it names <c>train</c> or <c>eval</c>, or
    /// calls a source method that may (a pretrained wrapper whose constructor ends with <c>Restore(path)</c> and
    /// <c>eval()</c> there).
    /// </summary>
    internal static bool ConstructorsSwitchModes(AnalysisServices services, INamedTypeSymbol type, CancellationToken cancellationToken)
    {
        for (var current = type; current is not null && !current.DeclaringSyntaxReferences.IsEmpty; current = current.BaseType)
        {
            foreach (var constructor in current.InstanceConstructors)
            {
                if (!constructor.DeclaringSyntaxReferences.IsEmpty && ConstructorSwitchReach.MayReach(services, constructor, cancellationToken))
                {
                    return true;
                }
            }
        }

        return false;
    }

    /// <summary>Constructors that may switch a mode: their text, or a source callee's, names <c>train</c> or <c>eval</c> (library calls such as <c>RegisterComponents()</c> do not).</summary>
    private static readonly SyntacticReach ConstructorSwitchReach = new(
        static text => (text.Mentions & (MarkerNames.Train | MarkerNames.Eval | MarkerNames.Apply)) != 0, unseenCodeReaches: false, sourceCreationsReach: false);
}
