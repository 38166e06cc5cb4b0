using System;
using System.Collections.Immutable;
using System.Linq;
using System.Runtime.CompilerServices;
using Microsoft.CodeAnalysis;

namespace MlPitfalls.Analyzers.Infrastructure;

/// <summary>
/// The TorchSharp symbols the rules reason about, resolved once per compilation and shared by every analyzer.
/// Rules recognise TorchSharp by these symbols, never by simple names, so a user's own <c>Optimizer</c> class
/// with a <c>step()</c> method is never mistaken for TorchSharp's.
/// Only <see cref="Tensor"/> is resolved eagerly (it decides whether TorchSharp is referenced at all); every other
/// symbol is a <see cref="Lazy{T}"/> resolved the first time a rule asks (moq.analyzers' <c>MoqKnownSymbols</c>), so a
/// compilation pays only for the symbols its code makes the rules look at. Symbols are looked up in TorchSharp's own
/// assembly, found by name among the references: <see cref="Compilation.GetTypeByMetadataName"/> searches every
/// reference (a few hundred in a .NET project) on each call, which made the lookups alone cost about a millisecond
/// per compilation, and a compilation without TorchSharp paid a failed search of them all. Rule-specific questions ("is this an
/// optimizer step") live next to their rule as extension methods; this class holds symbols and general questions.
/// </summary>
internal sealed class TorchSymbols
{
    // Keyed weakly by compilation: resolved once however many analyzers ask, and collected with the compilation.
    private static readonly ConditionalWeakTable<Compilation, TorchSymbols?[]> Cache = new();

    private readonly IAssemblySymbol _assembly;
    private readonly Lazy<INamedTypeSymbol?> _module, _optimizer, _autograd, _torch, _nn, _functional, _special;
    private readonly Lazy<ImmutableArray<INamedTypeSymbol>> _moduleArities;
    private readonly Lazy<ImmutableArray<IMethodSymbol>> _gradModeGuards;
    private readonly Lazy<TorchTypes> _losses, _activationModules, _layers, _containers, _shapeOnlyModules;

    private TorchSymbols(INamedTypeSymbol tensor, IAssemblySymbol assembly)
    {
        Tensor = tensor;
        _assembly = assembly;
        _module = Type("TorchSharp.torch+nn+Module");
        _optimizer = Type("TorchSharp.torch+optim+Optimizer");
        _autograd = Type("TorchSharp.torch+autograd");
        _torch = Type("TorchSharp.torch");
        _nn = Type("TorchSharp.torch+nn");
        _functional = Type("TorchSharp.torch+nn+functional");
        _special = Type("TorchSharp.torch+special");
        _moduleArities = new Lazy<ImmutableArray<INamedTypeSymbol>>(() => Resolve(
            "TorchSharp.torch+nn+Module`2", "TorchSharp.torch+nn+Module`3", "TorchSharp.torch+nn+Module`4",
            "TorchSharp.torch+nn+Module`5", "TorchSharp.torch+nn+Module`6", "TorchSharp.torch+nn+Module`7",
            "TorchSharp.torch+nn+IModule`2", "TorchSharp.torch+nn+IModule`3", "TorchSharp.torch+nn+IModule`4",
            "TorchSharp.torch+nn+IModule`5", "TorchSharp.torch+nn+IModule`6", "TorchSharp.torch+nn+IModule`7"));
        _gradModeGuards = new Lazy<ImmutableArray<IMethodSymbol>>(() =>
        {
            var builder = ImmutableArray.CreateBuilder<IMethodSymbol>();
            foreach (var name in new[] { "no_grad", "enable_grad", "set_grad_enabled", "inference_mode" })
            {
                foreach (var member in Torch?.GetMembers(name) ?? ImmutableArray<ISymbol>.Empty)
                {
                    if (member is IMethodSymbol { IsStatic: true } method)
                    {
                        builder.Add(method);
                    }
                }
            }

            return builder.ToImmutable();
        });
        _losses = Types("CrossEntropyLoss", "NLLLoss", "BCELoss", "BCEWithLogitsLoss", "KLDivLoss");
        _activationModules = Types("Softmax", "LogSoftmax", "Sigmoid");
        _layers = Types(
            "Linear", "Bilinear", "Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d",
            "BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "InstanceNorm1d", "InstanceNorm2d", "InstanceNorm3d",
            "LayerNorm", "GroupNorm", "Embedding");
        _containers = Types("Sequential", "ModuleList`1", "ModuleDict`1");
        // Modules whose output is their input with the values unchanged, as far as what a tensor *is* goes
        // (in evaluation mode for Dropout): they pass the provenance of what they receive.
        _shapeOnlyModules = Types(
            "Identity", "Flatten", "Unflatten", "Dropout", "Dropout1d", "Dropout2d", "Dropout3d", "AlphaDropout", "FeatureAlphaDropout");
    }

