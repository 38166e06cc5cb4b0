using System.Linq;

namespace MlPitfalls.Analyzers.LibTorchTests.Infrastructure;

/// <summary>
/// Where elements go under a permutation, computed here without TorchSharp: the independent reference the fixed code is
/// compared with. Inputs are made by <see cref="Run.Indices"/>, so an element's value is its row-major index in the input.
/// </summary>
internal static class HostLayout
{
    /// <summary>
    /// The values, row-major, of the tensor (of shape <paramref name="shape"/>, element = its index) permuted by
    /// <paramref name="permutation"/>: result[i0, ..., in] = input[i at the positions the permutation names].
    /// </summary>
    public static float[] Permuted(long[] shape, int[] permutation)
    {
        var rank = shape.Length;
        var strides = new long[rank];
        for (long i = rank - 1, stride = 1; i >= 0; i--)
        {
            strides[i] = stride;
            stride *= shape[i];
        }

        var outShape = permutation.Select(p => shape[p]).ToArray();
        var count = shape.Aggregate(1L, (a, b) => a * b);
        var result = new float[count];
        var index = new long[rank]; // the output index, row-major counter
        for (long flat = 0; flat < count; flat++)
        {
            long source = 0;
            for (var k = 0; k < rank; k++)
            {
                source += index[k] * strides[permutation[k]];
            }

            result[flat] = source;
            for (var k = rank - 1; k >= 0; k--)
            {
                if (++index[k] < outShape[k])
                {
                    break;
                }

                index[k] = 0;
            }
        }

        return result;
    }
}
