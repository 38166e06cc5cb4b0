using System;
using System.Linq;
using System.Reflection;
using TorchSharp;
using static TorchSharp.torch;

namespace MlPitfalls.Analyzers.LibTorchTests.Infrastructure;

/// <summary>What a snippet did on a real tensor: the shape and values (row-major) it returned, or what it threw.</summary>
internal sealed class Run
{
    private Run(long[]? shape, float[]? values, Exception? error)
    {
        Shape = shape;
        Values = values;
        Error = error;
    }

    public long[]? Shape { get; }

    public float[]? Values { get; }

    public Exception? Error { get; }

    public bool Threw => Error is not null;

    /// <summary>The error libtorch raises for a view the strides do not allow.</summary>
    public bool ThrewViewSizeError => Error?.Message.Contains("view size is not compatible with input tensor's size and stride", StringComparison.Ordinal) == true;

    public override string ToString()
        => Error is { } error ? $"threw {error.GetType().Name}: {error.Message.Split('\n')[0]}" : $"returned shape ({string.Join(", ", Shape!)})";

    /// <summary>Invokes <c>method(x, heads)</c> with <c>x</c> made by <paramref name="input"/>, in a dispose scope of its own.</summary>
    public static Run Of(MethodInfo method, Func<Tensor> input, long heads)
    {
        using var scope = NewDisposeScope();
        var x = input();
        manual_seed(0); // snippets that draw random numbers (randn, dropout) draw the same ones in every variant
        Tensor result;
        try
        {
            result = (Tensor)method.Invoke(null, new object[] { x, heads })!;
        }
        catch (TargetInvocationException e) when (e.InnerException is not null)
        {
            return new Run(null, null, e.InnerException);
        }

        return new Run(result.shape, result.contiguous().to_type(ScalarType.Float32).data<float>().ToArray(), null);
    }

    /// <summary>A tensor of random values (<c>torch.randn</c>), as the agreement table asks.</summary>
    public static Func<Tensor> Randn(long[] sizes) => () => randn(sizes);

    /// <summary>A tensor whose every element is its own row-major index: a result's values say where each element came from.</summary>
    public static Func<Tensor> Indices(long[] sizes) => () => arange(sizes.Aggregate(1L, (a, b) => a * b)).to_type(ScalarType.Float32).reshape(sizes);
}
