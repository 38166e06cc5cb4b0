using System;
using System.IO;
using System.Text;
using MlPitfalls.Runtime.Internal;
using TorchSharp;

namespace MlPitfalls.Runtime.Shapes
{
    /// <summary>The matching engine. The passing path reads sizes with no allocation and formats nothing.</summary>
    internal static class ShapeChecker
    {
        // inContract: a module contract, whose sizes come from its own sizes argument (no ShapeScope.Bind to advise).
        public static void Check(torch.Tensor tensor, ShapeSpec spec, ShapeScope scope, string label, string? file, int line, bool inContract = false)
        {
            long ndim = tensor.ndim;
            int terms = spec.Terms.Length;
            bool rankOk = spec.EllipsisIndex < 0 ? ndim == terms : ndim >= terms - 1;
            if (!rankOk)
            {
                Fail(tensor, spec, scope, label, file, line, RankProblem(spec, ndim), "a dimension is missing or extra: look for a lost batch dimension (indexing x[0], squeeze()), a missing unsqueeze/flatten, or a spec written for a different layout.");
            }

            // Names bound by this check; rolled back if a later dimension fails so a failed check leaves the scope unchanged.
            ulong boundHere = 0;
            for (int i = 0; i < terms; i++)
            {
                var term = spec.Terms[i];
                if (term.Kind == DimKind.Ellipsis || term.Kind == DimKind.Any) continue;

                int axis = spec.EllipsisIndex < 0 || i < spec.EllipsisIndex ? i : (int)(ndim - (terms - i));
                long actual = tensor.size(axis);
                switch (term.Kind)
                {
                    case DimKind.Fixed:
                        if (actual != term.Value)
                        {
                            Rollback(scope, spec, boundHere, label, file, line);
                            Fail(tensor, spec, scope, label, file, line, $"dim {axis} should be {term.Value} but is {actual}.", "the layer producing this tensor was configured with a different size, or the dimensions are in a different order (e.g. channels-last vs channels-first).");
                        }
                        break;
                    case DimKind.Name:
                        if (scope.TryGetBinding(term.Name!, out var existing))
                        {
                            if (existing.Value != actual)
                            {
                                Rollback(scope, spec, boundHere, label, file, line);
                                Fail(tensor, spec, scope, label, file, line,
                                    $"dim {axis} '{term.Name}' should be {existing.Value} (bound {existing.Describe()}) but is {actual}.",
                                    $"this tensor disagrees with an earlier tensor about '{term.Name}'. If they really are different quantities, give them different names; otherwise find where this tensor's dim {axis} changed (a reshape/view, a slice, or a layer with the wrong size).");
                            }
                        }
                        else
                        {
                            scope.SetBinding(term.Name!, new DimBinding(actual, label, axis, file, line));
                            if (i < 64) boundHere |= 1UL << i;
                        }
                        break;
                    case DimKind.Expression:
                        var problem = CheckExpression(term, actual, axis, scope, label, file, line, inContract, out bool bound);
                        if (bound && i < 64) boundHere |= 1UL << i;
                        if (problem is not null)
                        {
                            Rollback(scope, spec, boundHere, label, file, line);
                            Fail(tensor, spec, scope, label, file, line, problem, "the factors of the product or quotient and where each was bound (listed above): a head count or hidden size that does not match, or heads and head_dim swapped in a view.");
                        }
                        break;
                }
            }
        }

        public static void CheckDtypeDevice(torch.Tensor tensor, ShapeSpec spec, ShapeScope scope, torch.ScalarType? dtype, DeviceType? device, string label, string? file, int line)
        {
            if (dtype.HasValue)
            {
                var actual = tensor.dtype;
                if (actual != dtype.Value)
                {
                    Fail(tensor, spec, scope, label, file, line, $"dtype should be {dtype.Value} but is {actual}.", $"convert with .to({nameof(torch.ScalarType)}.{dtype.Value}) where the tensor is created or loaded, or create it with dtype: {nameof(torch.ScalarType)}.{dtype.Value}.");
                }
            }
            if (device.HasValue)
            {
                var actual = tensor.device_type;
                if (actual != device.Value)
                {
                    Fail(tensor, spec, scope, label, file, line, $"device should be {device.Value} but is {actual}.", "move the tensor (or the model) with .to(device) so that all operands live on the same device.");
                }
            }
        }

