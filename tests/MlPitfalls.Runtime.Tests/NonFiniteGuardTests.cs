using System;
using System.Linq;
using MlPitfalls.Runtime.NonFinite;
using TorchSharp;
using TorchSharp.Modules;
using Xunit;
using static TorchSharp.torch;

namespace MlPitfalls.Runtime.Tests
{
    [Collection(TorchCollection.Name)]
    public class NonFiniteGuardTests
    {
        private static Sequential EncoderModel() =>
            nn.Sequential(
                ("encoder", nn.Sequential(("fc", nn.Linear(4, 8)), ("act", nn.ReLU()), ("bad", new LogLayer()))),
                ("head", nn.Linear(8, 2)));

        private static Tensor Input(float value = 1f) => full(new long[] { 5, 4 }, value);

        [Fact]
        public void Finite_forward_passes_and_counts_steps()
        {
            manual_seed(1);
            var model = nn.Sequential(("fc", nn.Linear(4, 8)), ("act", nn.Tanh()), ("head", nn.Linear(8, 2)));
            using var guard = NonFiniteGuard.Attach(model);
            using (NewDisposeScope())
            {
                model.call(randn(5, 4));
                model.call(randn(5, 4));
            }
            Assert.Equal(2, guard.Step);
            Assert.Empty(guard.Events);
            Assert.True(guard.Coverage().IsComplete);
        }

        [Fact]
        public void Names_the_module_where_NaN_is_born()
        {
            manual_seed(2);
            var model = EncoderModel();
            using var guard = NonFiniteGuard.Attach(model);
            using var scope = NewDisposeScope();
            // ReLU output is >= 0: zeros give log(0) = -Inf in 'encoder.bad'.
            var x = full(new long[] { 5, 4 }, -100f);

            var ex = Assert.Throws<NonFiniteValueException>(() => model.call(x));

            var e = ex.Event;
            Assert.Equal("encoder.bad", e.Name);
            Assert.Equal("LogLayer", e.TypeName);
            Assert.Equal(NonFiniteKind.ModuleOutput, e.Kind);
            Assert.False(e.InputWasNonFinite);
            Assert.Equal(1, e.Step);
            Assert.Equal(new long[] { 5, 8 }, e.Shape);
            Assert.Equal(0, e.NaNCount);
            Assert.InRange(e.NegInfCount, 1, 40); // ReLU zeros -> log(0) = -Inf; positive entries stay finite
            Assert.Contains($"{e.NegInfCount} -Inf (of 40 elements)", ex.Message);
            Assert.Contains("first appeared in the output of module 'encoder.bad' (LogLayer) at step 1", ex.Message);
            Assert.Contains("shape [5, 8], Float32", ex.Message);
            Assert.Contains("its input was finite, so this module produced them", ex.Message);
        }

        [Fact]
        public void NaN_counts_are_reported()
        {
            var model = nn.Sequential(("bad", new LogLayer()));
            using var guard = NonFiniteGuard.Attach(model);
            using var scope = NewDisposeScope();
            var x = tensor(new float[] { -1f, 0f, 1f, -2f });
            var ex = Assert.Throws<NonFiniteValueException>(() => model.call(x));
            Assert.Equal(2, ex.Event.NaNCount);
            Assert.Equal(1, ex.Event.NegInfCount);
            Assert.Equal(0, ex.Event.PosInfCount);
            Assert.Contains("2 NaN, 0 +Inf, 1 -Inf (of 4 elements)", ex.Message);
        }

        [Fact]
        public void NaN_in_the_data_is_blamed_on_the_input()
        {
            var model = EncoderModel();
            using var guard = NonFiniteGuard.Attach(model);
            using var scope = NewDisposeScope();
            var x = Input();
            x[0, 0] = tensor(float.NaN);
            var ex = Assert.Throws<NonFiniteValueException>(() => model.call(x));
            Assert.Equal(NonFiniteKind.ModelInput, ex.Event.Kind);
            Assert.Contains("input given to the model", ex.Message);
            Assert.Contains("1 NaN", ex.Message);
        }

