using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Collections.Immutable;
using System.Linq;
using System.Threading;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using Microsoft.CodeAnalysis.Operations;
using MlPitfalls.Analyzers.Infrastructure;

namespace MlPitfalls.Analyzers.Analyses.Composition;

/// <summary>
/// The module-composition model: for a module-typed expression, local or field, what module it holds. Read from
/// creation expressions (<c>nn.Linear(...)</c>, <c>new Net()</c>), <c>nn.Sequential(...)</c> in every overload (bare
/// modules, named tuples, arrays) and <c>append</c> chains or statements, locals assigned once (moves with
/// <c>to(device)</c> keep the module), fields and properties from every assignment in their class (initializers and
/// constructors), and factory helpers in the compilation followed one level. A value the code does not pin down gets no
/// model: rules then stay silent.
/// </summary>
internal sealed class ModuleComposition
{
    private const int MaxDepth = 6;

    private readonly AnalysisServices _services;
    private readonly ConcurrentDictionary<ISymbol, MemberAssignments?> _memberAssignments = new(SymbolEqualityComparer.Default);
    private readonly ConcurrentDictionary<(INamedTypeSymbol Type, string Name), List<SyntaxNode>?> _namedNodes = new(TypeAndNameComparer.Instance);
    // Each tree's text as one string, made once per tree for NodesNaming's searches (SourceText has no search of its own).
    private readonly ConcurrentDictionary<ISymbol, ModuleModel?> _locals = new(SymbolEqualityComparer.Default);
    private readonly ConcurrentDictionary<ISymbol, ModuleModel?> _members = new(SymbolEqualityComparer.Default);
    private readonly ConcurrentDictionary<SyntaxNode, IOperation> _boundBodies = new();

    private readonly Lazy<HashSet<INamedTypeSymbol>> _derivedFrom;

    public ModuleComposition(AnalysisServices services)
    {
        _services = services;
        _derivedFrom = new Lazy<HashSet<INamedTypeSymbol>>(BaseTypesInSource);
    }

    private TorchSymbols Torch => _services.Torch;

    /// <summary>The module <paramref name="expression"/> evaluates to, or null when the code does not show it.</summary>
    public ModuleModel? Describe(IOperation? expression, CancellationToken cancellationToken)
        => Describe(expression, 0, cancellationToken);

    /// <summary>The module a field or property holds (every write to it in its class agrees), or null when the code does not show it.</summary>
    public ModuleModel? DescribeStored(ISymbol member, CancellationToken cancellationToken)
        => _members.GetOrAdd(member, m => DescribeMember(m, 0, cancellationToken) ?? FromStaticType(MemberType(m)));

    /// <summary>
    /// Remembers a body some analysis already has bound (the analyzer driver's, or one built for a summary), so that
    /// reading a local declared in it does not bind the body a second time.
    /// </summary>
    public void RememberBody(IOperation body) => _boundBodies.TryAdd(body.Syntax, body);

    /// <summary>
    /// The <c>Sequential(...)</c> call <paramref name="child"/> is written in as a child (bare or in a named tuple), read
    /// from syntax (for fixes and placement, where the child is a syntax node), or null.
    /// </summary>
    public static InvocationExpressionSyntax? SequentialCallAround(SyntaxNode child)
    {
        var node = child.Parent is ArgumentSyntax { Parent: TupleExpressionSyntax tuple } ? tuple : child;
        return node.Parent is ArgumentSyntax { Parent: ArgumentListSyntax { Parent: InvocationExpressionSyntax call } }
               && call.Expression is IdentifierNameSyntax { Identifier.ValueText: "Sequential" } or MemberAccessExpressionSyntax { Name.Identifier.ValueText: "Sequential" }
            ? call
            : null;
    }

