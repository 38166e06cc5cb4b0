using System;
using System.Collections;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using System.Reflection;
using System.Text;
using MlPitfalls.Runtime.Internal;
using TorchSharp;

namespace MlPitfalls.Runtime.Gradients
{
    /// <summary>The state of one parameter's gradient after backward().</summary>
    public enum GradientStatus
    {
        /// <summary>Finite and not all zero.</summary>
        Ok,

        /// <summary><c>requires_grad</c> is false: frozen on purpose, not a problem.</summary>
        Frozen,

        /// <summary>No gradient at all: the parameter took no part in the loss.</summary>
        NoGradient,

        /// <summary>Every element of the gradient is zero.</summary>
        AllZero,

        /// <summary>The gradient holds NaN or Inf.</summary>
        NonFinite,

        /// <summary>It has a gradient but the optimizer given to the analysis does not hold it: it is never updated.</summary>
        NotInOptimizer,
    }

    /// <summary>One parameter's gradient.</summary>
    public sealed class ParameterGradient
    {
        internal ParameterGradient(string name, long[] shape, GradientStatus status, double norm)
        {
            Name = name;
            Shape = shape;
            Status = status;
            Norm = norm;
        }

        /// <summary>Name from named_parameters().</summary>
        public string Name { get; }

        /// <summary>Parameter shape.</summary>
        public long[] Shape { get; }

        /// <summary>Gradient status.</summary>
        public GradientStatus Status { get; }

        /// <summary>L2 norm of the gradient (NaN when there is none or it is non-finite).</summary>
        public double Norm { get; }
    }

    /// <summary>Gradient norm of one layer (the parameters sharing a module path).</summary>
    public sealed class LayerGradient
    {
        internal LayerGradient(string layer, double norm, int parameters, int nonFinite = 0, int withoutGradient = 0, int frozen = 0)
        {
            Layer = layer;
            Norm = norm;
            Parameters = parameters;
            NonFinite = nonFinite;
            WithoutGradient = withoutGradient;
            Frozen = frozen;
        }

        /// <summary>Module path (<c>encoder.fc</c>).</summary>
        public string Layer { get; }

        /// <summary>L2 norm over the layer's finite gradients; NaN when none of its parameters has a finite gradient.</summary>
        public double Norm { get; }

        /// <summary>Number of parameters in the layer.</summary>
        public int Parameters { get; }

        /// <summary>Parameters of the layer whose gradient holds NaN/Inf (left out of <see cref="Norm"/>).</summary>
        public int NonFinite { get; }

        /// <summary>Trainable parameters of the layer with no gradient at all.</summary>
        public int WithoutGradient { get; }

        /// <summary>Parameters of the layer with <c>requires_grad = false</c>.</summary>
        public int Frozen { get; }

        /// <summary>The norm as the report prints it, saying what it is when there is none: <c>NaN/Inf</c>, <c>none (no gradient)</c>, <c>frozen</c>.</summary>
        public string NormText
        {
            get
            {
                var inv = CultureInfo.InvariantCulture;
                int withNorm = Parameters - NonFinite - WithoutGradient - Frozen;
                if (withNorm == 0)
                {
                    return NonFinite > 0 ? (WithoutGradient > 0 ? "NaN/Inf (and parameters with no gradient)" : "NaN/Inf")
                        : WithoutGradient > 0 ? "none (no gradient)"
                        : "frozen";
                }

                var text = Norm == 0 ? "0" : Norm.ToString("0.###e+0", inv);
                var notes = new List<string>();
                if (NonFinite > 0) notes.Add($"{NonFinite} of {Parameters} parameters NaN/Inf, not counted");
                if (WithoutGradient > 0) notes.Add($"{WithoutGradient} of {Parameters} with no gradient");
                return notes.Count == 0 ? text : $"{text} ({string.Join("; ", notes)})";
            }
        }
    }

    /// <summary>The result of <see cref="GradientFlow.Analyze"/>.</summary>
    public sealed class GradientFlowReport
    {
        internal GradientFlowReport(string modelName, IReadOnlyList<ParameterGradient> parameters, IReadOnlyList<LayerGradient> layers, IReadOnlyList<string> unregisteredFields,
            IReadOnlyList<string> unregisteredModulesInUse)
        {
            ModelName = modelName;
            Parameters = parameters;
            Layers = layers;
            UnregisteredFields = unregisteredFields;
            UnregisteredModulesInUse = unregisteredModulesInUse;
        }

        /// <summary>The model's type name.</summary>
        public string ModelName { get; }

        /// <summary>Every parameter, in named_parameters() order.</summary>
        public IReadOnlyList<ParameterGradient> Parameters { get; }

        /// <summary>Per-layer gradient norms.</summary>
        public IReadOnlyList<LayerGradient> Layers { get; }

