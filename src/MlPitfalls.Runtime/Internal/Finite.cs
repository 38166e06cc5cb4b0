using System;
using TorchSharp;

namespace MlPitfalls.Runtime.Internal
{
    /// <summary>Finite-value tests that create no tensors that outlive the call.</summary>
    internal static class Finite
    {
        /// <summary>
        /// True when every element is finite. One reduction and one host sync: the sum of a tensor is finite when all its
        /// elements are (NaN and ±Inf propagate). A non-finite sum can also be an overflow of large finite values, so that
        /// case is confirmed element-wise.
        /// </summary>
        public static bool AllFinite(torch.Tensor t)
        {
            var dtype = t.dtype; // one native call; this runs on every checked module output
            if (TensorText.IsComplex(dtype)) return AllFiniteElementwise(t);
            if (!TensorText.IsFloating(dtype)) return true;
            using var _ = torch.no_grad();
            using (var sum = t.sum())
            {
                if (double.IsFinite(sum.ToDouble())) return true;
            }
            return AllFiniteElementwise(t);
        }

        private static bool AllFiniteElementwise(torch.Tensor t)
        {
            using var _ = torch.no_grad();
            using var finite = t.isfinite();
            using var all = finite.all();
            return all.item<bool>();
        }

        public static (long NaN, long PosInf, long NegInf) Count(torch.Tensor t)
        {
            if (TensorText.IsComplex(t.dtype)) return CountComplex(t);
            using var _ = torch.no_grad();
            using var nanMask = t.isnan();
            using var nanSum = nanMask.sum();
            using var posMask = t.isposinf();
            using var posSum = posMask.sum();
            using var negMask = t.isneginf();
            using var negSum = negMask.sum();
            return (nanSum.ToInt64(), posSum.ToInt64(), negSum.ToInt64());
        }

        /// <summary>Per element: NaN when either part is NaN, else +Inf when either part is +Inf, else -Inf (isposinf does not take complex input).</summary>
        private static (long NaN, long PosInf, long NegInf) CountComplex(torch.Tensor t)
        {
            using var _ = torch.no_grad();
            using var nanMask = t.isnan();
            using var nanSum = nanMask.sum();
            using var finiteMask = t.isfinite();
            using var finiteSum = finiteMask.sum();
            using var re = t.real;
            using var im = t.imag;
            using var rePos = re.isposinf();
            using var imPos = im.isposinf();
            using var anyPos = rePos.logical_or(imPos);
            using var notNan = nanMask.logical_not();
            using var posMask = anyPos.logical_and(notNan);
            using var posSum = posMask.sum();
            long nan = nanSum.ToInt64(), pos = posSum.ToInt64();
            return (nan, pos, t.numel() - finiteSum.ToInt64() - nan - pos);
        }

        public static string Describe((long NaN, long PosInf, long NegInf) c, long numel) =>
            FormattableString.Invariant($"{c.NaN} NaN, {c.PosInf} +Inf, {c.NegInf} -Inf (of {numel} element{(numel == 1 ? "" : "s")})");
    }
}
