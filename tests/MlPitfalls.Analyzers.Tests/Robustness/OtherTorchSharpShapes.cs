using System;
using System.Collections.Immutable;
using System.Linq;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;

namespace MlPitfalls.Analyzers.Tests.Robustness;

/// <summary>
/// Assemblies named TorchSharp whose API is not the one the rules were written against (an older release, a fork, a
/// stub): TorchSharp is recognised by its assembly name and <c>torch.Tensor</c>, so the rules run, and every other
/// symbol they look up may be missing or of another kind.
/// </summary>
internal static class OtherTorchSharpShapes
{
    public static readonly ImmutableArray<string> Names = ImmutableArray.Create("a TorchSharp with little in it", "a TorchSharp of odd shapes");

    public static MetadataReference Get(string name) => name switch
    {
        "a TorchSharp with little in it" => Build(Little),
        "a TorchSharp of odd shapes" => Build(Odd),
        _ => throw new ArgumentException("No TorchSharp shape " + name, nameof(name)),
    };

    private static MetadataReference Build(string source)
    {
        var compilation = CrashSafety.Compile(new[] { ("TorchSharp.cs", source) }, referenceTorchSharp: false);
        var errors = compilation.GetDiagnostics().Where(d => d.Severity == DiagnosticSeverity.Error).ToList();
        if (errors.Count > 0)
        {
            throw new InvalidOperationException("The stand-in TorchSharp does not compile: " + string.Join(Environment.NewLine, errors));
        }

        // Named TorchSharp, which is how the rules find TorchSharp among the references; emitted, as a package's assembly is.
        return CrashSafety.EmitToImage(compilation.WithAssemblyName("TorchSharp"));
    }

    /// <summary>Tensor and little else: no Module, no optimizer, no functional, no TorchSharp.Modules.</summary>
    private const string Little = """
        namespace TorchSharp
        {
            public static class torch
            {
                public class Tensor
                {
                    public Tensor softmax(long dim) => this;
                    public void backward() { }
                    public static Tensor operator +(Tensor a, Tensor b) => a;
                }

                public static Tensor ones(params long[] size) => new Tensor();
            }
        }
        """;

    /// <summary>
    /// The names the rules look for, bound to other kinds of symbol: a one-type-parameter Module, an optimizer whose
    /// <c>step</c> is a field, a generic Tensor method <c>backward</c>, a <c>train</c> property, layers that are not
    /// modules, static <c>forward</c>, a struct Sequential, a <c>no_grad</c> field.
    /// </summary>
    private const string Odd = """
        using System.Collections.Generic;

        namespace TorchSharp
        {
            public static partial class torch
            {
                public sealed class Tensor
                {
                    public Tensor softmax(long dim) => this;
                    public Tensor log_softmax(long dim) => this;
                    public Tensor sigmoid() => this;
                    public void backward<T>(T gradient = default!) { }
                    public Tensor detach() => this;
                    public T item<T>() => default!;
                    public Tensor this[long index] => this;
                    public static Tensor operator +(Tensor a, Tensor b) => a;
                    public static Tensor operator *(double a, Tensor b) => b;
                }

                public static Tensor ones(params long[] size) => new Tensor();
                public static System.IDisposable? no_grad;
                public static Tensor softmax(Tensor input, long dim) => input;

                public static class nn
                {
                    public abstract class Module
                    {
                        public bool train { get; set; }
                        public Module eval => this;
                        public IEnumerable<Tensor> parameters() => new List<Tensor>();
                        public static Tensor forward(Tensor x) => x;
                    }

                    public abstract class Module<T> : Module
                    {
                        public T call(T input) => input;
                    }

                    public abstract class Module<T1, T2> : Module<T2>
                    {
                        public abstract T1 forward(T2 input, T1 other);
                    }

                    public static Modules.Linear Linear(long inputSize, long outputSize, bool hasBias = true) => new Modules.Linear();
                    public static Modules.Sequential Sequential(params object[] modules) => default;
                    public static Modules.CrossEntropyLoss CrossEntropyLoss() => new Modules.CrossEntropyLoss();
                    public static Modules.Softmax Softmax(long dim) => new Modules.Softmax();
                    public static Module<Tensor> ReLU() => null!;
                    public static Module<Tensor> Conv2d(long a, long b, long k, long padding = 0, bool bias = true) => null!;
                    public static Module<Tensor> BatchNorm2d(long features) => null!;

                    public class functional
                    {
                        public Tensor cross_entropy;
                        public static Tensor softmax(Tensor x, long dim) => x;
                        public static Tensor nll_loss(Tensor x, Tensor y) => x;
                        public static Tensor kl_div(Tensor x, Tensor y, bool log_target = false) => x;
                    }
                }

                public static class optim
                {
                    public class Optimizer
                    {
                        public int step;
                        public void zero_grad(int? set_to_none = null) { }
                    }

                    public static Optimizer SGD(IEnumerable<Tensor> parameters, double learningRate) => new Optimizer();
                    public static Optimizer Adam(IEnumerable<Tensor> parameters) => new Optimizer();
                }
            }
        }

        namespace TorchSharp.Modules
        {
            public sealed class Linear
            {
                public torch.Tensor call(torch.Tensor x) => x;
            }

            public struct Sequential
            {
                public torch.Tensor call(torch.Tensor x) => x;
                public void append(object module) { }
            }

            public sealed class CrossEntropyLoss : torch.nn.Module<torch.Tensor, torch.Tensor>
            {
                public override torch.Tensor forward(torch.Tensor input, torch.Tensor target) => input;
                public torch.Tensor call(torch.Tensor input, torch.Tensor target) => input;
            }

            public sealed class Softmax : torch.nn.Module<torch.Tensor>
            {
            }
        }
        """;
}