    /// <summary>
    /// For <c>nn.Sequential(list)</c> built from a local list filled by <c>list.Add(...)</c> statements (the way TorchSharp's
    /// own VGG and ResNet examples build their layers, often in a loop): each pair of children added by two consecutive
    /// statements of one block, which are therefore adjacent in the <c>Sequential</c> whatever the loop around them does.
    /// Empty unless every use of the list is such an <c>Add</c> statement or the argument of a <c>Sequential</c> call (a list
    /// also changed or read elsewhere says nothing about its order).
    /// </summary>
    public ImmutableArray<(ModuleChild First, ModuleChild Next)> ListedChildPairs(IInvocationOperation sequential, CancellationToken cancellationToken)
    {
        if (sequential.Arguments.Length != 1 || sequential.Arguments[0].Value.WithoutConversions() is not ILocalReferenceOperation { Local: var list })
        {
            return ImmutableArray<(ModuleChild, ModuleChild)>.Empty;
        }

        var root = ((IOperation)sequential).Root();
        var adds = new Dictionary<SyntaxNode, IInvocationOperation>();
        var made = false; // a list made right here, not an alias of one that other code may change
        foreach (var operation in root.Descendants())
        {
            if (operation is IVariableDeclaratorOperation declarator && SymbolEqualityComparer.Default.Equals(declarator.Symbol, list))
            {
                made = declarator.GetVariableInitializer()?.Value.WithoutConversions() is IObjectCreationOperation;
            }

            if (operation is not ILocalReferenceOperation reference || !SymbolEqualityComparer.Default.Equals(reference.Local, list) || reference.IsDeclaration)
            {
                continue;
            }

            var use = reference.Parent;
            while (use is IConversionOperation)
            {
                use = use.Parent; // Sequential(IEnumerable<...>) takes the list through an implicit conversion
            }

            if (use is IInvocationOperation { TargetMethod.Name: "Add", Arguments.Length: 1, Parent: IExpressionStatementOperation statement } add && add.Instance == reference)
            {
                adds[statement.Syntax] = add;
            }
            else if (use is IArgumentOperation { Parent: IInvocationOperation call } && (call == sequential || call.TargetMethod.Equals(sequential.TargetMethod, SymbolEqualityComparer.Default)))
            {
                // handed to Sequential: that is what builds the model
            }
            else
            {
                return ImmutableArray<(ModuleChild, ModuleChild)>.Empty; // aliased, assigned, changed or read another way
            }
        }

        if (!made)
        {
            return ImmutableArray<(ModuleChild, ModuleChild)>.Empty;
        }

        var pairs = ImmutableArray.CreateBuilder<(ModuleChild, ModuleChild)>();
        foreach (var pair in adds)
        {
            if (pair.Key.Parent is not Microsoft.CodeAnalysis.CSharp.Syntax.BlockSyntax block)
            {
                continue;
            }

            var index = block.Statements.IndexOf((Microsoft.CodeAnalysis.CSharp.Syntax.StatementSyntax)pair.Key);
            if (index + 1 < block.Statements.Count && adds.TryGetValue(block.Statements[index + 1], out var next)
                && Child(pair.Value.Arguments[0].Value, 0, cancellationToken) is var first && Child(next.Arguments[0].Value, 0, cancellationToken) is var second)
            {
                pairs.Add((first, second));
            }
        }

        return pairs.ToImmutable();
    }

    /// <summary>
    /// The source <c>forward</c> a call with <paramref name="arity"/> inputs runs on a module of type <paramref name="type"/>:
    /// the most derived override declared in the compilation, or null for TorchSharp's own modules.
    /// </summary>
    public IMethodSymbol? SourceForward(INamedTypeSymbol type, int arity)
    {
        for (var current = type; current is not null && current.DeclaringSyntaxReferences.Length > 0; current = current.BaseType)
        {
            foreach (var member in current.GetMembers("forward"))
            {
                if (member is IMethodSymbol { IsOverride: true, IsAbstract: false } forward && forward.Parameters.Length == arity)
                {
                    return forward;
                }
            }
        }

        return null;
    }

    private ModuleModel? Describe(IOperation? expression, int depth, CancellationToken cancellationToken)
    {
        expression = expression.WithoutConversions();
        if (expression is null || depth > MaxDepth)
        {
            return null;
        }

        cancellationToken.ThrowIfCancellationRequested();
        switch (expression)
        {
            case IObjectCreationOperation { Type: INamedTypeSymbol created } creation when Torch.IsModule(created):
                return new ModuleModel(created, creation, default);
            case IInvocationOperation invocation:
                return DescribeCall(invocation, depth, cancellationToken);
            case ILocalReferenceOperation local:
                // Asked for every call on the local: answered once (at the top, where the answer does not depend on how
                // deep the question came from).
                return depth == 0
                    ? _locals.GetOrAdd(local.Local, l => DescribeLocal((ILocalSymbol)l, 0, cancellationToken) ?? FromStaticType(expression.Type))
                    : DescribeLocal(local.Local, depth, cancellationToken) ?? FromStaticType(expression.Type);
            case IPropertyReferenceOperation { Property.IsIndexer: true, Instance: { } list } when Torch.Containers.NameOf(list.Type) == "ModuleList`1":
                return OneOf(Describe(list, depth + 1, cancellationToken)); // convs[i]: one of the list's elements
            case IFieldReferenceOperation or IPropertyReferenceOperation { Arguments.Length: 0 }:
                // Likewise once per field or property: every call on 'model' in every method asks the same question.
                var member = expression.ReferencedSymbol()!;
                return depth == 0
                    ? _members.GetOrAdd(member, m => DescribeMember(m, 0, cancellationToken) ?? FromStaticType(MemberType(m)))
                    : DescribeMember(member, depth, cancellationToken) ?? FromStaticType(expression.Type);
            default:
                return FromStaticType(expression.Type);
        }
    }

    /// <summary>
    /// A model for "one of these modules" (an element of a list read by index), when every element is known and all are
    /// of one type; null otherwise.
    /// </summary>
    private static ModuleModel? OneOf(ModuleModel? list)
    {
        if (list is not { Elements: { IsDefaultOrEmpty: false } elements })
        {
            return null;
        }

        foreach (var element in elements)
        {
            if (element.Creation is null || element.HasForwardHooks || !SymbolEqualityComparer.Default.Equals(element.Type, elements[0].Type))
            {
                return null;
            }
        }

        return new ModuleModel(elements[0].Type, null, default, alternatives: elements);
    }