    /// <summary><c>torch.Tensor</c>; always present when TorchSharp is referenced.</summary>
    public INamedTypeSymbol Tensor { get; }

    /// <summary><c>torch.nn.Module</c>, the base of every module including <c>Module&lt;T, TResult&gt;</c> and losses.</summary>
    public INamedTypeSymbol? Module => _module.Value;

    /// <summary><c>torch.optim.Optimizer</c>, the base of every optimizer (SGD, Adam, LBFGS, user-written ones).</summary>
    public INamedTypeSymbol? Optimizer => _optimizer.Value;

    /// <summary><c>torch.autograd</c> (static), home of <c>torch.autograd.backward(...)</c>.</summary>
    public INamedTypeSymbol? Autograd => _autograd.Value;

    /// <summary>The static class <c>torch</c> (<c>torch.softmax</c>, <c>torch.log</c>, <c>torch.no_grad</c>, ...).</summary>
    public INamedTypeSymbol? Torch => _torch.Value;

    /// <summary>The static class <c>torch.nn</c>: the module factories (<c>nn.Linear(...)</c>, <c>nn.Sequential(...)</c>).</summary>
    public INamedTypeSymbol? Nn => _nn.Value;

    /// <summary><c>torch.nn.functional</c> (static).</summary>
    public INamedTypeSymbol? Functional => _functional.Value;

    /// <summary><c>torch.special</c> (static).</summary>
    public INamedTypeSymbol? Special => _special.Value;

    /// <summary><c>Module&lt;T..., TResult&gt;</c> and <c>IModule&lt;T..., TResult&gt;</c> for every arity (1 to 6 inputs).</summary>
    public ImmutableArray<INamedTypeSymbol> ModuleArities => _moduleArities.Value;

    /// <summary>
    /// The grad-mode guards <c>torch.no_grad()</c>, <c>enable_grad()</c>, <c>set_grad_enabled(bool)</c> and
    /// <c>inference_mode(bool)</c>: each returns an <c>IDisposable</c> and takes effect when called.
    /// </summary>
    public ImmutableArray<IMethodSymbol> GradModeGuards => _gradModeGuards.Value;

    /// <summary>True for <c>tensor.backward(...)</c> and <c>torch.autograd.backward(...)</c>.</summary>
    public bool IsBackward(IMethodSymbol method)
        => method.Name == "backward" && (IsTensor(method.ContainingType) || SymbolEqualityComparer.Default.Equals(method.ContainingType, Autograd));

    /// <summary>True for <c>optimizer.step(...)</c> on TorchSharp's optimizer or anything derived from it.</summary>
    public bool IsOptimizerStep(IMethodSymbol method) => method.Name == "step" && IsOptimizer(method.ContainingType);

    /// <summary>
    /// What a grad-mode guard call does to gradient recording: false for <c>no_grad()</c>, <c>inference_mode()</c>,
    /// <c>set_grad_enabled(false)</c>; true for <c>enable_grad()</c>, <c>set_grad_enabled(true)</c>,
    /// <c>inference_mode(false)</c>; null for another call or a flag that is not a constant.
    /// </summary>
    public bool? GradEnabledBy(Microsoft.CodeAnalysis.Operations.IInvocationOperation call)
    {
        if (!IsGradModeGuard(call.TargetMethod))
        {
            return null;
        }

        switch (call.TargetMethod.Name)
        {
            case "no_grad":
                return false;
            case "enable_grad":
                return true;
        }

        foreach (var argument in call.Arguments)
        {
            if (argument.Parameter?.Type.SpecialType == SpecialType.System_Boolean)
            {
                var value = argument.ArgumentKind == Microsoft.CodeAnalysis.Operations.ArgumentKind.DefaultValue
                    ? argument.Parameter.ExplicitDefaultValue
                    : argument.Value.ConstantValue.HasValue ? argument.Value.ConstantValue.Value : null;
                if (value is not bool flag)
                {
                    return null;
                }

                return call.TargetMethod.Name == "inference_mode" ? !flag : flag;
            }
        }

        return call.TargetMethod.Name == "inference_mode" ? false : null;
    }