        /// <summary>True when TorchSharp sees no parameters at all in the model.</summary>
        public bool ModelHasNoParameters => Parameters.Count == 0;

        /// <summary>When the model has no parameters: fields holding modules or tensors that were never registered.</summary>
        public IReadOnlyList<string> UnregisteredFields { get; }

        /// <summary>
        /// Modules held in fields, or in a List, array or Dictionary, of the model's modules that TorchSharp never registered, and whose
        /// parameters nevertheless received gradients: they take part in the loss, but <c>parameters()</c> (so the optimizer built from it)
        /// and <c>state_dict()</c> leave them out, so they never train. Shown as <c>hidden[0] (Linear)</c>.
        /// </summary>
        public IReadOnlyList<string> UnregisteredModulesInUse { get; }

        /// <summary>Parameters with a problem (everything except <see cref="GradientStatus.Ok"/> and <see cref="GradientStatus.Frozen"/>).</summary>
        public IReadOnlyList<ParameterGradient> Problems => Parameters.Where(p => p.Status != GradientStatus.Ok && p.Status != GradientStatus.Frozen).ToList();

        /// <summary>True when the model has parameters, every trainable one has a finite, non-zero gradient, and no module in use is unregistered.</summary>
        public bool IsHealthy => !ModelHasNoParameters && Problems.Count == 0 && UnregisteredModulesInUse.Count == 0;

        /// <summary>Throws <see cref="GradientFlowException"/> when the report is not healthy.</summary>
        public GradientFlowReport ThrowIfUnhealthy()
        {
            if (!IsHealthy) throw new GradientFlowException(this);
            return this;
        }

        /// <summary>A readable report: problems first with what to check, then per-layer norms.</summary>
        public override string ToString()
        {
            var inv = CultureInfo.InvariantCulture;
            var sb = new StringBuilder();
            if (ModelHasNoParameters)
            {
                sb.Append($"Model '{ModelName}' has no parameters that TorchSharp knows about, so backward() computes no gradients and the optimizer updates nothing: the model can never learn.");
                if (UnregisteredFields.Count > 0)
                {
                    sb.AppendLine().Append($"  It holds modules/tensors in fields that were never registered: {string.Join(", ", UnregisteredFields)}.");
                }
                sb.AppendLine().Append("What to check: call RegisterComponents() at the end of the custom module's constructor (after the fields are assigned), or register them with register_module(...)/register_parameter(...).");
                return sb.ToString();
            }

            var problems = Problems;
            sb.Append($"Gradient flow for '{ModelName}': {Plural(Parameters.Count, "parameter")}, {problems.Count} with a problem, {Parameters.Count(p => p.Status == GradientStatus.Frozen)} frozen" +
                      (UnregisteredModulesInUse.Count > 0 ? $", and {Plural(UnregisteredModulesInUse.Count, "module")} used in forward but never registered." : "."));
            if (UnregisteredModulesInUse.Count > 0)
            {
                sb.AppendLine().Append($"  used in forward but never registered, so never trained: {string.Join(", ", UnregisteredModulesInUse)}");
                sb.AppendLine().Append("    What to check: their parameters get gradients, but parameters() — and so the optimizer — and state_dict() do not include them. " +
                                       "RegisterComponents() registers module fields, not a List/array/Dictionary of modules: use ModuleList/ModuleDict, " +
                                       "assign module fields before calling RegisterComponents(), or call register_module(name, module).");
            }
            foreach (var group in problems.GroupBy(p => p.Status))
            {
                sb.AppendLine().Append($"  {Describe(group.Key)}: {string.Join(", ", group.Select(p => p.Name))}");
                sb.AppendLine().Append($"    What to check: {Hint(group.Key)}");
            }
            if (Layers.Count > 0)
            {
                sb.AppendLine().Append("  Per-layer gradient norms:");
                int width = Layers.Max(l => l.Layer.Length);
                foreach (var l in Layers)
                {
                    sb.AppendLine().Append("    ").Append(l.Layer.PadRight(width)).Append("  ").Append(l.NormText);
                }
            }
            return sb.ToString();
        }

        private static string Plural(int n, string noun) => n == 1 ? $"1 {noun}" : $"{n} {noun}s";

        private static string Describe(GradientStatus s) => s switch
        {
            GradientStatus.NoGradient => "no gradient",
            GradientStatus.AllZero => "all-zero gradient",
            GradientStatus.NonFinite => "NaN/Inf gradient",
            GradientStatus.NotInOptimizer => "has a gradient but is not in the optimizer",
            _ => s.ToString(),
        };

