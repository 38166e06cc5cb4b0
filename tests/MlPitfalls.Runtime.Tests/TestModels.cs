using System;
using System.Collections.Generic;
using System.Reflection;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MlPitfalls.Runtime.Tests
{
    /// <summary>log(x): NaN for negative inputs, -Inf at 0. The "unstable custom layer" of the tests.</summary>
    internal sealed class LogLayer : nn.Module<Tensor, Tensor>
    {
        public LogLayer() : base(nameof(LogLayer)) { }

        public override Tensor forward(Tensor input) => input.log();
    }

    /// <summary>Multiplies by a constant (3e38 makes a tensor of ones whose sum overflows to +Inf while every element is finite).</summary>
    internal sealed class ScaleLayer : nn.Module<Tensor, Tensor>
    {
        private readonly float _factor;

        public ScaleLayer(float factor) : base(nameof(ScaleLayer)) => _factor = factor;

        public override Tensor forward(Tensor input) => input * _factor;
    }

    /// <summary>Passes its input through, or throws from forward() when <see cref="Throw"/> is set (a bug that stops a pass midway).</summary>
    internal sealed class ThrowingLayer : nn.Module<Tensor, Tensor>
    {
        public ThrowingLayer() : base(nameof(ThrowingLayer)) { }

        public bool Throw { get; set; }

        public override Tensor forward(Tensor input) => Throw ? throw new InvalidOperationException("a bug in forward()") : input.alias();
    }

    /// <summary>Returns an alias of its input (same storage, a new tensor).</summary>
    internal sealed class IdentityLayer : nn.Module<Tensor, Tensor>
    {
        public IdentityLayer() : base(nameof(IdentityLayer)) { }

        public override Tensor forward(Tensor input) => input.alias();
    }

    /// <summary>A model whose forward calls one child with .forward(...), hiding it from hooks.</summary>
    internal sealed class HiddenChildNet : nn.Module<Tensor, Tensor>
    {
        private readonly Linear fc1 = nn.Linear(4, 8);
        private readonly LogLayer bad = new();
        private readonly Linear fc2 = nn.Linear(8, 3);

        public HiddenChildNet() : base(nameof(HiddenChildNet)) => RegisterComponents();

        public override Tensor forward(Tensor input)
        {
            using var h = fc1.call(input);
            using var b = bad.forward(h); // bypasses bad's hooks
            return fc2.call(b);
        }
    }

    /// <summary>A custom module that forgot RegisterComponents(): it has no parameters as far as TorchSharp knows.</summary>
    internal sealed class UnregisteredNet : nn.Module<Tensor, Tensor>
    {
        private readonly Linear fc1 = nn.Linear(4, 8);
        private readonly Linear fc2 = nn.Linear(8, 3);

        public UnregisteredNet() : base(nameof(UnregisteredNet)) { }

        public override Tensor forward(Tensor input)
        {
            using var h = fc1.call(input);
            return fc2.call(h);
        }
    }

    /// <summary>Has a layer that is never used in forward: its parameters get no gradient.</summary>
    internal sealed class UnusedLayerNet : nn.Module<Tensor, Tensor>
    {
        private readonly Linear fc = nn.Linear(4, 3);
        private readonly Linear unused = nn.Linear(4, 3);
        private readonly Linear frozen = nn.Linear(3, 3);

        public UnusedLayerNet() : base(nameof(UnusedLayerNet))
        {
            RegisterComponents();
            foreach (var p in frozen.parameters()) p.requires_grad = false;
        }

        public override Tensor forward(Tensor input)
        {
            using var h = fc.call(input);
            return frozen.call(h);
        }
    }

    /// <summary>
    /// Splits [batch, seq*dim] into [batch, seq, dim], moves to a sequence-first layout [seq, batch, dim], projects and averages
    /// over the sequence (dim 0). <paramref name="buggy"/> uses view instead of permute for the layout change — the classic bug
    /// that silently mixes samples.
    /// </summary>
    internal sealed class SeqFirstNet : nn.Module<Tensor, Tensor>
    {
        private readonly Linear proj = nn.Linear(4, 4);
        private readonly bool _buggy;

        public SeqFirstNet(bool buggy) : base(nameof(SeqFirstNet))
        {
            _buggy = buggy;
            RegisterComponents();
        }

        public override Tensor forward(Tensor input)
        {
            long b = input.shape[0];
            using var x = input.view(b, 3, 4);                                   // [batch, seq, dim]
            using var seqFirst = _buggy ? x.view(3, b, 4) : x.permute(1, 0, 2);  // [seq, batch, dim]
            using var y = proj.call(seqFirst);
            return y.mean(new long[] { 0 });                                      // [batch, dim]: average over the sequence
        }
    }

    internal static class Hooks
    {
        /// <summary>Number of hooks registered on a module (TorchSharp keeps them in protected dictionaries).</summary>
        public static int Count(nn.Module module)
        {
            int total = 0;
            for (var t = module.GetType(); t is not null; t = t.BaseType)
            {
                foreach (var name in new[] { "pre_hooks", "post_hooks", "module_pre_hooks", "module_post_hooks" })
                {
                    var f = t.GetField(name, BindingFlags.Instance | BindingFlags.NonPublic | BindingFlags.DeclaredOnly);
                    if (f?.GetValue(module) is System.Collections.ICollection c) total += c.Count;
                }
            }
            return total;
        }

        public static int CountAll(nn.Module root)
        {
            int total = Count(root);
            foreach (var m in root.modules()) total += Count(m);
            return total;
        }
    }
}