        private static string? CheckExpression(DimTerm term, long actual, int axis, ShapeScope scope, string label, string? file, int line, bool inContract, out bool bound)
        {
            bound = false;
            // value = numerator / denominator; solve for at most one unbound name.
            long num = 1, den = 1;
            string? unknown = null;
            bool unknownDivides = false;
            foreach (var f in term.Factors!)
            {
                long v;
                if (f.Name is null)
                {
                    v = f.Constant;
                }
                else if (scope.TryGetBinding(f.Name, out var b))
                {
                    v = b.Value;
                }
                else
                {
                    if (unknown is not null && unknown != f.Name)
                    {
                        return $"dim {axis} is '{term.Text}' = {actual}, but '{unknown}' and '{f.Name}' are both unbound, so it cannot be checked. {BindFirst("one of them", f.Name, inContract)}";
                    }
                    if (unknown == f.Name)
                    {
                        return $"dim {axis} is '{term.Text}' = {actual}, but '{f.Name}' appears in it twice and is unbound, so it cannot be solved for. {BindFirst($"'{f.Name}'", f.Name, inContract)}";
                    }
                    unknown = f.Name;
                    unknownDivides = f.Divide;
                    continue;
                }
                if (f.Divide) den = checked(den * v);
                else num = checked(num * v);
            }

            if (den == 0) return $"dim {axis} is {actual}, but '{term.Text}' divides by a dimension bound to 0 ({Explain(term, scope)}), so it has no defined size; check where that dimension was bound (an empty tensor?).";

            if (unknown is null)
            {
                if (num % den != 0) return $"dim {axis} is {actual}, but '{term.Text}' = {num}/{den} ({Explain(term, scope)}) is not a whole number: the bound sizes do not divide evenly.";
                long expected = num / den;
                return expected == actual ? null : $"dim {axis} '{term.Text}' should be {expected} ({Explain(term, scope)}) but is {actual}.";
            }

            // With an empty dimension (size 0) among the bound factors the term is 0 whatever the unknown is: nothing to solve.
            if (num == 0)
            {
                return actual == 0 ? null : $"dim {axis} '{term.Text}' should be 0 ({Explain(term, scope)}) but is {actual}.";
            }

            // actual = num * u / den  or  actual = num / (den * u)
            long solved;
            if (!unknownDivides)
            {
                long top = checked(actual * den);
                if (top % num != 0) return $"dim {axis} is {actual}, but no whole value of '{unknown}' makes '{term.Text}' equal {actual} ({Explain(term, scope)}).";
                solved = top / num; // 0 for an empty dimension, like a plain name bound to 0
            }
            else
            {
                long bottom = checked(actual * den);
                if (bottom == 0 || num % bottom != 0) return $"dim {axis} is {actual}, but no whole value of '{unknown}' makes '{term.Text}' equal {actual} ({Explain(term, scope)}).";
                solved = num / bottom;
            }
            scope.SetBinding(unknown, new DimBinding(solved, label, axis, file, line));
            bound = true;
            return null;
        }

        private static string BindFirst(string what, string example, bool inContract) =>
            inContract
                ? $"Give {what} in the contract's sizes (ExpectContract(\"...\", new {{ {example} = ... }})), or name it alone in an earlier " +
                  "dimension or an earlier spec of the contract (an output can use what its inputs bound)."
                : $"Bind {what} first: name it in an earlier dimension of this spec, in an earlier check against the same ShapeScope, " +
                  "or with Bind on that scope; a check without any ShapeScope sees only its own spec.";

        private static string Explain(DimTerm term, ShapeScope scope)
        {
            var sb = new StringBuilder();
            foreach (var f in term.Factors!)
            {
                if (f.Name is null) continue;
                if (sb.Length > 0) sb.Append(", ");
                sb.Append(f.Name).Append('=').Append(scope.TryGet(f.Name, out var v) ? v.ToString(System.Globalization.CultureInfo.InvariantCulture) : "?");
            }
            return sb.ToString();
        }

        private static void Rollback(ShapeScope scope, ShapeSpec spec, ulong boundHere, string label, string? file, int line)
        {
            if (boundHere == 0) return;
            for (int i = 0; i < spec.Terms.Length && i < 64; i++)
            {
                if ((boundHere & (1UL << i)) == 0) continue;
                var term = spec.Terms[i];
                if (term.Kind == DimKind.Name)
                {
                    scope.RemoveBinding(term.Name!);
                    continue;
                }
                foreach (var f in term.Factors!)
                {
                    // The factor solved by this check is the one whose binding came from this very call site.
                    if (f.Name is not null && scope.TryGetBinding(f.Name, out var b) && b.Source == label && b.File == file && b.Line == line)
                    {
                        scope.RemoveBinding(f.Name);
                    }
                }
            }
        }

        private static string RankProblem(ShapeSpec spec, long ndim) =>
            spec.HasEllipsis
                ? $"the tensor has {Dimensions(ndim)} but the spec needs at least {spec.FixedRank}."
                : $"the tensor has {Dimensions(ndim)} but the spec has {spec.FixedRank}.";

        private static string Dimensions(long n) => n == 1 ? "1 dimension" : $"{n} dimensions";

        private static void Fail(torch.Tensor tensor, ShapeSpec spec, ShapeScope scope, string label, string? file, int line, string problem, string hint)
        {
            var shape = tensor.shape;
            var where = file is null ? "" : $" at {Path.GetFileName(file)}:{line}";
            var message =
                $"Shape check failed for '{label}'{where}: {problem}{Environment.NewLine}" +
                $"  expected: \"{spec.Text}\"{Environment.NewLine}" +
                $"  actual:   {TensorText.Shape(shape)} ({tensor.dtype}, {tensor.device_type}){Environment.NewLine}" +
                $"Bindings in scope:{Environment.NewLine}{ShapeScope.Format(scope.Bindings)}{Environment.NewLine}" +
                $"What to check: {hint}";
            throw new ShapeContractException(message, label, spec.Text, shape, scope.Snapshot());
        }
    }
}