    /// <summary>
    /// The elements of a <c>ModuleList</c> held by <paramref name="member"/> (private: only its class changes it),
    /// created by <paramref name="creation"/> and filled by <c>Add</c>/<c>append</c> statements anywhere in its class, often in
    /// a loop: <c>convs.Add(nn.Conv1d(...))</c>. Default (not known) when the class uses the list any way that could change
    /// what it holds (handed to a method, an element assigned, inserted or removed, a second list assigned) or when an
    /// element is not known; reads by index, <c>Count</c> and <c>foreach</c> are fine.
    /// </summary>
    private ImmutableArray<ModuleModel> ListElements(ISymbol member, IOperation creation, int depth, CancellationToken cancellationToken)
    {
        // Private (or protected in a sealed class): read-only only stops the field being reassigned, not its contents changed
        // by other classes, so only then are this class's statements all the changes there are.
        if (member.ContainingType is not { } type
            || !(member.DeclaredAccessibility == Accessibility.Private
                 || (type.IsSealed && member.DeclaredAccessibility is Accessibility.Protected or Accessibility.ProtectedAndInternal)))
        {
            return default;
        }

        var elements = ImmutableArray.CreateBuilder<ModuleModel>();
        var values = new List<IOperation>();
        if (creation is IInvocationOperation { Arguments: var initial })
        {
            foreach (var argument in initial)
            {
                if (argument.Value.WithoutConversions() is IArrayCreationOperation { Initializer: { } items })
                {
                    values.AddRange(items.ElementValues);
                }
                else if (argument.ArgumentKind != ArgumentKind.DefaultValue)
                {
                    return default;
                }
            }
        }
        else if (creation is not IObjectCreationOperation { Arguments.Length: 0, Initializer: null })
        {
            return default;
        }

        if (!_services.DeclaredHere(type))
        {
            return default; // declared in a referenced compilation: its writes cannot be bound here
        }

        var writes = 0;
        foreach (var token in TokensNaming(type, member.Name, cancellationToken))
        {
            if (token.Parent is VariableDeclaratorSyntax { Initializer: not null } or PropertyDeclarationSyntax { Initializer: not null })
            {
                writes++;
                continue;
            }

            if (token.Parent is not SimpleNameSyntax name)
            {
                continue;
            }

            ExpressionSyntax named = name.Parent is MemberAccessExpressionSyntax access && access.Name == name ? access : name;
            var reference = _services.SemanticModel(name.SyntaxTree)?.GetOperation(named, cancellationToken);
            if (!SymbolEqualityComparer.Default.Equals(reference.ReferencedSymbol(), member))
            {
                continue; // another symbol of the same name (a local, a parameter, another object's member)
            }

            switch (reference!.Parent)
            {
                case ISimpleAssignmentOperation assignment when assignment.Target == reference:
                    writes++;
                    break;
                case IInvocationOperation { TargetMethod.Name: "Add" or "append", Arguments.Length: 1, Parent: IExpressionStatementOperation } add
                    when add.Instance == reference && Torch.IsInTorchSharp(add.TargetMethod):
                    values.Add(add.Arguments[0].Value);
                    break;
                case IPropertyReferenceOperation { Property.IsIndexer: true } read when read.Instance == reference && !read.IsWrittenTo()
                                                                                        && read.Parent is not IInvocationOperation { TargetMethod.Name: "register_forward_hook" or "register_forward_pre_hook" }:
                case IPropertyReferenceOperation { Property.Name: "Count" } count when count.Instance == reference:
                case IForEachLoopOperation loop when loop.Collection.WithoutConversions() == reference:
                case IConversionOperation { Parent: IForEachLoopOperation }:
                    break;
                default:
                    return default;
            }
        }

        if (writes != 1)
        {
            return default;
        }

        foreach (var value in values)
        {
            if (Describe(value, depth + 1, cancellationToken) is not { } element)
            {
                return default;
            }

            elements.Add(element);
        }

        return elements.ToImmutable();
    }

    private static ITypeSymbol? MemberType(ISymbol member) => member switch
    {
        IFieldSymbol field => field.Type,
        IPropertySymbol property => property.Type,
        _ => null,
    };

    /// <summary>
    /// A module type known from the declaration alone (a parameter typed <c>Linear</c>, <c>this</c> in a model's own code):
    /// TorchSharp's own layers, or a user module that no class in the compilation derives from. A user type with
    /// subclasses may hold one with another <c>forward</c>, so it tells nothing.
    /// </summary>
    private ModuleModel? FromStaticType(ITypeSymbol? type)
        => type is INamedTypeSymbol { TypeKind: TypeKind.Class, IsAbstract: false } named && Torch.IsModule(named)
           && (Torch.IsInTorchSharp(named) || named.IsSealed || !_derivedFrom.Value.Contains(named.OriginalDefinition))
            ? new ModuleModel(named, null, default)
            : null;