        [Fact]
        public void Hidden_child_NaN_names_the_last_finite_module_and_the_parent()
        {
            manual_seed(3);
            var model = new HiddenChildNet();
            using var guard = NonFiniteGuard.Attach(model, new NonFiniteGuardOptions { OnNonFinite = NonFiniteAction.Record });
            using var scope = NewDisposeScope();
            // Large inputs of both signs: fc1 produces negative values, log() of them is NaN inside the hidden child.
            var x = cat(new[] { full(new long[] { 2, 4 }, 50f), full(new long[] { 2, 4 }, -50f) });
            model.call(x);

            var e = Assert.Single(guard.Events);
            Assert.Equal("fc2", e.Name);
            Assert.True(e.InputWasNonFinite);
            Assert.Equal("fc1", e.LastFiniteModule);
            Assert.Contains("the last module with a finite output before it was 'fc1'", e.Message);
            Assert.Contains("an operation in the forward() of '<root HiddenChildNet>'", e.Message);
            Assert.Contains(".forward(...) instead of .call(...)", e.Message);

            var coverage = guard.Coverage();
            Assert.False(coverage.IsComplete);
            var hidden = Assert.Single(coverage.NeverObserved);
            Assert.Equal("bad", hidden.Path);
            Assert.Equal("LogLayer", hidden.TypeName);
            Assert.Contains("'<root HiddenChildNet>' ran, but never invoked this module through call()", hidden.Reason);
            Assert.Contains("never observed: bad (LogLayer)", coverage.ToString());
            Assert.Contains("fc1", coverage.Observed);
            Assert.Contains("<root HiddenChildNet>", coverage.Observed);
        }

        [Fact]
        public void Record_mode_keeps_going_and_reports_one_origin_per_pass()
        {
            var model = EncoderModel();
            using var guard = NonFiniteGuard.Attach(model, new NonFiniteGuardOptions { OnNonFinite = NonFiniteAction.Record });
            using var scope = NewDisposeScope();
            model.call(full(new long[] { 5, 4 }, -100f));
            model.call(full(new long[] { 5, 4 }, -100f));
            Assert.Equal(2, guard.Events.Count);
            Assert.All(guard.Events, e => Assert.Equal("encoder.bad", e.Name));
            Assert.Equal(new long[] { 1, 2 }, guard.Events.Select(e => e.Step).ToArray());
        }

        [Fact]
        public void Sampling_checks_every_nth_step_only()
        {
            var model = EncoderModel();
            using var guard = NonFiniteGuard.Attach(model, new NonFiniteGuardOptions { OnNonFinite = NonFiniteAction.Record, CheckEvery = 3 });
            using var scope = NewDisposeScope();
            for (int i = 0; i < 7; i++) model.call(full(new long[] { 5, 4 }, -100f));
            Assert.Equal(new long[] { 1, 4, 7 }, guard.Events.Select(e => e.Step).ToArray());
        }

        [Fact]
        public void Manual_steps_override_forward_counting()
        {
            var model = EncoderModel();
            using var guard = NonFiniteGuard.Attach(model, new NonFiniteGuardOptions { OnNonFinite = NonFiniteAction.Record, CheckEvery = 2 });
            using var scope = NewDisposeScope();
            for (int i = 0; i < 4; i++)
            {
                guard.BeginStep();
                model.call(full(new long[] { 5, 4 }, -100f));
                model.call(full(new long[] { 5, 4 }, -100f)); // a second forward in the same step does not advance the count
            }
            Assert.Equal(4, guard.Step);
            Assert.Equal(new long[] { 1, 1, 3, 3 }, guard.Events.Select(e => e.Step).ToArray());
        }

