using System.Runtime.CompilerServices;
using Microsoft.CodeAnalysis;

namespace MlPitfalls.Analyzers.Infrastructure;

/// <summary>
/// The TorchSharp types the rules reason about, resolved once per compilation and shared by every analyzer.
/// Rules recognise TorchSharp by these symbols, never by simple names, so a user's own <c>Optimizer</c> class
/// with a <c>step()</c> method is never mistaken for TorchSharp's.
/// </summary>
internal sealed class TorchSymbols
{
    // Keyed weakly by compilation: resolved once however many analyzers ask, and collected with the compilation.
    private static readonly ConditionalWeakTable<Compilation, TorchSymbols?[]> Cache = new();

    private TorchSymbols(INamedTypeSymbol tensor, Compilation compilation)
    {
        Tensor = tensor;
        Module = compilation.GetTypeByMetadataName("TorchSharp.torch+nn+Module");
        Optimizer = compilation.GetTypeByMetadataName("TorchSharp.torch+optim+Optimizer");
        Autograd = compilation.GetTypeByMetadataName("TorchSharp.torch+autograd");
    }

    /// <summary><c>torch.Tensor</c>; always present when TorchSharp is referenced.</summary>
    public INamedTypeSymbol Tensor { get; }

    /// <summary><c>torch.nn.Module</c>, the base of every module including <c>Module&lt;T, TResult&gt;</c> and losses.</summary>
    public INamedTypeSymbol? Module { get; }

    /// <summary><c>torch.optim.Optimizer</c>, the base of every optimizer (SGD, Adam, LBFGS, user-written ones).</summary>
    public INamedTypeSymbol? Optimizer { get; }

    /// <summary><c>torch.autograd</c> (static), home of <c>torch.autograd.backward(...)</c>.</summary>
    public INamedTypeSymbol? Autograd { get; }

    /// <summary>The symbols for <paramref name="compilation"/>, or null when it does not reference TorchSharp.</summary>
    public static TorchSymbols? For(Compilation compilation)
    {
        var box = Cache.GetValue(compilation, static c => new[] { Create(c) });
        return box[0];
    }

    private static TorchSymbols? Create(Compilation compilation)
    {
        var tensor = compilation.GetTypeByMetadataName("TorchSharp.torch+Tensor");
        return tensor is null ? null : new TorchSymbols(tensor, compilation);
    }

    public bool IsTensor(ITypeSymbol? type) => InheritsFrom(type, Tensor);

    public bool IsModule(ITypeSymbol? type) => InheritsFrom(type, Module);

    public bool IsOptimizer(ITypeSymbol? type) => InheritsFrom(type, Optimizer);

    /// <summary>True for <c>tensor.backward(...)</c> and <c>torch.autograd.backward(...)</c>.</summary>
    public bool IsBackward(IMethodSymbol method)
        => method.Name == "backward"
           && (IsTensor(method.ContainingType) || SymbolEqualityComparer.Default.Equals(method.ContainingType, Autograd));

    /// <summary>True for <c>optimizer.step(...)</c> on TorchSharp's optimizer or anything derived from it.</summary>
    public bool IsOptimizerStep(IMethodSymbol method) => method.Name == "step" && IsOptimizer(method.ContainingType);

    /// <summary>True for <c>optimizer.zero_grad()</c>.</summary>
    public bool IsOptimizerZeroGrad(IMethodSymbol method) => method.Name == "zero_grad" && IsOptimizer(method.ContainingType);

    /// <summary>True for <c>module.zero_grad(...)</c>.</summary>
    public bool IsModuleZeroGrad(IMethodSymbol method) => method.Name == "zero_grad" && IsModule(method.ContainingType);

    /// <summary>True for <c>module.parameters()</c> and <c>module.named_parameters()</c>.</summary>
    public bool IsModuleParameters(IMethodSymbol method)
        => method.Name is "parameters" or "named_parameters" && IsModule(method.ContainingType);

    /// <summary>True for the <c>Tensor.grad</c> property.</summary>
    public bool IsGradProperty(IPropertySymbol property) => property.Name == "grad" && IsTensor(property.ContainingType);

    private static bool InheritsFrom(ITypeSymbol? type, INamedTypeSymbol? baseType)
    {
        if (baseType is null)
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
}