    /// <summary>Every source type some other source type derives from (directly or not), computed once per compilation.</summary>
    private HashSet<INamedTypeSymbol> BaseTypesInSource()
    {
        var bases = new HashSet<INamedTypeSymbol>(SymbolEqualityComparer.Default);
        var pending = new Stack<INamespaceOrTypeSymbol>();
        pending.Push(_services.Compilation.Assembly.GlobalNamespace);
        while (pending.Count > 0)
        {
            foreach (var member in pending.Pop().GetMembers())
            {
                if (member is INamespaceSymbol ns)
                {
                    pending.Push(ns);
                }
                else if (member is INamedTypeSymbol type)
                {
                    pending.Push(type); // nested types
                    for (var baseType = type.BaseType; baseType is not null && baseType.DeclaringSyntaxReferences.Length > 0; baseType = baseType.BaseType)
                    {
                        bases.Add(baseType.OriginalDefinition);
                    }
                }
            }
        }

        return bases;
    }

    private ModuleModel? DescribeCall(IInvocationOperation invocation, int depth, CancellationToken cancellationToken)
    {
        var method = invocation.TargetMethod;
        if (Torch.IsInTorchSharp(method))
        {
            if (method.IsStatic && method.Name == "Sequential" && SymbolEqualityComparer.Default.Equals(method.ContainingType, Torch.Nn))
            {
                return new ModuleModel((INamedTypeSymbol)method.ReturnType, invocation, SequentialChildren(invocation, depth, cancellationToken));
            }

            if (method.Name == "append" && invocation.Instance is { } receiver && Torch.Containers.NameOf(receiver.Type) == "Sequential")
            {
                var before = Describe(receiver, depth + 1, cancellationToken);
                return before?.WithChildren(Append(before.Children, invocation, depth, cancellationToken));
            }

            // ModuleExtensionMethods.to(device)/cuda()/float()/...: the same module, moved.
            if (method.IsExtensionMethod && invocation.Arguments.Length > 0 && method.ReturnType is { } returned
                && SymbolEqualityComparer.Default.Equals(returned.OriginalDefinition, method.Parameters[0].Type.OriginalDefinition)
                && Torch.IsModule(returned))
            {
                return Describe(invocation.Arguments[0].Value, depth + 1, cancellationToken);
            }

            return method.IsStatic && method.ReturnType is INamedTypeSymbol { IsAbstract: false } created && Torch.IsModule(created)
                ? new ModuleModel(created, invocation, default)
                : null;
        }

        if (method.MethodKind == MethodKind.Ordinary && method.DeclaringSyntaxReferences.Length > 0 && Torch.IsModule(method.ReturnType))
        {
            return DescribeFactory(method, depth, cancellationToken) ?? FromStaticType(method.ReturnType);
        }

        return FromStaticType(method.ReturnType);
    }

    /// <summary>A helper that builds and returns a module: the module of its returned expression, when all its returns agree.</summary>
    private ModuleModel? DescribeFactory(IMethodSymbol method, int depth, CancellationToken cancellationToken)
    {
        // The bound body is enough to read its returns: no graph is built for this.
        if (_services.GetBody(method, cancellationToken) is not { } body)
        {
            return null;
        }

        ModuleModel? result = null;
        foreach (var @return in body.OwnReturns())
        {
            if (@return.ReturnedValue is { } value)
            {
                var model = Describe(value, depth + 1, cancellationToken);
                if (model is null || (result is not null && !SymbolEqualityComparer.Default.Equals(model.Type, result.Type)))
                {
                    return null;
                }

                result = result is null ? model : new ModuleModel(model.Type, null, default);
            }
        }

        return result;
    }

    private ImmutableArray<ModuleChild> SequentialChildren(IInvocationOperation invocation, int depth, CancellationToken cancellationToken)
    {
        var written = WrittenChildren(invocation);
        if (written.IsDefault)
        {
            return default;
        }

        var children = ImmutableArray.CreateBuilder<ModuleChild>(written.Length);
        foreach (var (name, module) in written)
        {
            children.Add(new ModuleChild(name, module, Describe(module, depth + 1, cancellationToken)));
        }

        return children.MoveToImmutable();
    }

    /// <summary>
    /// The children written in a <c>Sequential(...)</c> call's argument list, with their names, before any is described
    /// (a rule can look at them first to skip the description); default when the children come from an
    /// <c>IEnumerable</c> or a tuple built elsewhere, which is not read.
    /// </summary>
    public static ImmutableArray<(string? Name, IOperation Module)> WrittenChildren(IInvocationOperation sequential)
    {
        var children = ImmutableArray.CreateBuilder<(string?, IOperation)>();
        foreach (var argument in sequential.Arguments)
        {
            var value = argument.Value.WithoutConversions();
            if (value is IArrayCreationOperation { Initializer: { } initializer })
            {
                foreach (var element in initializer.ElementValues)
                {
                    children.Add(NameAndModule(element));
                }
            }
            else if (argument.ArgumentKind == ArgumentKind.ParamArray && value is IArrayCreationOperation { Initializer: null })
            {
                // Sequential() with no children: nothing to add.
            }
            else if (value?.Syntax is CollectionExpressionSyntax collection && CollectionElements(value, collection) is { IsDefault: false } elements)
            {
                foreach (var element in elements)
                {
                    children.Add(NameAndModule(element));
                }
            }
            else
            {
                return default; // an IEnumerable or a tuple built elsewhere: its children are not read
            }
        }

        return children.ToImmutable();
    }

