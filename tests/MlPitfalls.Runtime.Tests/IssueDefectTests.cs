using System;
using System.Linq;
using MlPitfalls.Runtime.Gradients;
using MlPitfalls.Runtime.NonFinite;
using MlPitfalls.Runtime.Sanity;
using MlPitfalls.Runtime.Shapes;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace MlPitfalls.Runtime.Tests
{
    /// <summary>Defects found by using the library on realistic models, each reproduced as reported.</summary>
    [Collection(TorchCollection.Name)]
    public class IssueDefectTests
    {
        private static NonFiniteGuardOptions PerModule => new() { SyncMode = NonFiniteSyncMode.PerModule };

        // Checked per module, the guard throws inside the pass: what ran after the origin is "not reached". (Deferred, the whole
        // pass runs before the guard throws: NonFiniteSyncTests.A_deferred_throw_comes_after_the_whole_pass_ran.)
        [Fact]
        public void Coverage_after_a_throw_on_the_first_pass_describes_what_ran()
        {
            manual_seed(1);
            var m = nn.Sequential(("fc", nn.Linear(4, 4)), ("log", new LogLayer()), ("head", nn.Linear(4, 2)));
            using var guard = NonFiniteGuard.Attach(m, PerModule);
            Assert.Throws<NonFiniteValueException>(() => m.call(-ones(8, 4) * 10));

            var coverage = guard.Coverage();
            var text = coverage.ToString();
            Assert.Contains(coverage.Observed, o => o.Contains("fc"));
            Assert.Contains(coverage.Observed, o => o.Contains("log"));
            Assert.DoesNotContain("never invoked through call()", text);
            Assert.DoesNotContain("never observed either", text);
            var head = Assert.Single(coverage.NeverObserved);
            Assert.StartsWith("head", head.Path);
            Assert.Contains("'log'", head.Reason);
            Assert.Contains("stopped", head.Reason);
        }

        [Fact]
        public void Coverage_after_a_non_finite_model_input_on_the_first_pass_says_the_pass_stopped_there()
        {
            var m = nn.Sequential(("fc", nn.Linear(4, 4)), ("head", nn.Linear(4, 2)));
            using var guard = NonFiniteGuard.Attach(m, PerModule);
            Assert.Throws<NonFiniteValueException>(() => m.call(full(8, 4, float.NaN)));

            var coverage = guard.Coverage();
            Assert.Equal(2, coverage.NeverObserved.Count);
            Assert.All(coverage.NeverObserved, u => Assert.Contains("stopped the only forward pass so far (step 1) at the non-finite model input", u.Reason));
        }

        /// <summary>fc2.call(fc1.call(x).relu().detach()): fc1 never gets a gradient.</summary>
        private sealed class DetachedPathNet : nn.Module<Tensor, Tensor>
        {
            private readonly TorchSharp.Modules.Linear fc1 = nn.Linear(4, 16);
            private readonly TorchSharp.Modules.Linear fc2 = nn.Linear(16, 3);

            public DetachedPathNet() : base(nameof(DetachedPathNet)) { RegisterComponents(); }

            public override Tensor forward(Tensor x) => fc2.call(fc1.call(x).relu().detach());
        }

        [Theory]
        [InlineData(1)]
        [InlineData(2)]
        [InlineData(3)]
        public void Overfit_one_batch_names_parameters_that_never_received_a_gradient_first(int seed)
        {
            manual_seed(seed);
            var model = new DetachedPathNet();
            var optimizer = optim.SGD(model.parameters(), 0.01);
            var x = randn(32, 4);
            var y = randint(0, 3, 32);
            var result = SanityChecks.OverfitOneBatch(model, optimizer, x, y, (o, t) => nn.functional.cross_entropy(o, t), steps: 20);

            Assert.False(result.IsOk);
            Assert.Equal(new[] { "fc1.bias", "fc1.weight" }, result.ParametersWithoutGradient.OrderBy(n => n, StringComparer.Ordinal));
            var firstAdvice = result.Message.Split("What to check:")[1].Trim();
            Assert.StartsWith("2 parameters never received a gradient in any of the 20 steps: fc1.weight, fc1.bias", firstAdvice);
        }

        [Fact]
        public void Record_mode_records_one_event_per_bad_pass_also_when_the_loss_is_checked()
        {
            manual_seed(4);
            var model = nn.Sequential(("fc", nn.Linear(4, 3)));
            using var guard = NonFiniteGuard.Attach(model, new NonFiniteGuardOptions { OnNonFinite = NonFiniteAction.Record });
            var x = randn(8, 4);
            x[0, 0] = tensor(float.NaN);
            var loss = nn.functional.cross_entropy(model.call(x), randint(0, 3, 8));
            guard.Check(loss);

            var e = Assert.Single(guard.Events);
            Assert.Equal(NonFiniteKind.ModelInput, e.Kind);

            // The next, clean pass is checked again.
            var clean = nn.functional.cross_entropy(model.call(randn(8, 4)), randint(0, 3, 8));
            guard.Check(clean / 0.0);
            Assert.Equal(2, guard.Events.Count);
        }

        /// <summary>fc1 is used through sqrt of negative values (NaN gradients); unused is never used (no gradient).</summary>
        private sealed class BrokenGradientsNet : nn.Module<Tensor, Tensor>
        {
            private readonly TorchSharp.Modules.Linear fc1 = nn.Linear(4, 4);
            private readonly TorchSharp.Modules.Linear unused = nn.Linear(4, 4);
            private readonly TorchSharp.Modules.Linear head = nn.Linear(4, 2);

            public BrokenGradientsNet() : base(nameof(BrokenGradientsNet)) { RegisterComponents(); }

            public override Tensor forward(Tensor x) => head.call(x) + (fc1.call(x) * 0 - 1).sqrt().nan_to_num().sum() * 0;
        }

        [Fact]
        public void Per_layer_norms_say_NaN_or_none_instead_of_zero()
        {
            manual_seed(5);
            var model = new BrokenGradientsNet();
            model.call(randn(8, 4)).sum().backward();
            var report = GradientFlow.Analyze(model);
            var text = report.ToString();

            Assert.DoesNotContain("0e+0", text);
            Assert.Contains(report.Layers, l => l.Layer == "fc1" && l.NormText == "NaN/Inf" && double.IsNaN(l.Norm));
            Assert.Contains(report.Layers, l => l.Layer == "unused" && l.NormText == "none (no gradient)");
            Assert.Contains(report.Layers, l => l.Layer == "head" && l.Norm > 0 && char.IsDigit(l.NormText[0]));
        }

        [Theory]
        [InlineData(40.0)]
        [InlineData(1e6)]
        [InlineData(0.01)]
        public void Initial_loss_explanation_stays_meaningful_for_any_loss(double loss)
        {
            var result = SanityChecks.CheckInitialLoss(loss, classes: 10);
            Assert.False(result.IsOk);
            Assert.DoesNotContain("classes).", result.Message);
            Assert.Matches(@"mean probability of exp\(-loss\) = [0-9.e+-]+, where a uniform guess gives 1/10 = 0\.1", result.Message);
            Assert.DoesNotMatch(@"[0-9]{8,}", result.Message);
        }

        [Fact]
        public void A_negative_initial_loss_is_explained_as_impossible_for_a_cross_entropy()
        {
            var result = SanityChecks.CheckInitialLoss(-3.0, classes: 10);
            Assert.False(result.IsOk);
            Assert.Contains("negative, which a cross-entropy of probabilities can never be", result.Message);
        }

        [Fact]
        public void Messages_read_as_sentences()
        {
            var dims = new ShapeScope().Bind("batch", 8);
            var shape = Assert.Throws<ShapeContractException>(() => zeros(5, 4).ExpectShape("batch 4", dims));
            Assert.DoesNotContain("bound by bound", shape.Message);
            Assert.Contains("(bound explicitly with ShapeScope.Bind at ", shape.Message);

            var dims2 = new ShapeScope();
            var x = zeros(6, 4);
            x.ExpectShape("batch 4", dims2);
            var fromTensor = Assert.Throws<ShapeContractException>(() => zeros(5, 4).ExpectShape("batch 4", dims2));
            Assert.Contains("(bound by 'x' dim 0 at ", fromTensor.Message);

            var modes = SanityChecks.CheckModes(nn.Sequential(("fc", nn.Linear(2, 2)), ("drop", nn.Dropout(0.1))), expectTraining: false);
            Assert.Contains("but 3 are in training mode", modes.Message); // the root, fc and drop
            var one = nn.Sequential(("fc", nn.Linear(2, 2)), ("drop", nn.Dropout(0.1)));
            one.eval();
            one.train();
            ((TorchSharp.Modules.Linear)one.children().First()).eval();
            var single = SanityChecks.CheckModes(one, expectTraining: true);
            Assert.Contains("but 1 is in evaluation mode", single.Message);

            using var guard = NonFiniteGuard.Attach(nn.Sequential(("fc", nn.Linear(2, 2))), new NonFiniteGuardOptions { OnNonFinite = NonFiniteAction.Record });
            guard.Check(tensor(float.NaN), "loss");
            Assert.Contains("(of 1 element)", guard.Events.Single().Message);
        }

        [Fact]
        public void A_nan_born_in_a_child_invoked_through_forward_names_it_as_the_candidate()
        {
            manual_seed(6);
            var model = new HiddenChildNet(); // fc1.call → bad.forward (log, hidden from hooks) → fc2.call
            using var guard = NonFiniteGuard.Attach(model);
            var ex = Assert.Throws<NonFiniteValueException>(() => model.call(-ones(8, 4) * 10));

            Assert.Contains("may have started there: 'bad' (LogLayer, never ran through call() in this pass", ex.Message);
            Assert.Contains("between the output of 'fc1' and the input of 'fc2'", ex.Message);
            Assert.DoesNotContain("those two modules", ex.Message);
        }

        /// <summary>A module whose output the guard cannot inspect (a dictionary of tensors).</summary>
        private sealed class NamedOutputs : nn.Module<Tensor, System.Collections.Generic.Dictionary<string, Tensor>>
        {
            public NamedOutputs() : base(nameof(NamedOutputs)) { }

            public override System.Collections.Generic.Dictionary<string, Tensor> forward(Tensor x) => new() { ["log"] = x.log() };
        }

        /// <summary>The NaN is born in a module whose output the guard cannot inspect; the next layer sees it first.</summary>
        private sealed class UninspectableNet : nn.Module<Tensor, Tensor>
        {
            private readonly TorchSharp.Modules.Linear embed = nn.Linear(4, 4);
            private readonly NamedOutputs named = new();
            private readonly TorchSharp.Modules.Linear head = nn.Linear(4, 2);

            public UninspectableNet() : base(nameof(UninspectableNet)) { RegisterComponents(); }

            public override Tensor forward(Tensor x) => head.call(named.call(embed.call(x))["log"]);
        }

        [Fact]
        public void A_nan_first_seen_after_a_module_the_guard_cannot_inspect_names_that_module()
        {
            manual_seed(7);
            var model = new UninspectableNet();
            using var guard = NonFiniteGuard.Attach(model);
            var ex = Assert.Throws<NonFiniteValueException>(() => model.call(-ones(2, 4) * 10));

            Assert.DoesNotContain("those two modules", ex.Message);
            Assert.Contains("may have started there: 'named' (NamedOutputs, its output is not a tensor the guard can inspect)", ex.Message);
            Assert.Contains("between the output of 'embed' and the input of 'head'", ex.Message);
        }

        /// <summary>A GRU with a NaN weight: it makes NaN from a finite input, and its output is a tuple.</summary>
        private sealed class RecurrentNet : nn.Module<Tensor, Tensor>
        {
            public readonly TorchSharp.Modules.GRU rnn = nn.GRU(4, 4, batchFirst: true);
            private readonly TorchSharp.Modules.Linear head = nn.Linear(4, 2);

            public RecurrentNet() : base(nameof(RecurrentNet)) { RegisterComponents(); }

            public override Tensor forward(Tensor x)
            {
                var (output, _) = rnn.call(x);
                return head.call(output);
            }
        }

        [Fact]
        public void A_module_with_a_tuple_output_is_inspected_and_named_as_the_origin()
        {
            manual_seed(9);
            var model = new RecurrentNet();
            using (no_grad()) model.rnn.parameters().First().fill_(float.NaN);
            using var guard = NonFiniteGuard.Attach(model);
            var ex = Assert.Throws<NonFiniteValueException>(() => model.call(randn(2, 3, 4)));

            Assert.Contains("first appeared in the element 0 of its 2-tensor output of module 'rnn' (GRU)", ex.Message);
            Assert.Contains("its own parameters are already non-finite", ex.Message);
            Assert.DoesNotContain(guard.Coverage().NotInspected, m => m.Path.StartsWith("rnn", StringComparison.Ordinal));
        }

        [Fact]
        public void A_tuple_output_hook_returns_the_output_unchanged_and_is_removed_on_dispose()
        {
            manual_seed(10);
            var model = new RecurrentNet();
            var x = randn(2, 3, 4);
            var before = model.call(x);
            var hooks = Hooks.CountAll(model);
            using (NonFiniteGuard.Attach(model))
            {
                Assert.True(Hooks.CountAll(model) > hooks);
                var after = model.call(x);
                Assert.True(before.allclose(after));
            }

            Assert.Equal(hooks, Hooks.CountAll(model)); // every typed hook is removed again
        }

        [Fact]
        public void Batch_independence_says_which_samples_it_checked_and_can_check_all()
        {
            manual_seed(8);
            var model = nn.Sequential(("fc", nn.Linear(4, 3)));
            var x = randn(8, 4);

            var probed = SanityChecks.CheckBatchIndependence(model, x);
            Assert.True(probed.IsOk);
            Assert.Equal(new[] { 0, 4, 7 }, probed.Probes);
            Assert.Contains("samples 0, 4, 7 (3 of 8; pass allSamples: true to check every one)", probed.Message);

            var all = SanityChecks.CheckBatchIndependence(model, x, allSamples: true);
            Assert.Equal(Enumerable.Range(0, 8), all.Probes);
            Assert.Contains("the outputs of all 8 samples do not depend on the inputs of other samples", all.Message);

            Assert.Throws<ArgumentException>(() => SanityChecks.CheckBatchIndependence(model, x, new[] { 1 }, allSamples: true));
        }
    }
}
