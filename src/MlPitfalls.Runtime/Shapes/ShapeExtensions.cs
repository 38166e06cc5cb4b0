using System;
using System.Collections.Generic;
using System.Linq;
using System.Runtime.CompilerServices;
using MlPitfalls.Runtime.Internal;
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
        /// Attaches a shape contract to a module of any arity: <c>"input specs -> output specs"</c>, one spec per input tensor and
        /// per output tensor, separated by commas (<c>"batch seq 32 -> batch seq hidden, layers batch hidden"</c> for a GRU; a tuple
        /// counts element by element; <c>...</c> accepts any shape). Every call through <c>call()</c> is checked with a fresh scope
        /// shared by its inputs and outputs.
        /// </summary>
        /// <param name="module">The module (any <c>Module&lt;..., TResult&gt;</c>).</param>
        /// <param name="contract">The contract, e.g. <c>"batch 784 -> batch 10"</c>.</param>
        /// <param name="sizes">Sizes known from configuration, bound before every check: an object with integer properties
        /// (<c>new { heads = 4, dim = 64 }</c>) or a dictionary from name to size.</param>
        /// <param name="expression">The module expression (filled in by the compiler).</param>
        /// <param name="file">Caller file (filled in by the compiler).</param>
        /// <param name="line">Caller line (filled in by the compiler).</param>
        /// <exception cref="FormatException">The contract has no single '->' or a spec does not parse.</exception>
        /// <exception cref="ArgumentException">A size is not a dimension name or is negative.</exception>
        public static ModuleShapeContract ExpectContract(
            this torch.nn.Module module,
            string contract,
            object? sizes = null,
            [CallerArgumentExpression(nameof(module))] string? expression = null,
            [CallerFilePath] string file = "",
            [CallerLineNumber] int line = 0)
        {
            if (module is null) throw new ArgumentNullException(nameof(module));
            TorchLoad.EnsureLoaded();
            if (contract is null) throw new ArgumentNullException(nameof(contract));
            int arrow = contract.IndexOf("->", StringComparison.Ordinal);
            if (arrow < 0 || contract.IndexOf("->", arrow + 2, StringComparison.Ordinal) >= 0)
            {
                throw new FormatException($"Module contract \"{contract}\" must have exactly one '->' between the input spec and the output spec, e.g. \"batch 784 -> batch 10\".");
            }
            var inputs = ParseSpecs(contract.Substring(0, arrow), contract);
            var outputs = ParseSpecs(contract.Substring(arrow + 2), contract);
            return new ModuleShapeContract(module, inputs, outputs, ContractSizes(sizes), expression ?? module.GetType().Name, file, line);
        }

        private static ShapeSpec[] ParseSpecs(string side, string contract)
        {
            var parts = side.Split(',');
            if (parts.Any(p => p.Trim().Length == 0))
            {
                throw new FormatException($"Module contract \"{contract}\" has an empty spec: write one spec per tensor, separated by commas, and '...' for a tensor of any shape.");
            }
            return parts.Select(p => ShapeSpec.Parse(p.Trim())).ToArray();
        }

        private static (string, long)[] ContractSizes(object? sizes)
        {
            if (sizes is null) return Array.Empty<(string, long)>();
            IEnumerable<(string Name, object? Value)> entries = sizes switch
            {
                System.Collections.IDictionary dictionary => dictionary.Keys.Cast<object>().Select(k => (k.ToString() ?? "", dictionary[k])),
                _ => sizes.GetType().GetProperties(System.Reflection.BindingFlags.Public | System.Reflection.BindingFlags.Instance)
                    .Where(p => p.GetIndexParameters().Length == 0)
                    .Select(p => (p.Name, p.GetValue(sizes))),
            };
            var result = new List<(string, long)>();
            foreach (var (name, value) in entries)
            {
                if (name == "_" || !ShapeSpec.IsName(name))
                {
                    throw new ArgumentException($"'{name}' in the contract's sizes is not a dimension name: give single names such as 'heads' (letters, digits, '_').", nameof(sizes));
                }
                long size = value switch
                {
                    int i => i,
                    long l => l,
                    short s => s,
                    byte b => b,
                    uint u => u,
                    _ => throw new ArgumentException($"The contract's size '{name}' is {(value is null ? "null" : $"a {value.GetType().Name}")}; give a whole number.", nameof(sizes)),
                };
                if (size < 0) throw new ArgumentOutOfRangeException(nameof(sizes), size, $"The contract's size '{name}' cannot be negative.");
                result.Add((name, size));
            }
            return result.ToArray();
        }
    }
}
