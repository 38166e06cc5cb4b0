using System;
using System.Collections.Generic;
using System.Linq;
using System.Runtime.CompilerServices;
using MlPitfalls.Runtime.Internal;
using TorchSharp;

namespace MlPitfalls.Runtime.NonFinite
{
    /// <summary>One-off NaN/Inf checks that need no guard.</summary>
    public static class NonFiniteExtensions
    {
        /// <summary>Throws <see cref="NonFiniteValueException"/> naming the tensor (by the caller's expression) when it holds NaN/Inf; returns it otherwise.</summary>
        public static torch.Tensor AssertFinite(this torch.Tensor tensor, [CallerArgumentExpression(nameof(tensor))] string? name = null)
        {
            var e = NonFiniteChecks.CheckTensor(tensor, name ?? "tensor", 0, null);
            if (e is not null) throw new NonFiniteValueException(e);
            return tensor;
        }

        /// <summary>
        /// After <c>backward()</c>: throws <see cref="NonFiniteValueException"/> naming every parameter of <paramref name="model"/>
        /// whose gradient holds NaN/Inf.
        /// </summary>
        public static void AssertFiniteGradients(this torch.nn.Module model)
        {
            var e = NonFiniteChecks.CheckGradients(model ?? throw new ArgumentNullException(nameof(model)), 0);
            if (e is not null) throw new NonFiniteValueException(e);
        }
    }

    internal static class NonFiniteChecks
    {
        public static NonFiniteEvent? CheckTensor(torch.Tensor tensor, string name, long step, string? context)
        {
            if (tensor is null) throw new ArgumentNullException(nameof(tensor), $"'{name}' is null.");
            if (Finite.AllFinite(tensor)) return null;
            var shape = tensor.shape;
            var counts = Finite.Count(tensor);
            var dtype = tensor.dtype.ToString();
            var lines = new List<string>
            {
                $"'{name}' is non-finite{NonFiniteEvent.StepText(step)}: shape {TensorText.Shape(shape)}, {dtype}: {NonFiniteEvent.Counts(counts.NaN, counts.PosInf, counts.NegInf, shape)}.",
            };
            if (context is not null) lines.Add($"  {context}.");
            lines.Add("What to check: log of 0 or of a negative value in a hand-written loss (use log_softmax / cross_entropy instead of softmax().log()), " +
                      "BCELoss on probabilities that reach exactly 0 or 1 (use BCEWithLogitsLoss), a mean over an empty selection (0/0), " +
                      "or a metric divided by a zero count. If the inputs of this computation were already non-finite, attach a NonFiniteGuard to find where they started.");
            return new NonFiniteEvent(NonFiniteKind.Tensor, step, name, "Tensor", shape, dtype, counts.NaN, counts.PosInf, counts.NegInf, false, null,
                Array.Empty<string>(), Array.Empty<NonFiniteGradient>(), NonFiniteEvent.Join(lines));
        }

        public static NonFiniteEvent? CheckGradients(torch.nn.Module root, long step)
        {
            if (GradientsLookFinite(root)) return null;
            List<NonFiniteGradient>? bad = null;
            foreach (var (name, p) in root.named_parameters())
            {
                using var grad = p.grad; // the property returns a new handle each time
                if (grad is null || Finite.AllFinite(grad)) continue;
                var counts = Finite.Count(grad);
                (bad ??= new List<NonFiniteGradient>()).Add(new NonFiniteGradient(name, grad.shape, counts.NaN, counts.PosInf, counts.NegInf, !Finite.AllFinite(p)));
            }
            if (bad is null) return null; // the sum of a large finite gradient overflowed: nothing to report

            var lines = new List<string> { $"{(bad.Count == 1 ? "1 parameter has a non-finite gradient" : $"{bad.Count} parameters have non-finite gradients")} after backward(){NonFiniteEvent.StepText(step)}:" };
            int width = bad.Max(b => b.Name.Length);
            foreach (var b in bad)
            {
                lines.Add($"  {b.Name.PadRight(width)}  {TensorText.Shape(b.Shape)}: {NonFiniteEvent.Counts(b.NaNCount, b.PosInfCount, b.NegInfCount, b.Shape)}" +
                          (b.ParameterIsNonFinite ? "  (the parameter itself is already non-finite)" : ""));
            }
            lines.Add("What to check: if the loss was finite, a derivative is undefined at the values used (sqrt/pow/log at 0, division by ~0, " +
                      "torch.where computing NaN in the discarded branch). Parameters are listed in model order, input side first; backward runs from the output, " +
                      "so the last one listed is usually closest to where the NaN/Inf started. To get the name of the autograd function, attach a NonFiniteGuard " +
                      "with DetectAnomalyInBackward = true and call guard.Backward(loss) instead of loss.backward(). " +
                      "Exploding (Inf) gradients: lower the learning rate or clip with nn.utils.clip_grad_norm_.");
            var first = bad[0];
            return new NonFiniteEvent(NonFiniteKind.Gradient, step, first.Name, "Parameter.grad", first.Shape, "", bad.Sum(b => b.NaNCount), bad.Sum(b => b.PosInfCount),
                bad.Sum(b => b.NegInfCount), false, null, Array.Empty<string>(), bad, NonFiniteEvent.Join(lines));
        }

        /// <summary>
        /// One host read for all gradients: true when every gradient's witness is finite. False also when a sum merely overflowed,
        /// so a false result is followed by the exact per-parameter check (the failure path).
        /// </summary>
        private static bool GradientsLookFinite(torch.nn.Module root)
        {
            var witnesses = new List<torch.Tensor>();
            try
            {
                foreach (var p in root.parameters())
                {
                    using var grad = p.grad; // the property returns a new handle each time
                    if (grad is null) continue;
                    var w = Finite.Witness(grad);
                    if (w is not null) witnesses.Add(w);
                }
                return Finite.NonFiniteWitnesses(witnesses) is null;
            }
            finally
            {
                foreach (var w in witnesses) w.Dispose();
            }
        }
    }
}