        [Fact]
        public void Gradient_check_names_parameters_with_nonfinite_grads()
        {
            manual_seed(4);
            var model = nn.Sequential(("fc", nn.Linear(3, 2)), ("out", nn.Linear(2, 1)));
            using var guard = NonFiniteGuard.Attach(model);
            using var scope = NewDisposeScope();
            var y = model.call(randn(4, 3));
            // Forward is finite (sqrt(0) = 0) but d sqrt(u)/du at 0 is Inf, times 0 gives NaN.
            var loss = (y * 0).sqrt().sum();
            guard.Check(loss);
            loss.backward();

            var ex = Assert.Throws<NonFiniteValueException>(() => guard.CheckGradients());
            Assert.Equal(NonFiniteKind.Gradient, ex.Event.Kind);
            var names = ex.Event.Gradients.Select(g => g.Name).ToArray();
            Assert.Equal(new[] { "fc.weight", "fc.bias", "out.weight", "out.bias" }, names);
            Assert.Contains("4 parameters have non-finite gradients after backward() at step 1", ex.Message);
            Assert.Contains("out.weight", ex.Message);
            Assert.Contains("[1, 2]", ex.Message);
        }

        [Fact]
        public void Finite_gradients_pass()
        {
            manual_seed(5);
            var model = nn.Sequential(("fc", nn.Linear(3, 2)));
            using var guard = NonFiniteGuard.Attach(model);
            using var scope = NewDisposeScope();
            var loss = model.call(randn(4, 3)).pow(2).mean();
            guard.Backward(loss);
            Assert.Empty(guard.Events);
            model.AssertFiniteGradients();
        }

        [Fact]
        public void Anomaly_detection_names_the_backward_function()
        {
            manual_seed(6);
            var model = nn.Sequential(("fc", nn.Linear(3, 2)));
            using var guard = NonFiniteGuard.Attach(model, new NonFiniteGuardOptions { DetectAnomalyInBackward = true });
            using var scope = NewDisposeScope();
            var y = model.call(randn(4, 3));
            var loss = (y * 0).sqrt().sum();
            var ex = Assert.Throws<NonFiniteValueException>(() => guard.Backward(loss));
            Assert.Equal(NonFiniteKind.Backward, ex.Event.Kind);
            Assert.Contains("NaN appeared in the backward pass at step 1", ex.Message);
            Assert.Contains("Function 'MulBackward1' returned nan values", ex.Message); // sqrt'(0) = Inf, times the 0 of y * 0
            Console.WriteLine(ex.Message);
            Assert.NotNull(ex.InnerException);
        }

        [Fact]
        public void Loss_check_names_the_loss_expression()
        {
            var model = nn.Sequential(("fc", nn.Linear(3, 2)));
            using var guard = NonFiniteGuard.Attach(model);
            using var scope = NewDisposeScope();
            var probs = model.call(ones(4, 3)).softmax(1);
            var badLoss = (probs * 0).log().mean(); // log(0)
            var ex = Assert.Throws<NonFiniteValueException>(() => guard.Check(badLoss));
            Assert.Contains("'badLoss' is non-finite at step 1", ex.Message);
            Assert.Contains("forward outputs were finite", ex.Message);

            var metric = tensor(float.PositiveInfinity);
            var ex2 = Assert.Throws<NonFiniteValueException>(() => metric.AssertFinite());
            Assert.Contains("'metric' is non-finite", ex2.Message);
            Assert.Contains("1 +Inf", ex2.Message);
            tensor(1.5f).AssertFinite();
        }

        [Fact]
        public void Integer_and_bool_outputs_are_skipped()
        {
            using var scope = NewDisposeScope();
            tensor(new long[] { 1, 2 }).AssertFinite();
            tensor(new[] { true, false }).AssertFinite();
        }

