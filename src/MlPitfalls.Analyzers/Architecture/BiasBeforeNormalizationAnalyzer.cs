using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Collections.Immutable;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using Microsoft.CodeAnalysis.Diagnostics;
using Microsoft.CodeAnalysis.FlowAnalysis;
using Microsoft.CodeAnalysis.Operations;
using MlPitfalls.Analyzers.Analyses.Composition;
using MlPitfalls.Analyzers.Analyses.LayerGraph;
using MlPitfalls.Analyzers.Infrastructure;

namespace MlPitfalls.Analyzers.Architecture;

/// <summary>
/// MLP005. A linear or convolution layer with its bias on whose output goes straight into BatchNorm (or, for a
/// convolution, InstanceNorm): the normalization subtracts each channel's mean, so the bias is cancelled exactly. Found
/// in two places: adjacent children of <c>nn.Sequential(...)</c>, and a module class's own code, through the layer
/// graph of every member (reported when the class is done, and only when no member uses that layer's output any
/// other way). Reported once per layer, on the expression that creates it.
/// </summary>
[DiagnosticAnalyzer(Microsoft.CodeAnalysis.LanguageNames.CSharp)]
public sealed class BiasBeforeNormalizationAnalyzer : TorchSharpAnalyzer
{
    /// <summary>Diagnostic property: the name of the argument the fix sets to false (<c>bias</c> or <c>hasBias</c>).</summary>
    public const string FlagProperty = "Flag";

    public override ImmutableArray<DiagnosticDescriptor> SupportedDiagnostics { get; } =
        ImmutableArray.Create(Descriptors.MLP005_BiasBeforeNormalization);

    private protected override void OnTorchSharpCompilationStart(CompilationStartAnalysisContext context, TorchSymbols torch)
    {
        if (AnalysisServices.For(context.Compilation) is not { } services || torch.Nn is null)
        {
            return;
        }

        var reported = new ConcurrentDictionary<SyntaxNode, bool>();
        // Per class, and only where its text names what a pairing needs: most classes of a TorchSharp project build no
        // Sequential and use no normalization, and are passed over without a single callback on their operations.
        context.RegisterSymbolStartAction(
            start =>
            {
                var type = (INamedTypeSymbol)start.Symbol;
                var namesNormalization = services.MentionsInItsText(type, "BatchNorm", start.CancellationToken)
                                         || services.MentionsInItsText(type, "InstanceNorm", start.CancellationToken);
                if (!namesNormalization)
                {
                    return; // nothing to pair a layer with
                }

                if (services.MentionsInItsText(type, "Sequential", start.CancellationToken))
                {
                    start.RegisterOperationAction(
                        operationContext =>
                        {
                            var invocation = (IInvocationOperation)operationContext.Operation;
                            if (invocation.TargetMethod is { Name: "Sequential", IsStatic: true } method
                                && SymbolEqualityComparer.Default.Equals(method.ContainingType, torch.Nn)
                                && (IsListArgument(invocation) || CreatesBiasedLayerInPlace(torch, invocation)))
                            {
                                ReportSequentialChildren(invocation, services, reported, operationContext);
                            }
                            else if (invocation.TargetMethod is { Name: "append", IsStatic: false } && invocation.Instance is { } receiver
                                     && torch.Containers.NameOf(receiver.Type) == "Sequential" && invocation.Arguments.Length > 0
                                     && IsBiasedLayerCreation(torch, invocation.Arguments[invocation.Arguments.Length - 1].Value))
                            {
                                ReportAppendedChild(invocation, services, reported, operationContext);
                            }
                        },
                        OperationKind.Invocation);
                }

                if (!torch.IsModule(type))
                {
                    return; // only a module class's own forward pairs its layers
                }

                // Each member's blocks (and graph, when it calls modules) are collected as the driver hands them over, and
                // analysed when the class is done: the fields the analysis reads are written in constructors and
                // initializers, which by then are bound, whichever member came first.
                var members = new ConcurrentQueue<(ImmutableArray<IOperation> Blocks, ControlFlowGraph? Graph)>();
                start.RegisterOperationBlockAction(block =>
                {
                    // Every block: methods, constructors, accessors, field and property initializers (a layer handed to a
                    // Sequential in a constructor, or called in a lambda a field holds, is used there too). A graph only
                    // for a body whose values need the dataflow.
                    ControlFlowGraph? graph = null;
                    if (LayerGraphAnalysis.MayCallModules(torch, block.OperationBlocks)
                        && LayerGraphAnalysis.NeedsFlow(torch, block.OperationBlocks, block.CancellationToken))
                    {
                        foreach (var operation in block.OperationBlocks)
                        {
                            var built = block.GetControlFlowGraph(operation);
                            if (graph is not null && built != graph)
                            {
                                members.Enqueue((ImmutableArray<IOperation>.Empty, graph)); // a second body in the same blocks
                            }

                            graph = built;
                        }
                    }

                    members.Enqueue((block.OperationBlocks, graph));
                });
                start.RegisterSymbolEndAction(end =>
                {
                    var uses = new List<LayerUses>();
                    foreach (var (blocks, graph) in members)
                    {
                        var handedOn = new LayerUses();
                        LayerGraphAnalysis.ModulesHandedOn(services, blocks, handedOn, end.CancellationToken);
                        uses.Add(handedOn);
                        uses.Add(graph is not null
                            ? LayerGraphAnalysis.For(services, graph, end.CancellationToken)
                            : LayerGraphAnalysis.ForWithoutFlow(services, blocks, end.CancellationToken));
                    }

                    ReportNormalizedLayers(type, uses, services, reported, end);
                });
            },
            SymbolKind.NamedType);
    }

