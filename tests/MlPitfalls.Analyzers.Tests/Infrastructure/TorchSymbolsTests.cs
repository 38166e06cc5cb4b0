using System.Linq;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Operations;
using MlPitfalls.Analyzers.Infrastructure;
using Xunit;

namespace MlPitfalls.Analyzers.Tests.Infrastructure;

/// <summary>The lazily resolved known symbols, checked against the real TorchSharp 0.107.0 assembly.</summary>
public class TorchSymbolsTests
{
    private static readonly Compilation Compilation = TestCompilation.Create(sources: """
        namespace Mine { class Softmax : Module<Tensor, Tensor> { public Softmax() : base("s") { } public override Tensor forward(Tensor x) => x; } }
        class Net : Module<Tensor, Tensor>
        {
            public Net() : base("net") { }
            public override Tensor forward(Tensor x) => x;
        }

        class Use
        {
            void M(Net net, Module<Tensor, Tensor, Tensor> pair, Linear linear, Tensor x)
            {
                net.call(x);
                net.forward(x);
                pair.call(x, x);
                linear.forward(x);
                x.softmax(1);
                using var a = torch.no_grad();
                using var b = torch.inference_mode();
                using var c = torch.set_grad_enabled(false);
                using var d = torch.enable_grad();
            }
        }
        """);

    private static readonly TorchSymbols Torch = TorchSymbols.For(Compilation)!;

    private static IMethodSymbol Target(string text) => ((IInvocationOperation)TestCompilation.Invocation(Compilation, text)).TargetMethod;

    [Fact]
    public void Known_types_resolve_in_the_real_assembly()
    {
        Assert.Equal(5, new[] { "CrossEntropyLoss", "NLLLoss", "BCELoss", "BCEWithLogitsLoss", "KLDivLoss" }.Count(n => Torch.Losses[n] is not null));
        Assert.Equal(3, new[] { "Softmax", "LogSoftmax", "Sigmoid" }.Count(n => Torch.ActivationModules[n] is not null));
        Assert.NotNull(Torch.Containers["Sequential"]);
        Assert.NotNull(Torch.Containers["ModuleList`1"]);
        Assert.NotNull(Torch.Layers["Conv2d"]);
        Assert.Equal(12, Torch.ModuleArities.Length); // Module<T..., TResult> and IModule<T..., TResult>, 1 to 6 inputs
        Assert.NotNull(Torch.Functional);
        Assert.NotNull(Torch.Special);
    }

    [Fact]
    public void A_users_type_with_the_same_simple_name_is_not_the_torchsharp_type()
    {
        var mine = Compilation.GetTypeByMetadataName("Mine.Softmax");
        Assert.Null(Torch.ActivationModules.NameOf(mine));
        Assert.Equal("Softmax", Torch.ActivationModules.NameOf(Torch.ActivationModules["Softmax"]));
    }

    [Fact]
    public void Symbols_come_from_the_torchsharp_assembly_not_from_a_same_named_type_in_source()
    {
        // A project without the TorchSharp reference that declares its own TorchSharp.torch.Tensor (a stub, a port) is
        // not TorchSharp code: nothing is registered for it.
        var lookAlike = TestCompilation.Create(referenceTorchSharp: false, sources: """
            namespace TorchSharp { public static class torch { public class Tensor { } } }
            """);
        Assert.NotNull(lookAlike.GetTypeByMetadataName("TorchSharp.torch+Tensor"));
        Assert.Null(TorchSymbols.For(lookAlike));

        Assert.Equal("TorchSharp", Torch.Tensor.ContainingAssembly.Name);
        Assert.True(Torch.IsInTorchSharp(Torch.Losses["NLLLoss"]));
    }

    [Fact]
    public void Module_invocations_of_every_arity_and_user_forward_overrides_are_recognised()
    {
        Assert.True(Torch.IsModuleInvocation(Target("net.call(x)")));
        Assert.True(Torch.IsModuleInvocation(Target("net.forward(x)")));
        Assert.True(Torch.IsModuleInvocation(Target("pair.call(x, x)")));
        Assert.True(Torch.IsModuleInvocation(Target("linear.forward(x)")));
        Assert.False(Torch.IsModuleInvocation(Target("x.softmax(1)")));
    }

    [Fact]
    public void Grad_mode_guards_are_recognised()
    {
        foreach (var guard in new[] { "torch.no_grad()", "torch.inference_mode()", "torch.set_grad_enabled(false)", "torch.enable_grad()" })
        {
            Assert.True(Torch.IsGradModeGuard(Target(guard)), guard);
        }

        Assert.False(Torch.IsGradModeGuard(Target("x.softmax(1)")));
    }
}