        [Fact]
        public void Dispose_removes_every_hook_and_checks_leak_no_tensors()
        {
            var fc = nn.Linear(4, 8);
            using (no_grad())
            {
                fc.weight!.fill_(0.1f);
                fc.bias!.fill_(0.1f);
            }
            var model = nn.Sequential(("fc", fc), ("bad", new LogLayer()), ("head", nn.Linear(8, 2)));
            int hooksBefore = Hooks.CountAll(model);
            var x = Input();                              // fc output 0.5: log is finite
            var bad = full(new long[] { 5, 4 }, -100f);   // fc output negative: log is NaN

            using (var guard = NonFiniteGuard.Attach(model, new NonFiniteGuardOptions { OnNonFinite = NonFiniteAction.Record }))
            {
                Assert.True(Hooks.CountAll(model) > hooksBefore);
                // Warm up, then count live tensors around guarded passes (passing and failing).
                model.call(x).Dispose();
                long live = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
                for (int i = 0; i < 3; i++) model.call(x).Dispose();
                model.call(bad).Dispose();
                var y = model.call(x);
                var loss = y.sum();
                y.Dispose();
                loss.backward();
                guard.CheckGradients();
                guard.Check(loss);
                loss.Dispose();
                Assert.Equal(live, DisposeScopeManager.Statistics.ThreadTotalLiveCount);
                Assert.Single(guard.Events);
            }

            Assert.Equal(hooksBefore, Hooks.CountAll(model));
            model.call(bad).Dispose(); // no guard any more: no exception
            x.Dispose();
            bad.Dispose();
        }

        [Fact]
        public void Two_input_and_tuple_input_modules_are_inspected()
        {
            manual_seed(8);
            var model = new MixedSignatureNet();
            using var guard = NonFiniteGuard.Attach(model, new NonFiniteGuardOptions { OnNonFinite = NonFiniteAction.Record });
            using var scope = NewDisposeScope();
            model.call(ones(2, 3));
            Assert.Empty(guard.Events);
            var coverage = guard.Coverage();
            Assert.Empty(coverage.NeverObserved);
            Assert.Empty(coverage.NotInspected); // mul takes a tuple: inspected through its typed hook

            model.call(full(new long[] { 2, 3 }, -1f));
            var e = Assert.Single(guard.Events);
            Assert.Equal("add", e.Name);          // the two-input module received the NaN through its second input
            Assert.True(e.InputWasNonFinite);
            Assert.Equal("fc", e.LastFiniteModule);
        }

        [Fact]
        public void Corrupted_weights_are_named_as_the_cause()
        {
            var model = nn.Sequential(("fc", nn.Linear(3, 2)));
            using (no_grad())
            {
                model.named_parameters().First(p => p.name == "fc.weight").parameter[0, 0] = tensor(float.NaN);
            }
            using var guard = NonFiniteGuard.Attach(model);
            using var scope = NewDisposeScope();
            var ex = Assert.Throws<NonFiniteValueException>(() => model.call(ones(4, 3)));
            Assert.Equal("fc", ex.Event.Name);
            Assert.Equal(new[] { "weight" }, ex.Event.NonFiniteParameters.ToArray());
            Assert.Contains("its own parameters are already non-finite: weight", ex.Message);
            Assert.Contains("an earlier optimizer step", ex.Message);
        }

        private static Tensor MixedSignInput() => cat(new[] { full(new long[] { 2, 4 }, 50f), full(new long[] { 2, 4 }, -50f) });

        [Fact]
        public void Container_that_corrupts_its_last_childs_output_in_place_is_named()
        {
            // The root returns fc's output object after log_() on it: the same tensor the guard already found finite in fc.
            manual_seed(30);
            var model = new InPlaceLogBlock();
            using var guard = NonFiniteGuard.Attach(model, new NonFiniteGuardOptions { OnNonFinite = NonFiniteAction.Record });
            using var scope = NewDisposeScope();
            var loss = model.call(MixedSignInput()).sum();

            var e = Assert.Single(guard.Events);
            Assert.Equal("<root InPlaceLogBlock>", e.Name);
            Assert.False(e.InputWasNonFinite);
            Assert.Contains("first appeared in the output of module '<root InPlaceLogBlock>' (InPlaceLogBlock)", e.Message);

            // The loss of that pass is non-finite for the same reason: one origin per pass, no second event.
            guard.Check(loss);
            Assert.Single(guard.Events);
        }

        [Fact]
        public void Container_inside_a_sequential_that_corrupts_its_childs_output_in_place_is_named()
        {
            manual_seed(31);
            var model = nn.Sequential(("block", new InPlaceLogBlock()), ("head", nn.Linear(4, 2)));
            using var guard = NonFiniteGuard.Attach(model);
            using var scope = NewDisposeScope();
            var ex = Assert.Throws<NonFiniteValueException>(() => model.call(MixedSignInput()));
            Assert.Equal("block", ex.Event.Name);
            Assert.False(ex.Event.InputWasNonFinite);
        }