    /// <summary>
    /// The elements of a C# 12 collection expression (<c>Sequential([conv, bn])</c>), in order; default when it spreads
    /// another collection (<c>..layers</c>). Read from the operation's children, which Roslyn 4.8 (no collection expression
    /// operation yet) and later versions (<c>ICollectionExpressionOperation</c>) both give one per element.
    /// </summary>
    private static ImmutableArray<IOperation> CollectionElements(IOperation collection, CollectionExpressionSyntax syntax)
    {
        foreach (var element in syntax.Elements)
        {
            if (element is not ExpressionElementSyntax)
            {
                return default;
            }
        }

        var elements = ImmutableArray.CreateRange(collection.ChildOperations);
        if (elements.Length != syntax.Elements.Count)
        {
            return default;
        }

        for (var i = 0; i < elements.Length; i++)
        {
            if (elements[i].Syntax != ((ExpressionElementSyntax)syntax.Elements[i]).Expression
                && elements[i].WithoutConversions()?.Syntax != ((ExpressionElementSyntax)syntax.Elements[i]).Expression)
            {
                return default;
            }
        }

        return elements;
    }

    /// <summary>A child as written: <c>("fc", nn.Linear(...))</c> is named, <c>nn.Linear(...)</c> is not.</summary>
    private static (string? Name, IOperation Module) NameAndModule(IOperation element)
    {
        element = element.WithoutConversions()!;
        return element is ITupleOperation { Elements.Length: 2 } tuple
            ? (tuple.Elements[0].WithoutConversions()?.ConstantValue.Value as string, tuple.Elements[1])
            : (null, element);
    }

    private ImmutableArray<ModuleChild> Append(ImmutableArray<ModuleChild> children, IInvocationOperation append, int depth, CancellationToken cancellationToken)
    {
        if (children.IsDefault)
        {
            return default;
        }

        var arguments = append.Arguments;
        var name = arguments.Length == 2 ? arguments[0].Value.ConstantValue.Value as string : null;
        var module = arguments[arguments.Length - 1].Value;
        return children.Add(new ModuleChild(name, module, Describe(module, depth + 1, cancellationToken)));
    }

    private ModuleChild Child(IOperation element, int depth, CancellationToken cancellationToken)
    {
        var (name, module) = NameAndModule(element);
        return new ModuleChild(name, module, Describe(module, depth + 1, cancellationToken));
    }