    /// <summary>True for a call to one of the <see cref="GradModeGuards"/>.</summary>
    public bool IsGradModeGuard(IMethodSymbol method)
    {
        foreach (var guard in GradModeGuards)
        {
            if (SymbolEqualityComparer.Default.Equals(guard, method.OriginalDefinition))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>The loss modules the loss-pairing rules know (in <c>TorchSharp.Modules</c>).</summary>
    public TorchTypes Losses => _losses.Value;

    /// <summary>The activation modules <c>Softmax</c>, <c>LogSoftmax</c>, <c>Sigmoid</c>.</summary>
    public TorchTypes ActivationModules => _activationModules.Value;

    /// <summary>Layers with parameters: linear, convolution, normalization, embedding.</summary>
    public TorchTypes Layers => _layers.Value;

    /// <summary><c>Sequential</c>, <c>ModuleList&lt;T&gt;</c>, <c>ModuleDict&lt;T&gt;</c>.</summary>
    public TorchTypes Containers => _containers.Value;

    /// <summary>Modules that pass their input's values through (identity, flatten, dropout).</summary>
    public TorchTypes ShapeOnlyModules => _shapeOnlyModules.Value;

    /// <summary>The symbols for <paramref name="compilation"/>, or null when it does not reference TorchSharp.</summary>
    public static TorchSymbols? For(Compilation compilation)
    {
        var box = Cache.GetValue(compilation, static c => new[] { Create(c) });
        return box[0];
    }

    private static TorchSymbols? Create(Compilation compilation)
    {
        foreach (var assembly in compilation.SourceModule.ReferencedAssemblySymbols)
        {
            if (assembly.Identity.Name == TorchSharpAssemblyName && assembly.GetTypeByMetadataName("TorchSharp.torch+Tensor") is { } tensor)
            {
                return new TorchSymbols(tensor, assembly);
            }
        }

        return null;
    }

    private const string TorchSharpAssemblyName = "TorchSharp";

    public bool IsTensor(ITypeSymbol? type) => InheritsFrom(type, Tensor);

    public bool IsModule(ITypeSymbol? type) => InheritsFrom(type, Module);

    public bool IsOptimizer(ITypeSymbol? type) => InheritsFrom(type, Optimizer);

    /// <summary>
    /// True when <paramref name="invocation"/> may run user code that changes fields or captured locals: a source method,
    /// a delegate, a user or container module (hooks), a library virtual or interface method that may dispatch to user code,
    /// or a library method handed a delegate. TorchSharp layers and other library calls run none.
    /// </summary>
    public bool MayRunUserCode(Microsoft.CodeAnalysis.Operations.IInvocationOperation invocation)
    {
        var method = invocation.TargetMethod;
        if (method.MethodKind == MethodKind.DelegateInvoke)
        {
            return true; // a delegate the engine did not resolve to a lambda may run any user code
        }

        if (IsModuleInvocation(method))
        {
            // A TorchSharp layer runs no user code; a container, an abstract Module<...> or a user module may (and hooks may).
            return invocation.Instance?.Type is not INamedTypeSymbol { IsAbstract: false } type || !IsInTorchSharp(type)
                   || Containers.NameOf(type) is not null;
        }

        if (method.DeclaringSyntaxReferences.Length > 0)
        {
            return true;
        }

        // A library interface or virtual method may dispatch to user code (an iterator's MoveNext, a user Dispose).
        if ((method.IsVirtual || method.IsAbstract || method.IsOverride || method.ContainingType.TypeKind == TypeKind.Interface)
            && invocation.Instance?.Type is not INamedTypeSymbol { IsSealed: true, DeclaringSyntaxReferences.Length: 0 }
            && !IsInTorchSharp(method))
        {
            return true;
        }

        // A library method runs user code only through delegates handed to it.
        foreach (var argument in invocation.Arguments)
        {
            if (argument.Value.Type?.TypeKind == TypeKind.Delegate)
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>True for a module type, or a type that can hold one: an array, a tuple or a generic type over one, an unknown type.</summary>
    public bool MayHoldModule(ITypeSymbol? type, int depth = 0)
    {
        switch (type)
        {
            case null or IErrorTypeSymbol or ITypeParameterSymbol:
                return true;
            case IArrayTypeSymbol array:
                return MayHoldModule(array.ElementType, depth + 1);
            case INamedTypeSymbol named:
                if (IsModule(named) || named.SpecialType == SpecialType.System_Object)
                {
                    return true;
                }

                return depth < 4 && (named.IsTupleType ? named.TupleElements.Select(e => e.Type) : named.TypeArguments).Any(t => MayHoldModule(t, depth + 1));
            default:
                return false;
        }
    }

    /// <summary>True when <paramref name="symbol"/> is declared in TorchSharp's own assembly.</summary>
    public bool IsInTorchSharp(ISymbol? symbol) => symbol is not null && SymbolEqualityComparer.Default.Equals(symbol.ContainingAssembly, Tensor.ContainingAssembly);

    /// <summary>
    /// True for <c>module.call(...)</c> and <c>module.forward(...)</c> of any arity, including a user module's own
    /// <c>forward</c> override: the calls that run a module on its inputs.
    /// </summary>
    public bool IsModuleInvocation(IMethodSymbol method)
    {
        if (method.Name is not ("call" or "forward") || method.IsStatic)
        {
            return false;
        }

        for (var current = method; current is not null; current = current.OverriddenMethod)
        {
            var owner = current.ContainingType.OriginalDefinition;
            foreach (var arity in ModuleArities)
            {
                if (SymbolEqualityComparer.Default.Equals(owner, arity))
                {
                    return true;
                }
            }
        }

        return IsModule(method.ContainingType) && method.Name == "forward";
    }

    /// <summary>True when <paramref name="type"/> is <paramref name="baseType"/> or derives from it (generic definitions compared).</summary>
    public static bool InheritsFrom(ITypeSymbol? type, INamedTypeSymbol? baseType)
    {
        // Only a class derives from a class: structs, tuples, enums and type parameters are answered without walking
        // (the walk from a constructed type can allocate its substituted base types).
        if (baseType is null || (baseType.TypeKind == TypeKind.Class && type?.TypeKind != TypeKind.Class))
        {
            return false;
        }

        for (var current = type; current is not null; current = current.BaseType)
        {
            if (SymbolEqualityComparer.Default.Equals(current.OriginalDefinition, baseType))
            {
                return true;
            }
        }

        return false;
    }

    private Lazy<INamedTypeSymbol?> Type(string metadataName) => new(() => _assembly.GetTypeByMetadataName(metadataName));

    private ImmutableArray<INamedTypeSymbol> Resolve(params string[] metadataNames)
    {
        var builder = ImmutableArray.CreateBuilder<INamedTypeSymbol>(metadataNames.Length);
        foreach (var name in metadataNames)
        {
            if (_assembly.GetTypeByMetadataName(name) is { } type)
            {
                builder.Add(type);
            }
        }

        return builder.ToImmutable();
    }

    private Lazy<TorchTypes> Types(params string[] modulesTypeNames)
        => new(() =>
        {
            var builder = ImmutableDictionary.CreateBuilder<string, INamedTypeSymbol>();
            foreach (var name in modulesTypeNames)
            {
                if (_assembly.GetTypeByMetadataName("TorchSharp.Modules." + name) is { } type)
                {
                    builder[name] = type;
                }
            }

            return new TorchTypes(builder.ToImmutable());
        });
}

/// <summary>A named group of TorchSharp types (the losses, the layers, ...), looked up by metadata name in <c>TorchSharp.Modules</c>.</summary>
internal sealed class TorchTypes
{
    private readonly ImmutableDictionary<string, INamedTypeSymbol> _byName;

    // By simple name, for NameOf: MetadataName builds a new string for every generic type ("Module`2"), and NameOf walks
    // the base types of every module call's receiver.
    private readonly System.Collections.Generic.Dictionary<string, (INamedTypeSymbol Type, string MetadataName)> _bySimpleName = new(StringComparer.Ordinal);

    public TorchTypes(ImmutableDictionary<string, INamedTypeSymbol> byName)
    {
        _byName = byName;
        foreach (var pair in byName)
        {
            _bySimpleName[pair.Value.Name] = (pair.Value, pair.Key);
        }
    }

    /// <summary>The type named <paramref name="metadataName"/> (<c>"Linear"</c>, <c>"ModuleList`1"</c>), or null when this TorchSharp has none.</summary>
    public INamedTypeSymbol? this[string metadataName] => _byName.TryGetValue(metadataName, out var type) ? type : null;

    /// <summary>The metadata name of the group's type that <paramref name="type"/> is or derives from, or null.</summary>
    public string? NameOf(ITypeSymbol? type)
    {
        for (var current = type; current is not null; current = current.BaseType)
        {
            // The name finds the candidate, symbol equality confirms it is TorchSharp's (a user's own 'Linear' is not).
            var definition = current.OriginalDefinition;
            if (_bySimpleName.TryGetValue(definition.Name, out var known) && SymbolEqualityComparer.Default.Equals(definition, known.Type))
            {
                return known.MetadataName;
            }
        }

        return null;
    }
}
