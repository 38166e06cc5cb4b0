using Microsoft.CodeAnalysis;
using MlPitfalls.Analyzers.Infrastructure;

namespace MlPitfalls.Analyzers.Analyses.Gradients;

/// <summary>The questions about TorchSharp symbols that only the gradient analysis asks.</summary>
internal static class GradientSymbols
{
    /// <summary>True for <c>optimizer.zero_grad()</c>.</summary>
    public static bool IsOptimizerZeroGrad(this TorchSymbols torch, IMethodSymbol method) => method.Name == "zero_grad" && torch.IsOptimizer(method.ContainingType);

    /// <summary>True for <c>module.zero_grad(...)</c>.</summary>
    public static bool IsModuleZeroGrad(this TorchSymbols torch, IMethodSymbol method) => method.Name == "zero_grad" && torch.IsModule(method.ContainingType);

    /// <summary>True for <c>module.parameters()</c> and <c>module.named_parameters()</c>.</summary>
    public static bool IsModuleParameters(this TorchSymbols torch, IMethodSymbol method)
        => method.Name is "parameters" or "named_parameters" && torch.IsModule(method.ContainingType);

    /// <summary>True for the <c>Tensor.grad</c> property.</summary>
    public static bool IsGradProperty(this TorchSymbols torch, IPropertySymbol property) => property.Name == "grad" && torch.IsTensor(property.ContainingType);
}
