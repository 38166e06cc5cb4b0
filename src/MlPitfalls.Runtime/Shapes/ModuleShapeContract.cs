using System;
using System.Collections.Generic;
using System.Linq;
using System.Linq.Expressions;
using System.Reflection;
using System.Runtime.CompilerServices;
using System.Threading;
using TorchSharp;

namespace MlPitfalls.Runtime.Shapes
{
    /// <summary>
    /// Input/output shape contracts attached to a module of any arity through forward hooks: one spec per input tensor and
    /// one per output tensor (a tuple output such as GRU's lists one spec per element). Dispose to remove the hooks.
    /// </summary>
    public sealed class ModuleShapeContract : IDisposable
    {
        private readonly ShapeSpec[] _inputs;
        private readonly ShapeSpec[] _outputs;
        private readonly (string Name, long Value)[] _sizes;
        private readonly string _name;
        private readonly string _file;
        private readonly int _line;
        private readonly ThreadLocal<ShapeScope> _scopes = new(() => new ShapeScope());
        private readonly List<Action> _removers = new();
        private long _callsChecked;

        internal ModuleShapeContract(torch.nn.Module module, ShapeSpec[] inputs, ShapeSpec[] outputs, (string, long)[] sizes, string name, string file, int line)
        {
            _inputs = inputs;
            _outputs = outputs;
            _sizes = sizes;
            _name = $"{name} ({module.GetType().Name})";
            _file = file;
            _line = line;
            if (module is torch.nn.Module<torch.Tensor, torch.Tensor> single)
            {
                // The common case keeps its allocation-free typed hooks.
                var pre = single.register_forward_pre_hook((_, input) => { OnPreTensor(input); return null!; });
                var post = single.register_forward_hook((_, _, output) => { OnPostTensor(output); return null!; });
                _removers.Add(pre.remove);
                _removers.Add(post.remove);
            }
            else
            {
                HookAnyArity(module);
            }
        }

        /// <summary>The spec of the first input.</summary>
        public ShapeSpec Input => _inputs[0];

        /// <summary>The spec of the first output.</summary>
        public ShapeSpec Output => _outputs[0];

        /// <summary>One spec per input tensor, in order.</summary>
        public IReadOnlyList<ShapeSpec> Inputs => _inputs;

        /// <summary>One spec per output tensor, in order.</summary>
        public IReadOnlyList<ShapeSpec> Outputs => _outputs;

        /// <summary>Number of calls checked so far.</summary>
        public long CallsChecked => Interlocked.Read(ref _callsChecked);

        private static bool Disabled => ShapeChecks.DisabledByAppContext || !ShapeChecks.s_enabled;

        private ShapeScope BeginCall()
        {
            var scope = _scopes.Value!;
            scope.Clear();
            foreach (var (name, value) in _sizes) scope.SetBinding(name, new DimBinding(value, null, DimBinding.ContractSize, _file, _line));
            return scope;
        }

        private void OnPreTensor(torch.Tensor input)
        {
            if (Disabled) return;
            var scope = BeginCall();
            if (_inputs.Length == 1) ShapeChecker.Check(input, _inputs[0], scope, $"input of {_name}", _file, _line, inContract: true);
            else CheckAll(new object?[] { input }, _inputs, "input", scope);
        }

        private void OnPostTensor(torch.Tensor output)
        {
            if (Disabled) return;
            var scope = _scopes.Value!;
            if (_outputs.Length == 1) ShapeChecker.Check(output, _outputs[0], scope, $"output of {_name}", _file, _line, inContract: true);
            else CheckAll(new object?[] { output }, _outputs, "output", scope);
            scope.Clear();
            Interlocked.Increment(ref _callsChecked);
        }

        private void OnPre(object?[] inputs)
        {
            if (Disabled) return;
            CheckAll(inputs, _inputs, "input", BeginCall());
        }

        private void OnPost(object? output)
        {
            if (Disabled) return;
            var scope = _scopes.Value!;
            CheckAll(new[] { output }, _outputs, "output", scope);
            scope.Clear();
            Interlocked.Increment(ref _callsChecked);
        }