        [Fact]
        public void Module_that_makes_its_input_non_finite_in_place_is_the_origin()
        {
            // The output of 'bad' is its input tensor: by the time the hook runs, the input looks non-finite too.
            manual_seed(32);
            var model = nn.Sequential(("fc", nn.Linear(4, 8)), ("bad", new InPlaceLogLayer()));
            using var guard = NonFiniteGuard.Attach(model);
            using var scope = NewDisposeScope();
            var ex = Assert.Throws<NonFiniteValueException>(() => model.call(MixedSignInput()));
            Assert.Equal("bad", ex.Event.Name);
            Assert.False(ex.Event.InputWasNonFinite);
            Assert.Contains("first appeared in the output of module 'bad' (InPlaceLogLayer)", ex.Message);
            Assert.Contains("in place", ex.Message);
        }

        [Fact]
        public void Every_input_of_a_two_input_root_is_checked()
        {
            var model = new MaskedNet();
            using var guard = NonFiniteGuard.Attach(model);
            using var scope = NewDisposeScope();
            var mask = ones(4, 3);
            mask[1, 2] = tensor(float.NaN);
            var ex = Assert.Throws<NonFiniteValueException>(() => model.call(ones(4, 3), mask));
            Assert.Equal(NonFiniteKind.ModelInput, ex.Event.Kind);
            Assert.Contains("input given to the model", ex.Message);
            Assert.Contains("1 NaN", ex.Message);
        }

        [Fact]
        public void Complex_tensors_are_checked()
        {
            using var scope = NewDisposeScope();
            var re = tensor(new float[] { float.NaN, float.PositiveInfinity, 1f, 2f });
            var im = tensor(new float[] { 0f, 0f, float.NegativeInfinity, 3f });
            var spectrum = complex(re, im);
            var ex = Assert.Throws<NonFiniteValueException>(() => spectrum.AssertFinite());
            Assert.Contains("'spectrum' is non-finite", ex.Message);
            Assert.Contains("1 NaN, 1 +Inf, 1 -Inf (of 4 elements)", ex.Message);
            Assert.Contains("ComplexFloat32", ex.Message);
            complex(im.nan_to_num(), re.nan_to_num()).AssertFinite();
        }

        [Fact]
        public void Sampling_rate_is_validated_and_can_change_while_attached()
        {
            var invalid = Assert.Throws<ArgumentOutOfRangeException>(() => new NonFiniteGuardOptions { CheckEvery = 0 });
            Assert.Contains("at least 1", invalid.Message);

            var model = EncoderModel();
            using var guard = NonFiniteGuard.Attach(model, new NonFiniteGuardOptions { OnNonFinite = NonFiniteAction.Record });
            using var scope = NewDisposeScope();
            model.call(full(new long[] { 5, 4 }, -100f));   // step 1, checked
            guard.Options.CheckEvery = 2;
            for (int i = 0; i < 3; i++) model.call(full(new long[] { 5, 4 }, -100f)); // steps 2-4: only 3 is checked
            Assert.Equal(new long[] { 1, 3 }, guard.Events.Select(e => e.Step).ToArray());
        }

        [Fact]
        public void The_root_module_is_named_when_its_own_forward_makes_the_NaN()
        {
            manual_seed(33);
            var model = new RootLogNet();
            using var guard = NonFiniteGuard.Attach(model);
            using var scope = NewDisposeScope();
            var ex = Assert.Throws<NonFiniteValueException>(() => model.call(MixedSignInput()));
            Assert.Equal("<root RootLogNet>", ex.Event.Name);
            Assert.Equal("RootLogNet", ex.Event.TypeName);
            Assert.False(ex.Event.InputWasNonFinite);
            Assert.Contains("What to check: the operations in RootLogNet.forward", ex.Message);
        }
    }
}
