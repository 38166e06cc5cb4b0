using System;
using System.Collections.Generic;
using System.Linq;
using MlPitfalls.Runtime.Internal;
using MlPitfalls.Runtime.NonFinite;
using TorchSharp;
using TorchSharp.Modules;
using Xunit;
using static TorchSharp.torch;

namespace MlPitfalls.Runtime.Tests
{
    /// <summary>
    /// OncePerPass must decide what PerModule decides: with values as they were when each module returned, not as a later
    /// in-place operation of the same pass left them, and with no pass left open after a forward() that threw.
    /// </summary>
    [Collection(TorchCollection.Name)]
    public class NonFiniteDeferredReviewTests
    {
        private static List<NonFiniteEvent> Events(Func<nn.Module<Tensor, Tensor>> build, Func<Tensor> input, NonFiniteSyncMode mode)
        {
            manual_seed(5);
            var model = build();
            using var guard = NonFiniteGuard.Attach(model, new NonFiniteGuardOptions { SyncMode = mode, OnNonFinite = NonFiniteAction.Record });
            using var scope = NewDisposeScope();
            model.call(input());
            return guard.Events.ToList();
        }

        private static void AssertSameAsPerModule(Func<nn.Module<Tensor, Tensor>> build, Func<Tensor> input, string origin, bool overwrittenLater = false)
        {
            var perModule = Events(build, input, NonFiniteSyncMode.PerModule);
            var deferred = Events(build, input, NonFiniteSyncMode.OncePerPass);
            var a = Assert.Single(perModule);
            Assert.Equal(origin, a.Name);
            var b = Assert.Single(deferred);
            Assert.Equal((a.Name, a.InputWasNonFinite, a.LastFiniteModule), (b.Name, b.InputWasNonFinite, b.LastFiniteModule));
            if (!overwrittenLater)
            {
                Assert.Equal(a.Message, b.Message);
                return;
            }
            // The origin and the verdict are the same; only the counts cannot be: the NaN was overwritten before the pass ended,
            // and the message says so instead of printing "0 NaN" without comment.
            Assert.True(a.NaNCount > 0);
            Assert.Equal((0L, 0L, 0L), (b.NaNCount, b.PosInfCount, b.NegInfCount));
            Assert.Contains($"first appeared in the output of module '{origin}'", b.Message);
            Assert.Contains("were non-finite when it returned and were overwritten in place later in the pass", b.Message);
            Assert.Contains("SyncMode = PerModule shows the counts as they were", b.Message);
        }

        private static Tensor MixedSigns() => cat(new[] { full(new long[] { 2, 4 }, 50f), full(new long[] { 2, 4 }, -50f) });

        [Fact]
        public void An_in_place_residual_after_the_origin_does_not_make_the_origin_look_like_a_victim()
        {
            // y = x * 1; h = bad(y); y += h (in place); head(y). bad's input was finite when bad returned; at the end of the pass
            // it is NaN, because of bad's own output.
            AssertSameAsPerModule(() => new InPlaceResidualNet(), MixedSigns, "bad");
        }

        [Fact]
        public void An_output_repaired_in_place_later_in_the_pass_is_still_reported()
        {
            // h = bad(x) holds NaN when bad returns (PerModule reports it); the parent then calls h.nan_to_num_().
            AssertSameAsPerModule(() => new RepairedNet(), MixedSigns, "bad", overwrittenLater: true);
        }

        [Fact]
        public void A_module_reusing_its_output_buffer_is_reported_at_the_call_that_made_NaN()
        {
            // The same buffer object is returned by each call: NaN after the first call, overwritten with finite values by the second.
            AssertSameAsPerModule(() => new BufferReuseNet(), () => -ones(2, 4), "cell", overwrittenLater: true);
        }

        [Fact]
        public void A_large_finite_output_later_multiplied_in_place_by_NaN_is_not_named_the_origin()
        {
            // big's output (3e38 each) is finite but its sum overflows; bad's NaN is multiplied into it in place afterwards.
            AssertSameAsPerModule(() => new OverflowThenInPlaceNet(), () => ones(2, 4), "bad");
        }

        [Fact]
        public void A_shared_module_called_in_a_loop_is_reported_at_the_call_that_overflowed()
        {
            AssertSameAsPerModule(() => new LoopNet(), () => ones(2, 4), "cell");
        }