        private void CheckAll(object?[] values, ShapeSpec[] specs, string what, ShapeScope scope)
        {
            var tensors = new List<torch.Tensor>(specs.Length);
            foreach (var value in values) Collect(value, tensors, 0);
            if (tensors.Count != specs.Length)
            {
                throw new ShapeContractException(
                    $"The contract of '{_name}' at {System.IO.Path.GetFileName(_file)}:{_line} lists {specs.Length} {what} spec{(specs.Length == 1 ? "" : "s")}, " +
                    $"but the module {(what == "input" ? "received" : "returned")} {tensors.Count} tensor{(tensors.Count == 1 ? "" : "s")}.{Environment.NewLine}" +
                    $"What to check: write one spec per {what} tensor, separated by commas (a tuple counts element by element), and '...' for a tensor of any shape.",
                    $"{what} of {_name}", string.Join(", ", specs.Select(s => s.Text)), Array.Empty<long>(), scope.Snapshot());
            }

            for (int k = 0; k < tensors.Count; k++)
            {
                var label = specs.Length == 1 ? $"{what} of {_name}" : $"{what} {k + 1} of {_name}";
                ShapeChecker.Check(tensors[k], specs[k], scope, label, _file, _line, inContract: true);
            }
        }

        /// <summary>The tensors of a value, in order: a tensor, or the elements of a (value) tuple; null elements (an omitted h0) are skipped.</summary>
        private static void Collect(object? value, List<torch.Tensor> into, int depth)
        {
            switch (value)
            {
                case torch.Tensor tensor:
                    into.Add(tensor);
                    break;
                case ITuple tuple when depth < 3:
                    for (int k = 0; k < tuple.Length; k++) Collect(tuple[k], into, depth + 1);
                    break;
            }
        }

        /// <summary>
        /// Hooks for <c>Module&lt;T1, ..., TResult&gt;</c> of any arity, built once with expression trees. The pre-hook returns
        /// "no change" (null, or the input itself when the input is a value tuple: TorchSharp replaces an input with any non-null
        /// return); the post-hook returns the output itself for the same reason.
        /// </summary>
        private void HookAnyArity(torch.nn.Module module)
        {
            var methods = module.GetType().GetMethods(BindingFlags.Public | BindingFlags.Instance);
            MethodInfo? Typed(string name) => methods.FirstOrDefault(mi => mi.Name == name && mi.GetParameters() is { Length: 1 } ps
                && ps[0].ParameterType.IsGenericType && ps[0].ParameterType.Name.StartsWith("Func`", StringComparison.Ordinal));
            var registerPre = Typed("register_forward_pre_hook");
            var registerPost = Typed("register_forward_hook");
            if (registerPre is null || registerPost is null)
            {
                throw new NotSupportedException($"{module.GetType().Name} has no typed forward hooks, so a shape contract cannot observe its calls.");
            }

            Register(registerPre, module, BuildHook(registerPre, nameof(OnPre), isPost: false));
            Register(registerPost, module, BuildHook(registerPost, nameof(OnPost), isPost: true));
        }

        private Delegate BuildHook(MethodInfo register, string handler, bool isPost)
        {
            var delegateType = register.GetParameters()[0].ParameterType;
            var invoke = delegateType.GetMethod("Invoke")!;
            var parameters = invoke.GetParameters().Select(p => Expression.Parameter(p.ParameterType, p.Name)).ToArray();
            var target = typeof(ModuleShapeContract).GetMethod(handler, BindingFlags.NonPublic | BindingFlags.Instance)!;
            Expression call;
            Expression result;
            if (isPost)
            {
                var output = parameters[parameters.Length - 1];
                call = Expression.Call(Expression.Constant(this), target, Expression.Convert(output, typeof(object)));
                result = output;
            }
            else
            {
                var inputs = parameters.Skip(1).Select(p => (Expression)Expression.Convert(p, typeof(object)));
                call = Expression.Call(Expression.Constant(this), target, Expression.NewArrayInit(typeof(object), inputs));
                result = parameters.Length == 2 && invoke.ReturnType == parameters[1].Type && invoke.ReturnType.IsValueType
                    ? parameters[1]
                    : Expression.Default(invoke.ReturnType);
            }

            return Expression.Lambda(delegateType, Expression.Block(call, result), parameters).Compile();
        }

        private void Register(MethodInfo register, torch.nn.Module module, Delegate hook)
        {
            var remover = register.Invoke(module, new object[] { hook });
            var remove = remover?.GetType().GetMethod("remove", Type.EmptyTypes);
            if (remover is not null && remove is not null) _removers.Add(() => remove.Invoke(remover, null));
        }

        /// <summary>Removes the hooks from the module.</summary>
        public void Dispose()
        {
            foreach (var remove in _removers) remove();
            _removers.Clear();
            _scopes.Dispose();
        }
    }
}
