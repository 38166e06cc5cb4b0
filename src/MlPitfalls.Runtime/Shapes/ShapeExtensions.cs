using System;
using System.Runtime.CompilerServices;
using TorchSharp;

namespace MlPitfalls.Runtime.Shapes
{
    /// <summary>Shape checks on tensors.</summary>
    public static class ShapeExtensions
    {
        /// <summary>
        /// Checks that <paramref name="tensor"/> matches <paramref name="spec"/>, binding new dimension names and verifying bound ones,
        /// and returns the tensor so the call can be chained.
        /// </summary>
        /// <param name="tensor">The tensor to check.</param>
        /// <param name="spec">A spec such as <c>"batch 1 28 28"</c>; see <see cref="ShapeSpec"/> for the grammar. Parsed once and cached.</param>
        /// <param name="dims">The scope holding bindings. When null, the ambient scope (<see cref="ShapeScope.Begin"/>) is used;
        /// without one, the check only verifies the spec's internal consistency.</param>
        /// <param name="dtype">Optional dtype expectation.</param>
        /// <param name="device">Optional device-type expectation.</param>
        /// <param name="expression">Filled in by the compiler with the caller's expression for <paramref name="tensor"/>.</param>
        /// <param name="file">Filled in by the compiler.</param>
        /// <param name="line">Filled in by the compiler.</param>
        /// <exception cref="ShapeContractException">The tensor does not match; the message shows expected vs actual and every binding.</exception>
        /// <exception cref="FormatException">The spec is invalid.</exception>
        public static torch.Tensor ExpectShape(
            this torch.Tensor tensor,
            string spec,
            ShapeScope? dims = null,
            torch.ScalarType? dtype = null,
            DeviceType? device = null,
            [CallerArgumentExpression(nameof(tensor))] string? expression = null,
            [CallerFilePath] string file = "",
            [CallerLineNumber] int line = 0)
        {
            if (ShapeChecks.DisabledByAppContext || !ShapeChecks.s_enabled) return tensor;
            return ExpectShapeCore(tensor, ShapeSpec.Parse(spec), dims, dtype, device, expression, file, line);
        }

        /// <summary>Same as <see cref="ExpectShape(torch.Tensor, string, ShapeScope?, torch.ScalarType?, DeviceType?, string?, string, int)"/>
        /// with a spec parsed ahead of time (skips the cache lookup).</summary>
        public static torch.Tensor ExpectShape(
            this torch.Tensor tensor,
            ShapeSpec spec,
            ShapeScope? dims = null,
            torch.ScalarType? dtype = null,
            DeviceType? device = null,
            [CallerArgumentExpression(nameof(tensor))] string? expression = null,
            [CallerFilePath] string file = "",
            [CallerLineNumber] int line = 0)
        {
            if (ShapeChecks.DisabledByAppContext || !ShapeChecks.s_enabled) return tensor;
            if (spec is null) throw new ArgumentNullException(nameof(spec));
            return ExpectShapeCore(tensor, spec, dims, dtype, device, expression, file, line);
        }

        private static torch.Tensor ExpectShapeCore(torch.Tensor tensor, ShapeSpec spec, ShapeScope? dims, torch.ScalarType? dtype, DeviceType? device, string? expression, string file, int line)
        {
            if (tensor is null) throw new ArgumentNullException(nameof(tensor), $"ExpectShape(\"{spec.Text}\") was given a null tensor ('{expression}').");
            var label = expression ?? "tensor";
            var scope = dims ?? ShapeScope.Current;
            if (scope is not null)
            {
                // dtype/device first: a failed check must leave the scope unchanged, and the shape check binds names as it goes.
                if (dtype.HasValue || device.HasValue) ShapeChecker.CheckDtypeDevice(tensor, spec, scope, dtype, device, label, file, line);
                ShapeChecker.Check(tensor, spec, scope, label, file, line);
                return tensor;
            }

            var scratch = ShapeScope.Scratch;
            scratch.Clear();
            try
            {
                if (dtype.HasValue || device.HasValue) ShapeChecker.CheckDtypeDevice(tensor, spec, scratch, dtype, device, label, file, line);
                ShapeChecker.Check(tensor, spec, scratch, label, file, line);
            }
            finally
            {
                scratch.Clear();
            }
            return tensor;
        }

        /// <summary>
        /// Attaches an input/output contract such as <c>"batch 784 -> batch 10"</c> to a module, checked on every <c>call()</c>
        /// (forward hooks: a direct <c>forward()</c> call is not checked). Names are bound freshly for each call, so
        /// <c>batch</c> must agree between the input and the output of one call. Dispose the result to remove the hooks.
        /// </summary>
        /// <exception cref="FormatException">The contract is not <c>"input spec -> output spec"</c> or a spec is invalid.</exception>
        public static ModuleShapeContract ExpectContract(
            this torch.nn.Module<torch.Tensor, torch.Tensor> module,
            string contract,
            [CallerArgumentExpression(nameof(module))] string? expression = null,
            [CallerFilePath] string file = "",
            [CallerLineNumber] int line = 0)
        {
            if (module is null) throw new ArgumentNullException(nameof(module));
            if (contract is null) throw new ArgumentNullException(nameof(contract));
            int arrow = contract.IndexOf("->", StringComparison.Ordinal);
            if (arrow < 0 || contract.IndexOf("->", arrow + 2, StringComparison.Ordinal) >= 0)
            {
                throw new FormatException($"Module contract \"{contract}\" must have exactly one '->' between the input spec and the output spec, e.g. \"batch 784 -> batch 10\".");
            }
            var input = ShapeSpec.Parse(contract.Substring(0, arrow).Trim());
            var output = ShapeSpec.Parse(contract.Substring(arrow + 2).Trim());
            return new ModuleShapeContract(module, input, output, expression ?? module.GetType().Name, file, line);
        }
    }
}