namespace MlPitfalls.Runtime.Tests
{
    /// <summary>Two-input module: a + b.</summary>
    internal sealed class AddModule : nn.Module<Tensor, Tensor, Tensor>
    {
        public AddModule() : base(nameof(AddModule)) { }

        public override Tensor forward(Tensor a, Tensor b) => a + b;
    }

    /// <summary>A module whose forward takes a tuple: the guard can see it run but cannot inspect its values.</summary>
    internal sealed class TupleModule : nn.Module<(Tensor, Tensor), Tensor>
    {
        public TupleModule() : base(nameof(TupleModule)) { }

        public override Tensor forward((Tensor, Tensor) input) => input.Item1 * input.Item2;
    }

    /// <summary>Uses a two-input module and a tuple-input module, both through call().</summary>
    internal sealed class MixedSignatureNet : nn.Module<Tensor, Tensor>
    {
        private readonly TorchSharp.Modules.Linear fc = nn.Linear(3, 3);
        private readonly AddModule add = new();
        private readonly TupleModule mul = new();

        public MixedSignatureNet() : base(nameof(MixedSignatureNet)) => RegisterComponents();

        public override Tensor forward(Tensor input)
        {
            using var h = fc.call(input);
            using var s = add.call(h, input.log()); // log of a negative input: NaN enters through the second argument
            return mul.call((s, s));
        }
    }
}

namespace MlPitfalls.Runtime.Tests
{
    /// <summary>A custom block whose forward takes its child's output and makes it non-finite in place (log_ returns the same tensor).</summary>
    internal sealed class InPlaceLogBlock : nn.Module<Tensor, Tensor>
    {
        private readonly TorchSharp.Modules.Linear fc = nn.Linear(4, 4);

        public InPlaceLogBlock() : base(nameof(InPlaceLogBlock)) => RegisterComponents();

        public override Tensor forward(Tensor input) => fc.call(input).log_();
    }

    /// <summary>log of its input, in place: the output is the input tensor itself.</summary>
    internal sealed class InPlaceLogLayer : nn.Module<Tensor, Tensor>
    {
        public InPlaceLogLayer() : base(nameof(InPlaceLogLayer)) { }

        public override Tensor forward(Tensor input) => input.log_();
    }

    /// <summary>A root with two inputs (data and a mask), used through call(x, mask).</summary>
    internal sealed class MaskedNet : nn.Module<Tensor, Tensor, Tensor>
    {
        private readonly TorchSharp.Modules.Linear fc = nn.Linear(3, 2);

        public MaskedNet() : base(nameof(MaskedNet)) => RegisterComponents();

        public override Tensor forward(Tensor input, Tensor mask)
        {
            using var masked = input * mask;
            return fc.call(masked);
        }
    }

    /// <summary>Computes its output from a detached copy of the input: nothing can be differentiated with respect to the input.</summary>
    internal sealed class DetachingNet : nn.Module<Tensor, Tensor>
    {
        public DetachingNet() : base(nameof(DetachingNet)) { }

        public override Tensor forward(Tensor input)
        {
            using var d = input.detach();
            return d * 2;
        }
    }
}

namespace MlPitfalls.Runtime.Tests
{
    /// <summary>
    /// Keeps its hidden layers in a List: RegisterComponents() registers module fields but not lists, so these layers run in forward and
    /// get gradients, yet parameters() (and so the optimizer) never sees them. The spare list is never used.
    /// </summary>
    internal sealed class ListLayersNet : nn.Module<Tensor, Tensor>
    {
        private readonly List<Linear> hidden = new() { nn.Linear(4, 4), nn.Linear(4, 4) };
        private readonly Linear[] spare = { nn.Linear(4, 4) };
        private readonly Linear head = nn.Linear(4, 2);

        public ListLayersNet() : base(nameof(ListLayersNet)) => RegisterComponents();

        public override Tensor forward(Tensor input)
        {
            using var h0 = hidden[0].call(input);
            using var h1 = hidden[1].call(h0);
            return head.call(h1);
        }
    }
}

namespace MlPitfalls.Runtime.Tests
{
    /// <summary>Returns a learned constant per sample: the output has a gradient path to the parameter but none to the input.</summary>
    internal sealed class IgnoresInputNet : nn.Module<Tensor, Tensor>
    {
        private readonly TorchSharp.Modules.Parameter bias = nn.Parameter(ones(3));

        public IgnoresInputNet() : base(nameof(IgnoresInputNet)) => RegisterComponents();

        public override Tensor forward(Tensor input) => bias.expand(input.shape[0], 3) * 2;
    }
}

namespace MlPitfalls.Runtime.Tests
{
    /// <summary>The NaN is born in the root's own forward: a functional log() of its child's output.</summary>
    internal sealed class RootLogNet : nn.Module<Tensor, Tensor>
    {
        private readonly TorchSharp.Modules.Linear fc = nn.Linear(4, 4);

        public RootLogNet() : base(nameof(RootLogNet)) => RegisterComponents();

        public override Tensor forward(Tensor input)
        {
            using var h = fc.call(input);
            return h.log();
        }
    }
}