    /// <summary>
    /// A local assigned one module (moves such as <c>model = model.to(device)</c> aside); a <c>Sequential</c>'s
    /// <c>append</c> statements in the same block after the declaration add children; any other <c>append</c> makes the
    /// children unknown.
    /// </summary>
    private ModuleModel? DescribeLocal(ILocalSymbol local, int depth, CancellationToken cancellationToken)
    {
        if (local.DeclaringSyntaxReferences.Length == 0 || BodyOf(local.DeclaringSyntaxReferences[0].GetSyntax(cancellationToken)) is not { } bodySyntax)
        {
            return null;
        }

        var body = BoundBody(bodySyntax, cancellationToken);
        if (body is null)
        {
            return null;
        }

        IOperation? value = null;
        IOperation? declaration = null;
        var appends = new List<IInvocationOperation>();
        var hooked = false;
        var escapes = false;
        var firstUse = int.MaxValue;
        foreach (var operation in body.DescendantsAndSelf())
        {
            switch (operation)
            {
                case IVariableDeclaratorOperation declarator when SymbolEqualityComparer.Default.Equals(declarator.Symbol, local):
                    if (declarator.GetVariableInitializer() is { } initializer)
                    {
                        if (value is not null)
                        {
                            return null;
                        }

                        value = initializer.Value;
                        declaration = declarator;
                    }

                    break;
                case ISimpleAssignmentOperation { Target: ILocalReferenceOperation target } assignment
                    when SymbolEqualityComparer.Default.Equals(target.Local, local):
                    if (IsMoveOf(assignment.Value, local))
                    {
                        break;
                    }

                    if (value is not null)
                    {
                        return null;
                    }

                    value = assignment.Value;
                    declaration = assignment;
                    break;
                case IDeconstructionAssignmentOperation deconstruction
                    when deconstruction.Target.DescendantsAndSelf().OfType<ILocalReferenceOperation>().Any(l => SymbolEqualityComparer.Default.Equals(l.Local, local)):
                    return null;
                case IArgumentOperation { Parameter.RefKind: RefKind.Ref or RefKind.Out, Value: ILocalReferenceOperation byReference }
                    when SymbolEqualityComparer.Default.Equals(byReference.Local, local):
                    return null;
                case IInvocationOperation { TargetMethod.Name: "append", Instance: ILocalReferenceOperation receiver } append
                    when SymbolEqualityComparer.Default.Equals(receiver.Local, local):
                    appends.Add(append);
                    break;
                case IInvocationOperation { TargetMethod.Name: "register_forward_hook" or "register_forward_pre_hook", Instance: ILocalReferenceOperation receiver }
                    when SymbolEqualityComparer.Default.Equals(receiver.Local, local):
                    hooked = true;
                    break;
                case ILocalReferenceOperation reference when SymbolEqualityComparer.Default.Equals(reference.Local, local) && !reference.IsDeclaration:
                    // Handed to other code as an argument, the module may be changed where this cannot see. A lambda or local
                    // function that only reads it (model.call(x) in an LBFGS closure) changes nothing: its appends, hooks and
                    // assignments are found by this walk like any other, which descends into it.
                    if (reference.Parent is IArgumentOperation { Parent: IInvocationOperation { TargetMethod: var callee } } && !Torch.IsInTorchSharp(callee))
                    {
                        escapes = true;
                    }

                    var isAppendReceiver = reference.Parent is IInvocationOperation { TargetMethod.Name: "append" } call && call.Instance == reference;
                    var isAssigned = reference.Parent is ISimpleAssignmentOperation { Target: var assigned } && assigned == reference;
                    if (!isAppendReceiver && !isAssigned)
                    {
                        firstUse = System.Math.Min(firstUse, reference.Syntax.SpanStart);
                    }

                    break;
            }
        }

        var model = Describe(value, depth + 1, cancellationToken);
        if (model is null)
        {
            return null;
        }

        if (hooked)
        {
            model = model.WithForwardHooks();
        }

        if (escapes && !model.Children.IsDefault)
        {
            return model.WithChildren(default);
        }

        if (appends.Count == 0)
        {
            return model;
        }

        var children = model.Children;
        var statement = StatementOf(declaration);
        foreach (var append in appends.OrderBy(a => a.Syntax.SpanStart))
        {
            // Only appends in the declaring block, after the declaration and before any other use, say what every use sees.
            var appendStatement = append.Parent as IExpressionStatementOperation;
            if (statement?.Parent is not IBlockOperation block || appendStatement?.Parent != block
                || appendStatement.Syntax.SpanStart < statement.Syntax.SpanStart || append.Syntax.SpanStart > firstUse)
            {
                return model.WithChildren(default);
            }

            children = Append(children, append, depth, cancellationToken);
        }

        return model.WithChildren(children);
    }

    private IOperation? BoundBody(SyntaxNode bodySyntax, CancellationToken cancellationToken)
    {
        if (_boundBodies.TryGetValue(bodySyntax, out var known))
        {
            return known;
        }

        // A lambda or local function inside a remembered body: its operation is already part of that tree.
        foreach (var pair in _boundBodies)
        {
            if (pair.Key.SyntaxTree == bodySyntax.SyntaxTree && pair.Key.Span.Contains(bodySyntax.Span))
            {
                foreach (var operation in pair.Value.DescendantsAndSelf())
                {
                    if (operation.Syntax == bodySyntax && operation is IAnonymousFunctionOperation or ILocalFunctionOperation)
                    {
                        return operation;
                    }
                }
            }
        }

        return _services.SemanticModel(bodySyntax.SyntaxTree)?.GetOperation(bodySyntax, cancellationToken);
    }

    /// <summary>A field or property assigned in its own class only (private, readonly or get-only): the module all its assignments agree on.</summary>
    private ModuleModel? DescribeMember(ISymbol member, int depth, CancellationToken cancellationToken)
    {
        var found = _memberAssignments.GetOrAdd(member, m => FindWrites(m, cancellationToken));
        if (found is not { Writes.Length: > 0 } memberWrites)
        {
            return null;
        }

        var values = memberWrites.Writes;
        ModuleModel? result = null;
        foreach (var value in values)
        {
            var model = Describe(value, depth + 1, cancellationToken);
            if (model is null || (result is not null && !SymbolEqualityComparer.Default.Equals(model.Type, result.Type)))
            {
                return null;
            }

            result = result is null ? model : new ModuleModel(model.Type, null, default);
        }

        if (result is not null && memberWrites.Appended)
        {
            result = result.WithChildren(default); // children appended elsewhere (a constructor's layers.append(...))
        }

        if (result is { Creation: { } listCreation } && Torch.Containers.NameOf(result.Type) == "ModuleList`1")
        {
            result = result.WithElements(ListElements(member, listCreation, depth, cancellationToken));
        }

        return result is not null && memberWrites.Hooked ? result.WithForwardHooks() : result;
    }

