using System.Text;
using TorchSharp;

namespace MlPitfalls.Runtime.Internal
{
    internal static class TensorText
    {
        public static string Shape(long[] shape)
        {
            var sb = new StringBuilder("[");
            for (int i = 0; i < shape.Length; i++)
            {
                if (i > 0) sb.Append(", ");
                sb.Append(shape[i]);
            }
            return sb.Append(']').ToString();
        }

        public static bool IsFloating(torch.ScalarType t) =>
            t == torch.ScalarType.Float32 || t == torch.ScalarType.Float64 || t == torch.ScalarType.Float16 || t == torch.ScalarType.BFloat16;

        public static bool IsComplex(torch.ScalarType t) =>
            t == torch.ScalarType.ComplexFloat32 || t == torch.ScalarType.ComplexFloat64;
    }
}