    /// <summary><c>Sequential(modules)</c>: children added to a list elsewhere (see <see cref="ModuleComposition.ListedChildPairs"/>).</summary>
    private static bool IsListArgument(IInvocationOperation sequential)
        => sequential.Arguments.Length == 1 && sequential.Arguments[0].Value.WithoutConversions() is ILocalReferenceOperation;

    /// <summary>
    /// True when some child is a linear or convolution layer created right in the argument list, the only kind a
    /// neighbour can be reported for: every other <c>Sequential</c> is passed over before its children (some of them
    /// locals, each described from its whole method) are described.
    /// </summary>
    private static bool CreatesBiasedLayerInPlace(TorchSymbols torch, IInvocationOperation sequential)
    {
        var children = ModuleComposition.WrittenChildren(sequential);
        foreach (var (_, module) in children.IsDefault ? ImmutableArray<(string?, IOperation)>.Empty : children)
        {
            if (IsBiasedLayerCreation(torch, module))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>
    /// True when <paramref name="module"/> is a call of TorchSharp's factory for a layer that has a bias flag, of a plain
    /// method in the compilation that may make one (a factory helper, followed by <see cref="FactoryBias"/>), or the
    /// creation of a user module that may wrap one (<see cref="WrappedLayer"/>).
    /// </summary>
    private static bool IsBiasedLayerCreation(TorchSymbols torch, IOperation module)
        => module.WithoutConversions() switch
        {
            IInvocationOperation { TargetMethod: var factory } => torch.IsInTorchSharp(factory)
                ? LayerKinds.BiasFlag(torch, factory.ReturnType) is not null
                : factory.MethodKind == MethodKind.Ordinary && factory.DeclaringSyntaxReferences.Length > 0 && torch.IsModule(factory.ReturnType),
            // new ConvWrapper(...): a user module that may wrap one layer (WrappedLayer)
            IObjectCreationOperation { Type: INamedTypeSymbol created } => created.DeclaringSyntaxReferences.Length > 0 && torch.IsModule(created),
            _ => false,
        };

    /// <summary>
    /// <c>seq.append(conv)</c> with the layer created in place: its neighbour is the child appended next, read from the whole
    /// <c>Sequential</c> as the composition model sees it — the top of an <c>append(...).append(...)</c> chain, or the local
    /// whose <c>append</c> statements in its declaring block add its children.
    /// </summary>
    private static void ReportAppendedChild(
        IInvocationOperation append, AnalysisServices services, ConcurrentDictionary<SyntaxNode, bool> reported, OperationAnalysisContext context)
    {
        var whole = (IOperation)append;
        while (whole.Parent is IInvocationOperation { TargetMethod.Name: "append" } next && next.Instance == whole)
        {
            whole = next;
        }

        if (whole == append && append.Instance.WithoutConversions() is ILocalReferenceOperation local)
        {
            whole = local; // append statements on a local: its model holds every child they add
        }

        var layer = append.Arguments[append.Arguments.Length - 1].Value.WithoutConversions()!;
        if (services.Modules.Describe(whole, context.CancellationToken) is not { Children: { IsDefault: false } children })
        {
            return;
        }

        for (var i = 0; i + 1 < children.Length; i++)
        {
            if (children[i].Expression.WithoutConversions()?.Syntax == layer.Syntax)
            {
                ReportPair(children[i], children[i + 1], services, reported, context);
            }
        }
    }

    private static void ReportSequentialChildren(
        IInvocationOperation sequential, AnalysisServices services, ConcurrentDictionary<SyntaxNode, bool> reported, OperationAnalysisContext context)
    {
        var pairs = new List<(ModuleChild First, ModuleChild Next)>();
        if (services.Modules.Describe(sequential, context.CancellationToken) is { Children: { IsDefault: false } children })
        {
            for (var i = 0; i + 1 < children.Length; i++)
            {
                pairs.Add((children[i], children[i + 1]));
            }
        }
        else
        {
            pairs.AddRange(services.Modules.ListedChildPairs(sequential, context.CancellationToken)); // Sequential(modules) after modules.Add(...)
        }

        foreach (var (child, next) in pairs)
        {
            ReportPair(child, next, services, reported, context);
        }
    }

    /// <summary>
    /// Reports <paramref name="child"/> when it is a layer whose bias <paramref name="next"/> cancels: created in place (on
    /// its creation), or made by a call of a factory in the compilation that creates and returns one layer (on that call).
    /// </summary>
    private static void ReportPair(
        ModuleChild child, ModuleChild next, AnalysisServices services, ConcurrentDictionary<SyntaxNode, bool> reported, OperationAnalysisContext context)
    {
        if (child is not { Model: { Creation: { } creation, HasForwardHooks: false } layer } || next.Model is not { HasForwardHooks: false } normalization)
        {
            return;
        }

        if (creation is IObjectCreationOperation { Type: INamedTypeSymbol wrapperType } wrapper && LayerKinds.IsCreatedInPlace(child)
            && WrappedLayer(services, wrapperType, context.CancellationToken) is ({ } inner, var field)
            && LayerKinds.CancelsBias(services.Torch, inner.Type!, normalization.Type)
            && LayerKinds.BiasEnabled(services, inner, out _, context.CancellationToken) == true
            && reported.TryAdd(wrapper.Syntax, true))
        {
            // new ConvWrapper(...) before BatchNorm: the wrapper's one layer, reported on this use (no fix: the wrapper decides its bias).
            context.ReportDiagnostic(Diagnostic.Create(
                Descriptors.MLP005_BiasBeforeNormalization,
                wrapper.Syntax.GetLocation(),
                $"{Named(inner.Type!, field.Name)} (in '{wrapperType.Name}')",
                Named(normalization.Type, next.Name),
                LayerKinds.BiasFlag(services.Torch, inner.Type)!));
            return;
        }

        if (!LayerKinds.CancelsBias(services.Torch, layer.Type, normalization.Type))
        {
            return;
        }

        if (LayerKinds.IsCreatedInPlace(child))
        {
            if (LayerKinds.BiasEnabled(services, creation, out var fromParameter, context.CancellationToken) == true && reported.TryAdd(creation.Syntax, true))
            {
                context.ReportDiagnostic(Create(services.Torch, creation, Named(layer.Type, child.Name), Named(normalization.Type, next.Name), fromParameter));
            }
        }
        else if (child.Expression.WithoutConversions() is IInvocationOperation factoryCall
                 && FactoryBias(services, factoryCall, creation, context.CancellationToken) is (true, var parameter)
                 && reported.TryAdd(factoryCall.Syntax, true))
        {
            var flag = parameter?.Name ?? LayerKinds.BiasFlag(services.Torch, layer.Type)!;
            context.ReportDiagnostic(Diagnostic.Create(
                Descriptors.MLP005_BiasBeforeNormalization,
                factoryCall.Syntax.GetLocation(),
                parameter is null ? ImmutableDictionary<string, string?>.Empty : ImmutableDictionary<string, string?>.Empty.Add(FlagProperty, flag),
                $"{Named(layer.Type, child.Name)} (made by '{factoryCall.TargetMethod.Name}')",
                Named(normalization.Type, next.Name),
                flag));
        }
    }

    /// <summary>
    /// Whether the layer a call of a source factory makes (<c>_get_conv1d_layer(...)</c>, which creates <paramref name="creation"/>
    /// and returns it) has its bias on, and the factory's parameter that decides it, when one does (<c>bias: bias</c> with
    /// <c>bool bias = true</c>): that parameter's argument at this call, its default when omitted. Null unless the factory
    /// is a plain method whose one <c>return</c> gives the layer it creates, used there for nothing but its own members
    /// (<c>conv.weight</c> initialised in place): then every call makes a new layer that only its caller holds.
    /// </summary>
    private static (bool Enabled, IParameterSymbol? Parameter)? FactoryBias(
        AnalysisServices services, IInvocationOperation call, IOperation creation, System.Threading.CancellationToken cancellationToken)
    {
        var factory = call.TargetMethod;
        if (factory.MethodKind != MethodKind.Ordinary || factory.IsVirtual || factory.IsAbstract || factory.IsOverride
            || services.GetBody(factory, cancellationToken) is not { } body || !body.Syntax.Span.Contains(creation.Syntax.Span)
            || body.Syntax.SyntaxTree != creation.Syntax.SyntaxTree)
        {
            return null;
        }

        IReturnOperation? only = null;
        foreach (var @return in body.OwnReturns())
        {
            if (only is not null)
            {
                return null;
            }

            only = @return;
        }

        var returned = only?.ReturnedValue?.WithoutConversions();
        if (returned is ILocalReferenceOperation { Local: var local })
        {
            foreach (var operation in body.Descendants())
            {
                if (operation is IVariableDeclaratorOperation declarator && SymbolEqualityComparer.Default.Equals(declarator.Symbol, local)
                    && declarator.GetVariableInitializer()?.Value.WithoutConversions() != creation)
                {
                    return null;
                }

                if (operation is ILocalReferenceOperation reference && SymbolEqualityComparer.Default.Equals(reference.Local, local) && reference != returned
                    && !(reference.Parent is IPropertyReferenceOperation { Instance: var instance } property && instance == reference && services.Torch.IsInTorchSharp(property.Property)
                         && !property.IsWrittenTo()))
                {
                    return null; // handed on, reassigned, hooked or changed (c.bias = null): not only the caller's
                }
            }
        }
        else if (returned != creation)
        {
            return null;
        }

        if (LayerKinds.BiasEnabled(services.Torch, creation) is { } known)
        {
            return (known, null);
        }

        var flag = LayerKinds.BiasFlag(services.Torch, creation.Type);
        foreach (var argument in ((IInvocationOperation)creation).Arguments)
        {
            if (argument.Parameter?.Name == flag && argument.Value.WithoutConversions() is IParameterReferenceOperation { Parameter: var parameter }
                && SymbolEqualityComparer.Default.Equals(parameter.ContainingSymbol, factory.OriginalDefinition) && !body.WritesTo(parameter))
            {
                return call.BooleanArgument(parameter.Name) is { } enabled ? (enabled, parameter) : null;
            }
        }

        return null;
    }

    /// <summary>
    /// For a user module that only wraps one layer (its <c>forward</c> is <c>return conv.call(x);</c> on a private field
    /// that holds a Linear or convolution created in the class): that layer's creation and the field. Null when the class
    /// names the field anywhere else (another call, a hook, a second assignment, a nested class): the layer might then be
    /// run or changed another way. Each <c>new Wrapper(...)</c> then makes one layer whose output the wrapper returns untouched.
    /// </summary>
    private static (IOperation Layer, IFieldSymbol Field)? WrappedLayer(AnalysisServices services, INamedTypeSymbol wrapper, System.Threading.CancellationToken cancellationToken)
    {
        if (wrapper.DeclaringSyntaxReferences.Length != 1 || services.Modules.SourceForward(wrapper, 1) is not { } forward
            || !SymbolEqualityComparer.Default.Equals(forward.ContainingType, wrapper) || services.GetBody(forward, cancellationToken) is not { } body)
        {
            return null;
        }

        IReturnOperation? only = null;
        var statements = 0;
        foreach (var operation in body.ChildOperations)
        {
            if (operation is IBlockOperation block)
            {
                foreach (var statement in block.Operations)
                {
                    statements++;
                    only = statement as IReturnOperation;
                }
            }
        }

        if (statements != 1 || only?.ReturnedValue?.WithoutConversions() is not IInvocationOperation { Instance: IFieldReferenceOperation { Field: var field, Instance: IInstanceReferenceOperation } receiver } call
            || !services.Torch.IsModuleInvocation(call.TargetMethod) || call.Arguments.Length != 1
            || call.Arguments[0].Value.WithoutConversions() is not IParameterReferenceOperation { Parameter: var input } || !SymbolEqualityComparer.Default.Equals(input.ContainingSymbol, forward.OriginalDefinition)
            || field.DeclaredAccessibility != Accessibility.Private
            || services.Modules.Describe(receiver, cancellationToken) is not { Creation: IInvocationOperation layer, HasForwardHooks: false } model
            || LayerKinds.BiasFlag(services.Torch, model.Type) is null)
        {
            return null;
        }

        // The layer is created right where the field is initialized or assigned (not shared with another field or local),
        // the wrapper registers no hook on itself, and the field is named only where it is declared, assigned and called.
        var declaration = wrapper.DeclaringSyntaxReferences[0].GetSyntax(cancellationToken);
        var initialized = layer.Syntax.Parent is EqualsValueClauseSyntax { Parent: VariableDeclaratorSyntax declarator } && declarator.Identifier.ValueText == field.Name;
        var assigned = layer.Syntax.Parent is AssignmentExpressionSyntax { Left: var target } assignment && assignment.Right == layer.Syntax
                       && (target as IdentifierNameSyntax ?? (target as MemberAccessExpressionSyntax is { Expression: ThisExpressionSyntax } access ? access.Name : null))
                          ?.Identifier.ValueText == field.Name;
        if (!declaration.Span.Contains(layer.Syntax.Span) || declaration.SyntaxTree != layer.Syntax.SyntaxTree || !(initialized || assigned)
            || services.MentionsInItsText(wrapper, "register_forward", cancellationToken))
        {
            return null;
        }

        var mentions = services.TokensNaming(declaration, field.Name, cancellationToken).Count;

        // Declaration, assignment and the call: three, or two when the field is initialized where declared.
        return mentions == (initialized ? 2 : 3) ? (layer, field) : null;
    }

    private static void ReportNormalizedLayers(
        INamedTypeSymbol type, IEnumerable<LayerUses> uses, AnalysisServices services, ConcurrentDictionary<SyntaxNode, bool> reported, SymbolAnalysisContext context)
    {
        var torch = services.Torch;
        var usedElsewhere = new HashSet<SyntaxNode>();
        var candidates = new List<(IOperation Layer, ModuleModel Normalization, IInvocationOperation Call)>();
        foreach (var body in uses)
        {
            if (body.UsesAnything)
            {
                return; // some output could not be followed: any layer may be used unnormalized
            }

            usedElsewhere.UnionWith(body.UsedElsewhereLayers);
            candidates.AddRange(body.NormalizedOutputs);
        }

        foreach (var (layer, normalization, call) in candidates)
        {
            if (usedElsewhere.Contains(layer.Syntax) || layer.Type is not { } layerType
                || !LayerKinds.CancelsBias(torch, layerType, normalization.Type))
            {
                usedElsewhere.Add(layer.Syntax); // into InstanceNorm after a Linear: not cancelled, so used otherwise
            }
        }

        foreach (var (layer, normalization, call) in candidates)
        {
            if (!usedElsewhere.Contains(layer.Syntax) && IsOnlyUsedBy(type, layer.Syntax, services, context.CancellationToken)
                && LayerKinds.BiasEnabled(services, layer, out var fromParameter, context.CancellationToken) == true && reported.TryAdd(layer.Syntax, true))
            {
                context.ReportDiagnostic(Create(torch, layer, Named(layer.Type!, HolderName(layer.Syntax)), Named(normalization.Type, ReceiverName(call)), fromParameter));
            }
        }
    }

    /// <summary>
    /// The diagnostic on <paramref name="creation"/>. When the flag is a parameter that is true at every call
    /// (<paramref name="fromParameter"/>), the fix is not offered: setting the argument to false would silently ignore the
    /// parameter, and what to change (the callers, the default, the parameter itself) is the author's call.
    /// </summary>
    private static Diagnostic Create(TorchSymbols torch, IOperation creation, string layer, string normalization, bool fromParameter)
    {
        var flag = LayerKinds.BiasFlag(torch, creation.Type)!;
        return Diagnostic.Create(
            Descriptors.MLP005_BiasBeforeNormalization,
            creation.Syntax.GetLocation(),
            fromParameter ? ImmutableDictionary<string, string?>.Empty : ImmutableDictionary<string, string?>.Empty.Add(FlagProperty, flag),
            layer,
            normalization,
            flag);
    }

    /// <summary>
    /// True when only <paramref name="type"/>'s own code can run the layer created at <paramref name="creation"/>: the
    /// creation is written in the class itself (not in a nested class, a base class or a shared factory), and assigned to a
    /// private field or property (or a protected one of a sealed class) that no nested class names. Its members are then
    /// all the uses of the layer there are.
    /// </summary>
    private static bool IsOnlyUsedBy(INamedTypeSymbol type, SyntaxNode creation, AnalysisServices services, System.Threading.CancellationToken cancellationToken)
    {
        var declaration = creation.FirstAncestorOrSelf<TypeDeclarationSyntax>();
        var declaredHere = false;
        foreach (var reference in type.DeclaringSyntaxReferences)
        {
            declaredHere |= declaration is not null && reference.SyntaxTree == declaration.SyntaxTree && reference.Span == declaration.Span;
        }

        if (!declaredHere || HolderName(ModuleComposition.SequentialCallAround(creation) ?? creation) is not { } name)
        {
            return false;
        }

        ISymbol? holder = null;
        foreach (var member in type.GetMembers(name))
        {
            holder = member is IFieldSymbol or IPropertySymbol ? member : holder;
        }

        if (holder is null || !(holder.DeclaredAccessibility == Accessibility.Private
                                || (type.IsSealed && holder.DeclaredAccessibility is Accessibility.Protected or Accessibility.ProtectedAndInternal)))
        {
            return false;
        }

        foreach (var nested in type.GetTypeMembers())
        {
            if (services.MentionsInItsText(nested, name, cancellationToken))
            {
                return false; // a nested class may reach the private layer
            }
        }

        return true;
    }

    private static string Named(ITypeSymbol type, string? name) => name is null ? type.Name : $"{type.Name} '{name}'";

    /// <summary>The field, property or local a creation is assigned to (<c>conv1 = nn.Conv2d(...)</c>), or null.</summary>
    private static string? HolderName(SyntaxNode creation)
        => creation.Parent switch
        {
            EqualsValueClauseSyntax { Parent: VariableDeclaratorSyntax declarator } => declarator.Identifier.ValueText,
            EqualsValueClauseSyntax { Parent: PropertyDeclarationSyntax property } => property.Identifier.ValueText,
            AssignmentExpressionSyntax { Left: IdentifierNameSyntax name } => name.Identifier.ValueText,
            AssignmentExpressionSyntax { Left: MemberAccessExpressionSyntax access } => access.Name.Identifier.ValueText,
            // convs.Add(nn.Conv1d(...)): an element of the ModuleList field convs
            ArgumentSyntax { Parent: ArgumentListSyntax { Parent: InvocationExpressionSyntax { Expression: MemberAccessExpressionSyntax { Name.Identifier.ValueText: "Add" or "append" } add } } }
                => add.Expression switch
                {
                    IdentifierNameSyntax list => list.Identifier.ValueText,
                    MemberAccessExpressionSyntax { Expression: ThisExpressionSyntax, Name: var list } => list.Identifier.ValueText,
                    _ => null,
                },
            _ => null,
        };

    private static string? ReceiverName(IInvocationOperation call)
        => call.Instance is { } receiver && receiver.IsSimpleReference() && receiver.Syntax.ToString() is { Length: <= 40 } text ? text : null;
}