    private MemberAssignments? FindWrites(ISymbol member, CancellationToken cancellationToken)
    {
        var onlyItsClassWrites = member switch
        {
            IFieldSymbol field => field.IsReadOnly || field.DeclaredAccessibility == Accessibility.Private,
            // init-only setters can be used by an object initializer anywhere; a property with accessor bodies is no storage.
            IPropertySymbol property => FlowAnalysis.AccessPath.IsStorage(property)
                                        && (property.SetMethod is null || (property.SetMethod.DeclaredAccessibility == Accessibility.Private && !property.SetMethod.IsInitOnly)),
            _ => false,
        };

        if (!onlyItsClassWrites || member.ContainingType is not { } type || !_services.DeclaredHere(type))
        {
            return null; // no source, or source in a referenced compilation that cannot be bound here
        }

        var writes = ImmutableArray.CreateBuilder<IOperation>();
        bool appended = false, hooked = false;
        if (NodesNaming(type, member.Name, cancellationToken) is { } candidates)
        {
            foreach (var node in candidates)
            {
                if (_services.SemanticModel(node.SyntaxTree) is not { } model)
                {
                    return null;
                }

                switch (node)
                {
                    case VariableDeclaratorSyntax { Initializer: { } initializer } declarator
                        when declarator.Identifier.ValueText == member.Name && declarator.Parent?.Parent is FieldDeclarationSyntax:
                        if (SymbolEqualityComparer.Default.Equals(model.GetDeclaredSymbol(declarator, cancellationToken), member)
                            && model.GetOperation(initializer.Value, cancellationToken) is { } fieldValue)
                        {
                            writes.Add(fieldValue);
                        }

                        break;
                    case PropertyDeclarationSyntax { Initializer: { } initializer } property when property.Identifier.ValueText == member.Name:
                        if (SymbolEqualityComparer.Default.Equals(model.GetDeclaredSymbol(property, cancellationToken), member)
                            && model.GetOperation(initializer.Value, cancellationToken) is { } propertyValue)
                        {
                            writes.Add(propertyValue);
                        }

                        break;
                    case AssignmentExpressionSyntax assignment when Mentions(assignment.Left, member.Name):
                        switch (model.GetOperation(assignment, cancellationToken))
                        {
                            case ISimpleAssignmentOperation simple when SymbolEqualityComparer.Default.Equals(simple.Target.ReferencedSymbol(), member):
                                writes.Add(simple.Value);
                                break;
                            case IDeconstructionAssignmentOperation deconstruction
                                when deconstruction.Target.DescendantsAndSelf().Any(t => SymbolEqualityComparer.Default.Equals(t.ReferencedSymbol(), member)):
                                return null;
                            case ICompoundAssignmentOperation or ICoalesceAssignmentOperation:
                                return null;
                        }

                        break;
                    case ArgumentSyntax { RefKindKeyword.RawKind: not 0 } byReference when Mentions(byReference.Expression, member.Name):
                        if (SymbolEqualityComparer.Default.Equals(model.GetOperation(byReference.Expression, cancellationToken).ReferencedSymbol(), member))
                        {
                            return null; // ref/out: written where this cannot see
                        }

                        break;
                    case InvocationExpressionSyntax { Expression: MemberAccessExpressionSyntax { Name.Identifier.ValueText: var called, Expression: var receiver } }
                        when called is "append" or "register_forward_hook" or "register_forward_pre_hook" && NameOf(receiver) == member.Name:
                        if (SymbolEqualityComparer.Default.Equals(model.GetOperation(receiver, cancellationToken).ReferencedSymbol(), member))
                        {
                            appended |= called == "append";
                            hooked |= called != "append";
                        }

                        break;
                }
            }
        }

        return new MemberAssignments(writes.ToImmutable(), appended, hooked);
    }

    /// <summary>
    /// The syntax nodes of <paramref name="type"/> that may write, append to or hook the member named <paramref name="name"/>
    /// (see <see cref="WriteNaming"/>), found from the places the name occurs in the type's text: a search of the text and a
    /// token lookup per occurrence, instead of a walk over every node of the type (that walk was the composition model's
    /// largest cost). A type whose text has a Unicode escape, which could spell the name in another way, has its tokens walked.
    /// </summary>
    private List<SyntaxNode>? NodesNaming(INamedTypeSymbol type, string name, CancellationToken cancellationToken)
        => _namedNodes.GetOrAdd((type, name), key =>
        {
            var found = new List<SyntaxNode>();
            foreach (var token in TokensNaming(key.Type, key.Name, cancellationToken))
            {
                if (WriteNaming(token) is { } node && !found.Contains(node))
                {
                    found.Add(node);
                }
            }

            return found.Count > 0 ? found : null;
        });

    /// <summary>The tokens of <paramref name="type"/> (every part) whose value is <paramref name="name"/>.</summary>
    private List<SyntaxToken> TokensNaming(INamedTypeSymbol type, string name, CancellationToken cancellationToken)
    {
        var found = new List<SyntaxToken>();
        foreach (var reference in type.DeclaringSyntaxReferences)
        {
            found.AddRange(_services.TokensNaming(reference.GetSyntax(cancellationToken), name, cancellationToken));
        }

        return found;
    }

