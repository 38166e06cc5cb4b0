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
    /// How often the guard reads values back from the device (each read is a host synchronisation on CUDA), counted on the CPU
    /// through <see cref="Finite.HostReads"/>, and that checking once per pass reports exactly what checking per module does.
    /// </summary>
    [Collection(TorchCollection.Name)]
    public class NonFiniteSyncTests
    {
        private static NonFiniteGuardOptions Options(NonFiniteSyncMode mode, NonFiniteAction action = NonFiniteAction.Throw, int checkEvery = 1) =>
            new() { SyncMode = mode, OnNonFinite = action, CheckEvery = checkEvery };

        /// <summary>
        /// 11 modules, the root included: 9 leaves and two Sequentials (the root and 'block'), which return their last child's
        /// output and so add no check of their own. With <paramref name="log"/>, a LogLayer at the end makes NaN from the
        /// negative outputs of 'head'.
        /// </summary>
        private static Sequential DeepModel(bool log = false)
        {
            var layers = new List<(string, nn.Module<Tensor, Tensor>)>
            {
                ("fc1", nn.Linear(4, 16)), ("act1", nn.Tanh()),
                ("block", nn.Sequential(("fc2", nn.Linear(16, 16)), ("act2", nn.ReLU()), ("fc3", nn.Linear(16, 16)), ("act3", nn.Tanh()))),
                ("fc4", nn.Linear(16, 16)), ("act4", nn.ReLU()),
                ("head", nn.Linear(16, 3)),
            };
            if (log) layers.Add(("log", new LogLayer()));
            return nn.Sequential(layers.ToArray());
        }

        private static long ReadsDuring(Action action)
        {
            long before = Finite.HostReads;
            action();
            return Finite.HostReads - before;
        }

        [Fact]
        public void A_checked_forward_pass_reads_back_once_and_an_unchecked_one_never()
        {
            manual_seed(1);
            var model = DeepModel();
            using var guard = NonFiniteGuard.Attach(model, Options(NonFiniteSyncMode.OncePerPass, checkEvery: 2));
            using var scope = NewDisposeScope();
            var x = randn(8, 4);

            Assert.Equal(1, ReadsDuring(() => model.call(x)));  // step 1: checked
            Assert.Equal(0, ReadsDuring(() => model.call(x)));  // step 2: not checked
            Assert.Equal(1, ReadsDuring(() => model.call(x)));  // step 3: checked
            Assert.Empty(guard.Events);
            Assert.Equal(3, guard.Step);
            Assert.True(guard.Coverage().IsComplete);
        }

        [Fact]
        public void Checked_per_module_the_same_pass_reads_back_once_per_checked_tensor()
        {
            // The counter counts what the guard really does: the model input and the 9 leaf outputs (the two Sequentials return
            // a tensor already checked).
            manual_seed(1);
            var model = DeepModel();
            using var guard = NonFiniteGuard.Attach(model, Options(NonFiniteSyncMode.PerModule));
            using var scope = NewDisposeScope();
            Assert.Equal(10, ReadsDuring(() => model.call(randn(8, 4))));
            Assert.Empty(guard.Events);
        }

        [Fact]
        public void A_training_step_reads_back_once_per_check_point()
        {
            // Forward pass, loss and all 10 parameter gradients: one read each, where it used to be one per module output and
            // one per gradient.
            manual_seed(2);
            var model = DeepModel();
            using var guard = NonFiniteGuard.Attach(model);
            using var scope = NewDisposeScope();
            var x = randn(8, 4);
            var y = randint(0, 3, 8);
            Tensor loss = null!;
            Assert.Equal(1, ReadsDuring(() => loss = nn.functional.cross_entropy(model.call(x), y)));
            Assert.Equal(1, ReadsDuring(() => guard.Check(loss)));
            Assert.Equal(10, model.parameters().Count());
            Assert.Equal(1, ReadsDuring(() => guard.Backward(loss)));
            Assert.Equal(1, ReadsDuring(() => model.AssertFiniteGradients()));
            Assert.Empty(guard.Events);
        }

        [Fact]
        public void Once_per_step_a_whole_training_step_reads_back_once()
        {
            // Forward pass, loss check and all 10 gradients: one read for the step, at Backward (before optimizer.step()).
            manual_seed(2);
            var model = DeepModel();
            using var guard = NonFiniteGuard.Attach(model, Options(NonFiniteSyncMode.OncePerStep, checkEvery: 2));
            using var scope = NewDisposeScope();
            var x = randn(8, 4);
            var y = randint(0, 3, 8);
            long Step() => ReadsDuring(() =>
            {
                var loss = nn.functional.cross_entropy(model.call(x), y);
                guard.Check(loss);
                guard.Backward(loss);
            });

            Assert.Equal(1, Step()); // step 1: checked
            Assert.Equal(0, Step()); // step 2: not checked
            Assert.Equal(1, Step()); // step 3: checked
            Assert.Empty(guard.Events);
            Assert.Equal(3, guard.Step);
        }

        /// <summary>One training step of <paramref name="model"/> in <paramref name="mode"/>: the exception it raises, and from where.</summary>
        private static (NonFiniteValueException? Caught, string Where) TrainingStep(NonFiniteSyncMode mode, nn.Module<Tensor, Tensor> model, Tensor x, Func<Tensor, Tensor> lossOf)
        {
            using var guard = NonFiniteGuard.Attach(model, Options(mode));
            using var scope = NewDisposeScope();
            Tensor output;
            try { output = model.call(x); } catch (NonFiniteValueException e) { return (e, "forward"); }
            var loss = lossOf(output);
            try { guard.Check(loss); } catch (NonFiniteValueException e) { return (e, "check"); }
            try { guard.Backward(loss); } catch (NonFiniteValueException e) { return (e, "backward"); }
            return (null, "none");
        }

        [Theory]
        [InlineData("forward")]
        [InlineData("loss")]
        [InlineData("gradients")]
        public void Once_per_step_reports_what_the_other_modes_report_at_the_end_of_the_step(string where)
        {
            // A NaN made in the forward pass (a log of negative values), in the loss only (a log of a negative mean), or in the
            // backward pass only (sqrt at 0: finite value, infinite derivative).
            (nn.Module<Tensor, Tensor> Model, Tensor X, Func<Tensor, Tensor> Loss) Build()
            {
                manual_seed(4);
                return where switch
                {
                    "forward" => (DeepModel(log: true), randn(8, 4), o => o.mean()),
                    "loss" => (DeepModel(), randn(8, 4), o => (o.abs().mean() * -1).log()),
                    _ => (DeepModel(), randn(8, 4), o => (o * 0).sqrt().sum()),
                };
            }

            var (perPassModel, x1, loss1) = Build();
            var perPass = TrainingStep(NonFiniteSyncMode.OncePerPass, perPassModel, x1, loss1);
            var (perStepModel, x2, loss2) = Build();
            var perStep = TrainingStep(NonFiniteSyncMode.OncePerStep, perStepModel, x2, loss2);

            Assert.NotNull(perPass.Caught);
            Assert.NotNull(perStep.Caught);
            Assert.Equal(where switch { "forward" => "forward", "loss" => "check", _ => "backward" }, perPass.Where);
            Assert.Equal("backward", perStep.Where); // the step's one read, before optimizer.step() would run
            Assert.Equal(perPass.Caught!.Event.Kind, perStep.Caught!.Event.Kind);
            Assert.Equal(perPass.Caught.Event.Name, perStep.Caught.Event.Name);
            Assert.Equal(perPass.Caught.Message, perStep.Caught.Message);
        }

        [Fact]
        public void Once_per_step_a_step_without_a_gradient_check_is_read_at_the_next_pass_or_at_flush()
        {
            manual_seed(3);
            var model = DeepModel(log: true);
            using var guard = NonFiniteGuard.Attach(model, Options(NonFiniteSyncMode.OncePerStep, NonFiniteAction.Record));
            using var scope = NewDisposeScope();
            Assert.Equal(0, ReadsDuring(() => model.call(randn(8, 4)))); // held on the device
            Assert.Empty(guard.Events);
            model.call(randn(8, 4)); // the next pass reads the previous one first
            var first = Assert.Single(guard.Events);
            Assert.Equal(("log", 1L), (first.Name, first.Step));
            guard.Flush();
            Assert.Equal(2, guard.Events.Count);
            Assert.Equal(("log", 2L), (guard.Events[1].Name, guard.Events[1].Step));
            Assert.Equal(0, ReadsDuring(guard.Flush)); // nothing pending
        }

        [Fact]
        public void A_NaN_trip_names_the_origin_with_the_per_module_message()
        {
            NonFiniteValueException Run(NonFiniteSyncMode mode, out long reads)
            {
                manual_seed(3);
                var model = DeepModel(log: true);
                using var guard = NonFiniteGuard.Attach(model, Options(mode));
                using var scope = NewDisposeScope();
                var x = randn(8, 4);
                NonFiniteValueException? caught = null;
                reads = ReadsDuring(() => caught = Assert.Throws<NonFiniteValueException>(() => model.call(x)));
                return caught!;
            }

            var deferred = Run(NonFiniteSyncMode.OncePerPass, out var deferredReads);
            var perModule = Run(NonFiniteSyncMode.PerModule, out _);
            Assert.Equal("log", deferred.Event.Name);
            Assert.Equal("head", deferred.Event.LastFiniteModule);
            Assert.Contains("first appeared in the output of module 'log' (LogLayer) at step 1", deferred.Message);
            Assert.Equal(perModule.Message, deferred.Message);
            // The failure path reads more (the per-output flags, the counts, the input and the parameters), only when tripped.
            Assert.InRange(deferredReads, 3, 20);
        }

        /// <summary>The scenarios of the guard's message tests: a model, an input and how the model is called.</summary>
        public static TheoryData<string> Scenarios() => new()
        {
            "finite", "log layer", "NaN and -Inf counts", "NaN in the data", "NaN in a two-input root's mask", "hidden child", "two-input module",
            "corrupted weights", "container corrupts its child's output in place", "same, inside a Sequential", "layer corrupts its input in place",
            "root's own forward", "tuple output (GRU)", "uninspectable output", "large finite values (the sum overflows)",
        };

        private static (nn.Module Model, Func<Tensor> Forward) Build(string scenario)
        {
            Tensor MixedSigns() => cat(new[] { full(new long[] { 2, 4 }, 50f), full(new long[] { 2, 4 }, -50f) });
            nn.Module<Tensor, Tensor> m;
            switch (scenario)
            {
                case "finite": m = DeepModel(); return (m, () => m.call(randn(8, 4)));
                case "log layer":
                    m = nn.Sequential(("encoder", nn.Sequential(("fc", nn.Linear(4, 8)), ("act", nn.ReLU()), ("bad", new LogLayer()))), ("head", nn.Linear(8, 2)));
                    return (m, () => m.call(full(new long[] { 5, 4 }, -100f)));
                case "NaN and -Inf counts": m = nn.Sequential(("bad", new LogLayer())); return (m, () => m.call(tensor(new float[] { -1f, 0f, 1f, -2f })));
                case "NaN in the data":
                    m = DeepModel();
                    return (m, () =>
                    {
                        var x = randn(8, 4);
                        x[3, 1] = tensor(float.NaN);
                        return m.call(x);
                    });
                case "NaN in a two-input root's mask":
                {
                    var masked = new MaskedNet();
                    return (masked, () =>
                    {
                        var mask = ones(4, 3);
                        mask[1, 2] = tensor(float.NegativeInfinity);
                        return masked.call(ones(4, 3), mask);
                    });
                }
                case "hidden child": m = new HiddenChildNet(); return (m, () => m.call(MixedSigns()));
                case "two-input module": m = new MixedSignatureNet(); return (m, () => m.call(full(new long[] { 2, 3 }, -1f)));
                case "corrupted weights":
                    m = nn.Sequential(("fc", nn.Linear(3, 2)), ("out", nn.Linear(2, 2)));
                    using (no_grad()) m.parameters().First()[0, 0] = tensor(float.NaN);
                    return (m, () => m.call(ones(4, 3)));
                case "container corrupts its child's output in place": m = new InPlaceLogBlock(); return (m, () => m.call(MixedSigns()));
                case "same, inside a Sequential": m = nn.Sequential(("block", new InPlaceLogBlock()), ("head", nn.Linear(4, 2))); return (m, () => m.call(MixedSigns()));
                case "layer corrupts its input in place": m = nn.Sequential(("fc", nn.Linear(4, 8)), ("bad", new InPlaceLogLayer())); return (m, () => m.call(MixedSigns()));
                case "root's own forward": m = new RootLogNet(); return (m, () => m.call(MixedSigns()));
                case "tuple output (GRU)":
                {
                    var gru = new GruNet();
                    using (no_grad()) gru.rnn.parameters().First().fill_(float.NaN);
                    return (gru, () => gru.call(randn(2, 3, 4)));
                }
                case "uninspectable output": m = new DictionaryNet(); return (m, () => m.call(-ones(2, 4) * 10));
                case "large finite values (the sum overflows)": m = nn.Sequential(("big", new ScaleLayer(3e38f)), ("half", new ScaleLayer(0.5f))); return (m, () => m.call(ones(4, 4)));
                default: throw new ArgumentException(scenario);
            }
        }

        private static List<NonFiniteEvent> Events(string scenario, NonFiniteSyncMode mode)
        {
            manual_seed(11);
            var (model, forward) = Build(scenario);
            using var guard = NonFiniteGuard.Attach(model, Options(mode, NonFiniteAction.Record));
            using var scope = NewDisposeScope();
            for (int pass = 0; pass < 2; pass++)
            {
                var y = forward();
                // A loss of this pass (y * 0: finite for finite outputs, even huge ones). A Sequential whose last child returns its
                // input object disposes that output itself (TorchSharp), so there is no loss to check then.
                if (!y.IsInvalid) guard.Check((y * 0).sum(), "loss");
            }
            return guard.Events.ToList();
        }

        [Theory]
        [MemberData(nameof(Scenarios))]
        public void Checking_once_per_pass_reports_what_checking_per_module_reports(string scenario)
        {
            var perModule = Events(scenario, NonFiniteSyncMode.PerModule);
            var deferred = Events(scenario, NonFiniteSyncMode.OncePerPass);

            // Not vacuous: every scenario but the finite ones reports one origin per pass (the loss of that pass is no second event).
            bool finite = scenario is "finite" || scenario.StartsWith("large finite", StringComparison.Ordinal);
            Assert.Equal(finite ? 0 : 2, perModule.Count);
            Assert.Equal(perModule.Count, deferred.Count);
            for (int k = 0; k < perModule.Count; k++)
            {
                var (a, b) = (perModule[k], deferred[k]);
                Assert.Equal(a.Message, b.Message);
                Assert.Equal((a.Kind, a.Step, a.Name, a.TypeName, a.DType, a.NaNCount, a.PosInfCount, a.NegInfCount, a.InputWasNonFinite, a.LastFiniteModule),
                    (b.Kind, b.Step, b.Name, b.TypeName, b.DType, b.NaNCount, b.PosInfCount, b.NegInfCount, b.InputWasNonFinite, b.LastFiniteModule));
                Assert.Equal(a.Shape, b.Shape);
                Assert.Equal(a.NonFiniteParameters, b.NonFiniteParameters);
            }
        }

        [Fact]
        public void A_deferred_throw_comes_after_the_whole_pass_ran()
        {
            manual_seed(1);
            var m = nn.Sequential(("fc", nn.Linear(4, 4)), ("log", new LogLayer()), ("head", nn.Linear(4, 2)));
            using var guard = NonFiniteGuard.Attach(m);
            var ex = Assert.Throws<NonFiniteValueException>(() => m.call(-ones(8, 4) * 10));
            Assert.Equal("log", ex.Event.Name);
            var coverage = guard.Coverage();
            Assert.True(coverage.IsComplete); // 'head' ran on the NaN before the root returned and the guard read the pass back
            Assert.Contains("head", coverage.Observed);
        }

        [Fact]
        public void A_module_called_outside_a_pass_of_the_root_is_checked_at_once()
        {
            var bad = new LogLayer();
            var model = nn.Sequential(("fc", nn.Linear(4, 4)), ("bad", bad));
            using var guard = NonFiniteGuard.Attach(model);
            using var scope = NewDisposeScope();
            var ex = Assert.Throws<NonFiniteValueException>(() => bad.call(-ones(2, 4)));
            Assert.Equal("bad", ex.Event.Name);
            Assert.Contains("first appeared in the output of module 'bad' (LogLayer)", ex.Message);
        }

        [Fact]
        public void A_pass_whose_forward_throws_leaves_nothing_behind_and_the_next_pass_is_checked()
        {
            var thrower = new ThrowingLayer();
            var fc = nn.Linear(4, 4);
            using (no_grad())
            {
                fc.weight!.fill_(0.1f);
                fc.bias!.fill_(0.1f);
            }
            var model = nn.Sequential(("fc", fc), ("thrower", thrower), ("bad", new LogLayer()));
            var x = -ones(2, 4) * 10; // fc output -3.9: log is NaN (ones: 0.5, finite)
            var guard = NonFiniteGuard.Attach(model, Options(NonFiniteSyncMode.OncePerPass, NonFiniteAction.Record));
            model.call(ones(2, 4)).Dispose(); // warm up
            long live = DisposeScopeManager.Statistics.ThreadTotalLiveCount;

            thrower.Throw = true;
            // Step 2: fc was logged and the pass never ended. The scope takes fc's own output (Sequential never got to dispose it);
            // what the guard retained is outside any scope and must be released by the guard itself.
            using (NewDisposeScope()) Assert.Throws<InvalidOperationException>(() => model.call(x));
            Assert.Empty(guard.Events);
            thrower.Throw = false;
            model.call(x).Dispose();
            var e = Assert.Single(guard.Events);
            Assert.Equal("bad", e.Name);
            Assert.Equal(3, e.Step);
            guard.Dispose();
            Assert.Equal(live, DisposeScopeManager.Statistics.ThreadTotalLiveCount);
            x.Dispose();
        }

        [Fact]
        public void Retained_values_survive_a_dispose_scope_inside_forward()
        {
            // TorchSharp's own examples open a dispose scope in forward(): what the guard keeps for the end of the pass must not be in it.
            manual_seed(12);
            var model = new ScopedForwardNet();
            using var guard = NonFiniteGuard.Attach(model);
            using var scope = NewDisposeScope();
            var ex = Assert.Throws<NonFiniteValueException>(() => model.call(MixedSignInput()));
            Assert.Equal("bad", ex.Event.Name);
            Assert.Contains("shape [4, 4], Float32", ex.Message);
        }

        private static Tensor MixedSignInput() => cat(new[] { full(new long[] { 2, 4 }, 50f), full(new long[] { 2, 4 }, -50f) });

        /// <summary>Runs its children inside a dispose scope of its own, keeping only the result.</summary>
        private sealed class ScopedForwardNet : nn.Module<Tensor, Tensor>
        {
            private readonly Linear fc = nn.Linear(4, 4);
            private readonly LogLayer bad = new();
            private readonly Linear head = nn.Linear(4, 2);

            public ScopedForwardNet() : base(nameof(ScopedForwardNet)) => RegisterComponents();

            public override Tensor forward(Tensor input)
            {
                using var scope = NewDisposeScope();
                return head.call(bad.call(fc.call(input))).MoveToOuterDisposeScope();
            }
        }

        private sealed class GruNet : nn.Module<Tensor, Tensor>
        {
            public readonly GRU rnn = nn.GRU(4, 4, batchFirst: true);
            private readonly Linear head = nn.Linear(4, 2);

            public GruNet() : base(nameof(GruNet)) => RegisterComponents();

            public override Tensor forward(Tensor x)
            {
                var (output, _) = rnn.call(x);
                return head.call(output);
            }
        }

        private sealed class DictionaryOutput : nn.Module<Tensor, Dictionary<string, Tensor>>
        {
            public DictionaryOutput() : base(nameof(DictionaryOutput)) { }

            public override Dictionary<string, Tensor> forward(Tensor x) => new() { ["log"] = x.log() };
        }

        private sealed class DictionaryNet : nn.Module<Tensor, Tensor>
        {
            private readonly Linear embed = nn.Linear(4, 4);
            private readonly DictionaryOutput named = new();
            private readonly Linear head = nn.Linear(4, 2);

            public DictionaryNet() : base(nameof(DictionaryNet)) => RegisterComponents();

            public override Tensor forward(Tensor x) => head.call(named.call(embed.call(x))["log"]);
        }
    }
}