        private static string Hint(GradientStatus s) => s switch
        {
            GradientStatus.NoGradient => "the parameter is not used in forward(), or only through a detached path (.detach(), no_grad(), argmax, .item(), a new tensor built from values), " +
                                         "or backward() has not run yet (or model.zero_grad() cleared the gradients before this report).",
            GradientStatus.AllZero => "the path to the loss multiplies by zero: dead ReLUs (all inputs negative), a mask that is all zero, a saturated sigmoid/tanh, or a loss term weighted by 0. " +
                                      "If every parameter is listed, check that the report runs after backward() and before optimizer.zero_grad(), which zeroes gradients in place.",
            GradientStatus.NonFinite => "a derivative is undefined at the values used (sqrt/log/pow at 0, division by ~0) or the gradients exploded; see NonFiniteGuard.CheckGradients() and nn.utils.clip_grad_norm_.",
            GradientStatus.NotInOptimizer => "the optimizer was built from a different parameter list (created before the layer was added, or from one submodule only), so these weights never change.",
            _ => "",
        };
    }

    /// <summary>The gradient flow is broken: some parameters get no, zero or non-finite gradients, or the model has no parameters.</summary>
    public sealed class GradientFlowException : RuntimeCheckException
    {
        internal GradientFlowException(GradientFlowReport report) : base(report.ToString()) => Report = report;

        /// <summary>The full report.</summary>
        public GradientFlowReport Report { get; }
    }

    /// <summary>Gradient flow analysis, to run after <c>backward()</c> and before <c>optimizer.step()</c>/<c>zero_grad()</c>.</summary>
    public static class GradientFlow
    {
        /// <summary>
        /// Reports, for every parameter of <paramref name="model"/>: no gradient, all-zero, non-finite, frozen, or fine, with per-layer norms.
        /// With an <paramref name="optimizer"/> (a managed TorchSharp optimizer such as SGD or Adam), parameters that have a gradient
        /// but are not held by the optimizer are reported too.
        /// </summary>
        public static GradientFlowReport Analyze(torch.nn.Module model, torch.optim.Optimizer? optimizer = null)
        {
            TorchLoad.EnsureLoaded();
            if (model is null) throw new ArgumentNullException(nameof(model));
            HashSet<IntPtr>? inOptimizer = null;
            if (optimizer is TorchSharp.Modules.OptimizerHelper)
            {
                // Managed optimizers return their own Parameter objects here (not new handles), so nothing needs disposing.
                inOptimizer = new HashSet<IntPtr>(optimizer.parameters().Select(p => p.Handle));
            }

            var parameters = new List<ParameterGradient>();
            var layerSquares = new List<(string Layer, double SumSquares, int Count, int NonFinite, int Missing, int Frozen)>();
            var layerIndex = new Dictionary<string, int>(StringComparer.Ordinal);
            using (torch.no_grad())
            {
                foreach (var (name, p) in model.named_parameters())
                {
                    var shape = p.shape;
                    GradientStatus status;
                    double norm = double.NaN;
                    if (!p.requires_grad)
                    {
                        status = GradientStatus.Frozen;
                    }
                    else
                    {
                        using var grad = p.grad; // a new handle per access
                        if (grad is null)
                        {
                            status = GradientStatus.NoGradient;
                        }
                        else if (!Finite.AllFinite(grad))
                        {
                            status = GradientStatus.NonFinite;
                        }
                        else
                        {
                            using var n = grad.norm();
                            norm = n.ToDouble();
                            status = norm == 0 ? GradientStatus.AllZero
                                : inOptimizer is not null && !inOptimizer.Contains(p.Handle) ? GradientStatus.NotInOptimizer
                                : GradientStatus.Ok;
                        }
                    }
                    parameters.Add(new ParameterGradient(name, shape, status, norm));

                    var layer = ModuleNames.ParentOf(name);
                    if (layer.Length == 0) layer = "<root>";
                    if (!layerIndex.TryGetValue(layer, out var li))
                    {
                        li = layerSquares.Count;
                        layerIndex[layer] = li;
                        layerSquares.Add((layer, 0, 0, 0, 0, 0));
                    }
                    var entry = layerSquares[li];
                    layerSquares[li] = (entry.Layer, entry.SumSquares + (double.IsFinite(norm) ? norm * norm : 0), entry.Count + 1,
                        entry.NonFinite + (status == GradientStatus.NonFinite ? 1 : 0),
                        entry.Missing + (status == GradientStatus.NoGradient ? 1 : 0),
                        entry.Frozen + (status == GradientStatus.Frozen ? 1 : 0));
                }
            }

            var layers = layerSquares.Select(l => new LayerGradient(
                l.Layer, l.Count - l.NonFinite - l.Missing - l.Frozen > 0 ? Math.Sqrt(l.SumSquares) : double.NaN, l.Count, l.NonFinite, l.Missing, l.Frozen)).ToList();
            var unregistered = parameters.Count == 0 ? UnregisteredFields(model) : (IReadOnlyList<string>)Array.Empty<string>();
            return new GradientFlowReport(model.GetType().Name, parameters, layers, unregistered, UnregisteredModulesInUse(model));
        }

