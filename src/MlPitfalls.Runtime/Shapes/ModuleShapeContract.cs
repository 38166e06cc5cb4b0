using System;
using System.Threading;
using TorchSharp;

namespace MlPitfalls.Runtime.Shapes
{
    /// <summary>An input/output shape contract attached to a module through forward hooks. Dispose to remove the hooks.</summary>
    public sealed class ModuleShapeContract : IDisposable
    {
        private readonly torch.nn.Module<torch.Tensor, torch.Tensor> _module;
        private readonly string _inputLabel;
        private readonly string _outputLabel;
        private readonly string _file;
        private readonly int _line;
        private readonly ThreadLocal<ShapeScope> _scopes = new(() => new ShapeScope());
        private torch.nn.HookableModule<Func<torch.nn.Module<torch.Tensor, torch.Tensor>, torch.Tensor, torch.Tensor>, Func<torch.nn.Module<torch.Tensor, torch.Tensor>, torch.Tensor, torch.Tensor, torch.Tensor>>.HookRemover? _pre;
        private torch.nn.HookableModule<Func<torch.nn.Module<torch.Tensor, torch.Tensor>, torch.Tensor, torch.Tensor>, Func<torch.nn.Module<torch.Tensor, torch.Tensor>, torch.Tensor, torch.Tensor, torch.Tensor>>.HookRemover? _post;

        internal ModuleShapeContract(torch.nn.Module<torch.Tensor, torch.Tensor> module, ShapeSpec input, ShapeSpec output, string name, string file, int line)
        {
            _module = module;
            Input = input;
            Output = output;
            _inputLabel = $"input of {name} ({module.GetType().Name})";
            _outputLabel = $"output of {name} ({module.GetType().Name})";
            _file = file;
            _line = line;
            _pre = module.register_forward_pre_hook(OnPre);
            _post = module.register_forward_hook(OnPost);
        }

        /// <summary>The input spec.</summary>
        public ShapeSpec Input { get; }

        /// <summary>The output spec.</summary>
        public ShapeSpec Output { get; }

        /// <summary>Number of calls checked so far.</summary>
        public long CallsChecked { get; private set; }

        private torch.Tensor OnPre(torch.nn.Module<torch.Tensor, torch.Tensor> m, torch.Tensor input)
        {
            if (ShapeChecks.DisabledByAppContext || !ShapeChecks.s_enabled) return null!; // null keeps the value (TorchSharp hook convention)
            var scope = _scopes.Value!;
            scope.Clear();
            ShapeChecker.Check(input, Input, scope, _inputLabel, _file, _line);
            return null!; // null keeps the value (TorchSharp hook convention)
        }

        private torch.Tensor OnPost(torch.nn.Module<torch.Tensor, torch.Tensor> m, torch.Tensor input, torch.Tensor output)
        {
            if (ShapeChecks.DisabledByAppContext || !ShapeChecks.s_enabled) return null!; // null keeps the value (TorchSharp hook convention)
            var scope = _scopes.Value!;
            ShapeChecker.Check(output, Output, scope, _outputLabel, _file, _line);
            scope.Clear();
            CallsChecked++;
            return null!; // null keeps the value (TorchSharp hook convention)
        }

        /// <summary>Removes the hooks from the module.</summary>
        public void Dispose()
        {
            _pre?.remove();
            _post?.remove();
            _pre = null;
            _post = null;
            _scopes.Dispose();
        }
    }
}