        [Theory]
        [InlineData(ScalarType.Float16, 60000.0)]
        [InlineData(ScalarType.BFloat16, 3e38)]
        [InlineData(ScalarType.Float32, 3e38)]
        [InlineData(ScalarType.Float64, 1e308)]
        public void Large_finite_values_are_not_reported_in_any_floating_dtype(ScalarType dtype, double value)
        {
            var model = nn.Sequential(("id", new IdentityLayer()));
            using var guard = NonFiniteGuard.Attach(model);
            using var scope = NewDisposeScope();
            var x = full(new long[] { 64 }, value, dtype: dtype);
            Assert.True(x.isfinite().all().item<bool>());
            model.call(x);
            guard.Check(x * 0, "loss");
            Assert.Empty(guard.Events);
        }

        [Theory]
        [InlineData(ScalarType.Float32)]
        [InlineData(ScalarType.Float64)]
        [InlineData(ScalarType.Float16)]
        [InlineData(ScalarType.BFloat16)]
        [InlineData(ScalarType.ComplexFloat32)]
        public void A_witness_is_finite_exactly_when_every_element_is(ScalarType dtype)
        {
            using var scope = NewDisposeScope();
            var big = dtype switch { ScalarType.Float16 => 60000.0, ScalarType.Float64 => 1e308, _ => 3e38 };
            bool Finite(params double[] values)
            {
                var t = tensor(values).to(dtype);
                using var w = Internal.Finite.Witness(t)!;
                var result = Internal.Finite.NonFiniteWitnesses(new List<Tensor> { w }) is null;
                Assert.Equal(t.isfinite().all().item<bool>(), result);
                return result;
            }
            Assert.True(Finite(big, big, big, -big, 1));          // a plain sum overflows (or cancels to NaN): still finite
            Assert.False(Finite(5, double.NaN, -5));              // NaN beside larger and smaller finite values
            Assert.False(Finite(double.NaN));
            Assert.False(Finite(1, double.PositiveInfinity));
            Assert.False(Finite(double.NegativeInfinity, 1));
            Assert.Null(Internal.Finite.Witness(zeros(0, 3, dtype: dtype)));
            Assert.Null(Internal.Finite.Witness(ones(3, dtype: ScalarType.Int64)));
        }

        [Fact]
        public void Integer_and_bool_outputs_cost_no_read_and_are_not_reported()
        {
            var model = nn.Sequential(("id", new IdentityLayer()));
            using var guard = NonFiniteGuard.Attach(model);
            using var scope = NewDisposeScope();
            long before = Finite.HostReads;
            model.call(arange(10));
            model.call(ones(3, dtype: ScalarType.Bool));
            Assert.Equal(0, Finite.HostReads - before);
            Assert.Empty(guard.Events);
        }

        private static (nn.Module<Tensor, Tensor> Model, Linear Fc, ThrowingLayer Thrower, LogLayer Bad) ThrowingModel()
        {
            var thrower = new ThrowingLayer();
            var fc = nn.Linear(4, 4);
            using (no_grad())
            {
                fc.weight!.fill_(0.1f);
                fc.bias!.fill_(0.1f);
            }
            var bad = new LogLayer();
            return (nn.Sequential(("fc", fc), ("bad", bad), ("thrower", thrower)), fc, thrower, bad);
        }

        [Theory]
        [InlineData(false)]
        [InlineData(true)]
        public void A_NaN_in_a_pass_whose_forward_threw_is_reported_for_that_step_not_dropped(bool manualSteps)
        {
            // PerModule reports 'bad' before 'thrower' runs. A deferred pass never reaches the root's post-hook; what it logged is
            // read at the next entry into the guard (the next pass of the root, or BeginStep), for the step it belongs to.
            var (model, _, thrower, _) = ThrowingModel();
            using var guard = NonFiniteGuard.Attach(model, new NonFiniteGuardOptions { OnNonFinite = NonFiniteAction.Record });
            using var scope = NewDisposeScope();
            thrower.Throw = true;
            if (manualSteps) guard.BeginStep();
            Assert.Throws<InvalidOperationException>(() => model.call(-ones(2, 4) * 10)); // fc: -3.9, log: NaN
            thrower.Throw = false;
            if (manualSteps) guard.BeginStep();
            model.call(ones(2, 4));
            var e = Assert.Single(guard.Events);
            Assert.Equal(("bad", 1L, false), (e.Name, e.Step, e.InputWasNonFinite));
            Assert.Equal(2, guard.Step);
        }

