using System;
using System.Collections.Generic;
using MlPitfalls.Runtime.Internal;
using TorchSharp;

namespace MlPitfalls.Runtime.Sanity
{
    /// <summary>Copies of a model's parameters, buffers, gradients and modes, restored in place (Parameter objects stay the same, so optimizers keep working).</summary>
    internal sealed class ModelSnapshot : IDisposable
    {
        private readonly List<(torch.Tensor Target, torch.Tensor Copy)> _values = new();
        private readonly List<(TorchSharp.Modules.Parameter Parameter, torch.Tensor? Grad)> _grads = new();
        private readonly List<(torch.nn.Module Module, bool Training)> _modes;

        private ModelSnapshot(torch.nn.Module model)
        {
            _modes = Modes(model);
            using var _ = torch.no_grad();
            foreach (var (_, p) in model.named_parameters())
            {
                _values.Add((p, p.clone().DetachFromDisposeScope()));
                using var g = p.grad;
                _grads.Add((p, g?.clone().DetachFromDisposeScope()));
            }
            foreach (var (_, b) in model.named_buffers())
            {
                _values.Add((b, b.clone().DetachFromDisposeScope()));
            }
        }

        public static ModelSnapshot Take(torch.nn.Module model) => new(model);

        public void Restore()
        {
            using (torch.no_grad())
            {
                foreach (var (target, copy) in _values) target.copy_(copy);
                foreach (var (p, saved) in _grads)
                {
                    using var current = p.grad;
                    if (saved is null)
                    {
                        if (current is not null) p.grad = null;
                    }
                    else if (current is null)
                    {
                        using var copy = saved.clone();
                        p.grad = copy; // the gradient keeps the storage; the wrapper handle can go
                    }
                    else
                    {
                        current.copy_(saved);
                    }
                }
            }
            RestoreModes(_modes);
        }

        public void Dispose()
        {
            foreach (var (_, copy) in _values) copy.Dispose();
            foreach (var (_, g) in _grads) g?.Dispose();
            _values.Clear();
            _grads.Clear();
        }

        public static List<(torch.nn.Module, bool)> Modes(torch.nn.Module model)
        {
            var list = new List<(torch.nn.Module, bool)>();
            foreach (var (_, m) in ModuleNames.All(model)) list.Add((m, m.training));
            return list;
        }

        /// <summary>Sets each module's own mode without recursing, so per-module differences survive.</summary>
        public static void RestoreModes(List<(torch.nn.Module Module, bool Training)> modes)
        {
            // train()/eval() recurse; apply parents first (list order is root first), children then override.
            foreach (var (m, training) in modes) m.train(training);
        }
    }
}