    /// <summary>
    /// The node that makes <paramref name="identifier"/> a candidate write of the member it names, or null: a field
    /// declarator or property with an initializer, an assignment to it (also inside a deconstruction), a <c>ref</c>/<c>out</c>
    /// argument, or an <c>append</c>/<c>register_forward_hook</c> call on it.
    /// </summary>
    private static SyntaxNode? WriteNaming(SyntaxToken identifier)
    {
        switch (identifier.Parent)
        {
            case VariableDeclaratorSyntax { Initializer: not null, Parent.Parent: FieldDeclarationSyntax } declarator when declarator.Identifier == identifier:
                return declarator;
            case PropertyDeclarationSyntax { Initializer: not null } property when property.Identifier == identifier:
                return property;
            case SimpleNameSyntax name:
                ExpressionSyntax named = name.Parent is MemberAccessExpressionSyntax access && access.Name == name ? access : name;
                switch (named.Parent)
                {
                    case AssignmentExpressionSyntax assignment when assignment.Left == named:
                        return assignment;
                    case ArgumentSyntax { RefKindKeyword.RawKind: not 0 } byReference when byReference.Expression == named:
                        return byReference;
                    case MemberAccessExpressionSyntax { Name.Identifier.ValueText: "append" or "register_forward_hook" or "register_forward_pre_hook", Parent: InvocationExpressionSyntax call } receiver
                        when receiver.Expression == named && call.Expression == receiver:
                        return call;
                }

                // A name anywhere on the left of a deconstruction: (this.encoder, x) = ...
                for (SyntaxNode? node = name.Parent; node is not null and not StatementSyntax and not MemberDeclarationSyntax; node = node.Parent)
                {
                    if (node.Parent is AssignmentExpressionSyntax { Left: TupleExpressionSyntax or DeclarationExpressionSyntax } deconstruction && deconstruction.Left == node)
                    {
                        return deconstruction;
                    }
                }

                return null;
            default:
                return null;
        }
    }

    /// <summary>True when <paramref name="expression"/> names <paramref name="name"/> itself or inside a tuple (deconstruction).</summary>
    private static bool Mentions(ExpressionSyntax expression, string name)
        => NameOf(expression) == name
           || (expression is TupleExpressionSyntax or DeclarationExpressionSyntax
               && expression.DescendantNodes().OfType<SimpleNameSyntax>().Any(n => n.Identifier.ValueText == name));

    /// <summary>What a class does to one of its module members: the values assigned, and whether it appends to it or hooks it.</summary>
    private sealed class MemberAssignments
    {
        public MemberAssignments(ImmutableArray<IOperation> writes, bool appended, bool hooked)
        {
            Writes = writes;
            Appended = appended;
            Hooked = hooked;
        }

        public ImmutableArray<IOperation> Writes { get; }

        public bool Appended { get; }

        public bool Hooked { get; }
    }

    private static string? NameOf(ExpressionSyntax expression) => expression switch
    {
        IdentifierNameSyntax identifier => identifier.Identifier.ValueText,
        MemberAccessExpressionSyntax access => access.Name.Identifier.ValueText,
        _ => null,
    };

    /// <summary>True for <c>local.to(device)</c>, <c>local.cuda()</c>, ...: the same module moved, which TorchSharp returns as the same instance.</summary>
    private bool IsMoveOf(IOperation value, ILocalSymbol local)
        => value.WithoutConversions() is IInvocationOperation { TargetMethod.IsExtensionMethod: true, Arguments.Length: > 0 } move
           && Torch.IsInTorchSharp(move.TargetMethod)
           && move.Arguments[0].Value.WithoutConversions() is ILocalReferenceOperation moved
           && SymbolEqualityComparer.Default.Equals(moved.Local, local);

    private static IOperation? StatementOf(IOperation? operation)
    {
        for (var current = operation; current is not null; current = current.Parent)
        {
            if (current.Parent is IBlockOperation)
            {
                return current;
            }
        }

        return null;
    }

    private static SyntaxNode? BodyOf(SyntaxNode declaration)
    {
        for (var node = declaration.Parent; node is not null; node = node.Parent)
        {
            switch (node)
            {
                case BaseMethodDeclarationSyntax or AccessorDeclarationSyntax or LocalFunctionStatementSyntax or AnonymousFunctionExpressionSyntax:
                    return node;
                case GlobalStatementSyntax { Parent: CompilationUnitSyntax program }:
                    return program; // top-level statements: the program is one body (its operation is the entry point's)
            }
        }

        return null;
    }


    private sealed class TypeAndNameComparer : IEqualityComparer<(INamedTypeSymbol Type, string Name)>
    {
        public static readonly TypeAndNameComparer Instance = new();

        public bool Equals((INamedTypeSymbol Type, string Name) x, (INamedTypeSymbol Type, string Name) y)
            => x.Name == y.Name && SymbolEqualityComparer.Default.Equals(x.Type, y.Type);

        public int GetHashCode((INamedTypeSymbol Type, string Name) obj)
            => unchecked((SymbolEqualityComparer.Default.GetHashCode(obj.Type) * 397) ^ StringComparer.Ordinal.GetHashCode(obj.Name));
    }
}