        /// <summary>Assertion form for tests: throws <see cref="GradientFlowException"/> unless every trainable parameter has a finite, non-zero gradient.</summary>
        public static GradientFlowReport AssertGradientsFlow(this torch.nn.Module model, torch.optim.Optimizer? optimizer = null) =>
            Analyze(model, optimizer).ThrowIfUnhealthy();

        /// <summary>
        /// Modules reachable from fields of the model's own (user-defined) modules, directly or inside a collection, that are not part of
        /// the registered module tree but whose parameters have gradients — used in forward, invisible to parameters().
        /// </summary>
        internal static IReadOnlyList<string> UnregisteredModulesInUse(torch.nn.Module model)
        {
            var tree = ModuleNames.All(model);
            var registered = new HashSet<object>(tree.Select(m => (object)m.Module), ReferenceEqualityComparer.Instance);
            var reported = new HashSet<object>(ReferenceEqualityComparer.Instance);
            var result = new List<string>();

            void Consider(object? candidate, string name)
            {
                if (candidate is torch.nn.Module m && !registered.Contains(m) && reported.Add(m) && HasAnyGradient(m))
                {
                    result.Add($"{name} ({m.GetType().Name})");
                }
            }

            foreach (var (path, module) in tree)
            {
                for (var t = module.GetType(); t is not null && t.Assembly != typeof(torch.nn.Module).Assembly; t = t.BaseType)
                {
                    foreach (var f in t.GetFields(BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.DeclaredOnly))
                    {
                        var name = (path.Length == 0 ? "" : path + ".") + FieldDisplayName(f);
                        if (!MayHoldModules(f.FieldType)) continue; // skips tensors, numbers, strings and e.g. List<float> caches without reading them
                        switch (f.GetValue(module))
                        {
                            case torch.nn.Module m:
                                Consider(m, name);
                                break;
                            case IDictionary dictionary: // only materialised collections: enumerating an arbitrary IEnumerable could run user code
                                foreach (DictionaryEntry entry in dictionary) Consider(entry.Value, $"{name}[{entry.Key}]");
                                break;
                            case ICollection collection when collection is not torch.Tensor:
                                int index = 0;
                                foreach (var item in collection) Consider(item, $"{name}[{index++}]");
                                break;
                        }
                    }
                }
            }
            return result;
        }

        /// <summary>Whether a field of this declared type can hold a module, directly or as an element/value of a collection.</summary>
        private static bool MayHoldModules(Type type)
        {
            static bool Could(Type t) => typeof(torch.nn.Module).IsAssignableFrom(t) || t.IsAssignableFrom(typeof(torch.nn.Module));
            if (type.IsArray) return Could(type.GetElementType()!);
            if (Could(type)) return true;
            if (!typeof(IEnumerable).IsAssignableFrom(type)) return false;
            foreach (var i in type.GetInterfaces().Append(type))
            {
                if (!i.IsGenericType) continue;
                var def = i.GetGenericTypeDefinition();
                if (def == typeof(IDictionary<,>) || def == typeof(IReadOnlyDictionary<,>)) return Could(i.GetGenericArguments()[1]);
            }
            foreach (var i in type.GetInterfaces().Append(type))
            {
                if (i.IsGenericType && i.GetGenericTypeDefinition() == typeof(IEnumerable<>)) return Could(i.GetGenericArguments()[0]);
            }
            return true; // a non-generic collection: look inside
        }

        private static bool HasAnyGradient(torch.nn.Module module)
        {
            foreach (var p in module.parameters())
            {
                using var grad = p.grad; // a new handle per access
                if (grad is not null) return true;
            }
            return false;
        }

        private static string FieldDisplayName(FieldInfo f) =>
            f.Name.StartsWith("<", StringComparison.Ordinal) && f.Name.Contains(">k__BackingField")
                ? f.Name.Substring(1, f.Name.IndexOf('>') - 1)
                : f.Name;

        /// <summary>Instance fields (declared on user types) holding modules or tensors: what RegisterComponents() would have registered.</summary>
        internal static IReadOnlyList<string> UnregisteredFields(torch.nn.Module model)
        {
            var result = new List<string>();
            for (var t = model.GetType(); t is not null && t.Assembly != typeof(torch.nn.Module).Assembly; t = t.BaseType)
            {
                foreach (var f in t.GetFields(BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.DeclaredOnly))
                {
                    var value = f.GetValue(model);
                    if (value is torch.nn.Module || value is torch.Tensor)
                    {
                        result.Add($"{FieldDisplayName(f)} ({value.GetType().Name})");
                    }
                }
            }
            return result;
        }
    }
}