        [Fact]
        public void A_root_called_inside_its_own_forward_does_not_drop_what_the_outer_pass_logged()
        {
            AssertSameAsPerModule(() => new RecursiveNet(), () => -ones(2, 4), "bad");
        }

        [Fact]
        public void Many_finite_steps_leave_no_tensor_behind()
        {
            manual_seed(3);
            var model = new InPlaceResidualNet();
            using var guard = NonFiniteGuard.Attach(model);
            using (NewDisposeScope()) model.call(ones(2, 4));
            long live = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
            for (int k = 0; k < 50; k++)
            {
                using var scope = NewDisposeScope();
                var loss = model.call(rand(2, 4) + 1).sum();
                guard.Check(loss);
                guard.Backward(loss);
            }
            Assert.Equal(live, DisposeScopeManager.Statistics.ThreadTotalLiveCount);
            Assert.Empty(guard.Events);
        }

        private sealed class InPlaceResidualNet : nn.Module<Tensor, Tensor>
        {
            private readonly LogLayer bad = new();
            private readonly Linear head = nn.Linear(4, 2);

            public InPlaceResidualNet() : base(nameof(InPlaceResidualNet)) => RegisterComponents();

            public override Tensor forward(Tensor x)
            {
                var y = x * 1;
                var h = bad.call(y);
                y.add_(h);
                return head.call(y);
            }
        }

        private sealed class RepairedNet : nn.Module<Tensor, Tensor>
        {
            private readonly LogLayer bad = new();
            private readonly Linear head = nn.Linear(4, 2);

            public RepairedNet() : base(nameof(RepairedNet)) => RegisterComponents();

            public override Tensor forward(Tensor x)
            {
                var h = bad.call(x);
                h.nan_to_num_();
                return head.call(h);
            }
        }

        /// <summary>Writes log(input) into one buffer it returns from every call.</summary>
        private sealed class BufferLogLayer : nn.Module<Tensor, Tensor>
        {
            private Tensor? _buffer;

            public BufferLogLayer() : base(nameof(BufferLogLayer)) { }

            public override Tensor forward(Tensor input)
            {
                _buffer ??= zeros_like(input).DetachFromDisposeScope();
                using var log = input.log();
                _buffer.copy_(log);
                return _buffer;
            }
        }

        private sealed class BufferReuseNet : nn.Module<Tensor, Tensor>
        {
            private readonly BufferLogLayer cell = new();
            private readonly Linear head = nn.Linear(4, 2);

            public BufferReuseNet() : base(nameof(BufferReuseNet)) => RegisterComponents();

            public override Tensor forward(Tensor x)
            {
                var first = cell.call(x);      // log of negatives: NaN
                var second = cell.call(x.abs()); // overwrites the same buffer with finite values (log 1 = 0)
                return head.call(second);
            }
        }

        private sealed class OverflowThenInPlaceNet : nn.Module<Tensor, Tensor>
        {
            private readonly ScaleLayer big = new(3e38f);
            private readonly LogLayer bad = new();

            public OverflowThenInPlaceNet() : base(nameof(OverflowThenInPlaceNet)) => RegisterComponents();

            public override Tensor forward(Tensor x)
            {
                var a = big.call(x);
                var c = bad.call(x.neg());
                a.mul_(c);
                return a;
            }
        }

        /// <summary>Calls itself once on the (repaired) output of its first pass: a nested pass of the root.</summary>
        private sealed class RecursiveNet : nn.Module<Tensor, Tensor>
        {
            private readonly LogLayer bad = new();
            private bool _inner;

            public RecursiveNet() : base(nameof(RecursiveNet)) => RegisterComponents();

            public override Tensor forward(Tensor x)
            {
                var h = bad.call(x); // NaN on the outer pass (x < 0)
                if (_inner) return h;
                _inner = true;
                try
                {
                    return call(h.nan_to_num().abs() + 1);
                }
                finally
                {
                    _inner = false;
                }
            }
        }

        private sealed class LoopNet : nn.Module<Tensor, Tensor>
        {
            private readonly ScaleLayer cell = new(1e13f);
            private readonly Linear head = nn.Linear(4, 2);

            public LoopNet() : base(nameof(LoopNet)) => RegisterComponents();

            public override Tensor forward(Tensor x)
            {
                var h = x;
                for (int t = 0; t < 4; t++) h = cell.call(h); // 1e13, 1e26, Inf at the third call
                return head.call(h);
            }
        }
    }
}
