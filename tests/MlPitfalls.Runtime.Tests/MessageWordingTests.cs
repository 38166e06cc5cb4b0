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
    /// <summary>
    /// The wording of the runtime's messages as a new user reads them: counts agree with their nouns, numbers are readable,
    /// names are quoted alike, and advice points at something the user can do.
    /// </summary>
    [Collection(TorchCollection.Name)]
    public class MessageWordingTests
    {
        private static string ShapeError(Action check) => Assert.Throws<ShapeContractException>(check).Message;

        [Fact]
        public void Shape_rank_problem_has_a_subject_and_agrees_in_number()
        {
            Assert.Contains(": the tensor has 1 dimension but the spec has 2.", ShapeError(() => zeros(3).ExpectShape("a b")));
            Assert.Contains(": the tensor has 1 dimension but the spec needs at least 3.", ShapeError(() => zeros(3).ExpectShape("a ... b c")));
            Assert.Contains(": the tensor has 2 dimensions but the spec has 1.", ShapeError(() => zeros(3, 2).ExpectShape("a")));
        }

        [Fact]
        public void Shape_expression_problems_state_the_actual_size_and_what_cannot_be_solved()
        {
            var unbound = ShapeError(() => zeros(2, 64).ExpectShape("b heads*dim"));
            Assert.Contains("dim 1 is 'heads*dim' = 64, but 'heads' and 'dim' are both unbound, so it cannot be checked.", unbound);
            Assert.Contains("Bind one of them first: name it in an earlier dimension of this spec", unbound);
            Assert.Contains("a check without any ShapeScope sees only its own spec.", unbound);
            Assert.DoesNotContain("What to check: check", unbound);
            Assert.Contains("What to check: the factors of the product or quotient and where each was bound (listed above):", unbound);

            var twice = ShapeError(() => zeros(2, 9).ExpectShape("b n*n"));
            Assert.Contains("dim 1 is 'n*n' = 9, but 'n' appears in it twice and is unbound, so it cannot be solved for. Bind 'n' first:", twice);

            var byZero = ShapeError(() => zeros(2, 9).ExpectShape("b x/n", new ShapeScope().Bind("n", 0).Bind("x", 3)));
            Assert.Contains("dim 1 is 9, but 'x/n' divides by a dimension bound to 0 (x=3, n=0), so it has no defined size;", byZero);

            var notWhole = ShapeError(() => zeros(2, 2).ExpectShape("b a/c", new ShapeScope().Bind("a", 6).Bind("c", 4)));
            Assert.Contains("dim 1 is 2, but 'a/c' = 6/4 (a=6, c=4) is not a whole number: the bound sizes do not divide evenly.", notWhole);

            var product = ShapeError(() => zeros(2, 10).ExpectShape("b heads*dim", new ShapeScope().Bind("heads", 4)));
            Assert.Contains("dim 1 is 10, but no whole value of 'dim' makes 'heads*dim' equal 10 (heads=4, dim=?).", product);

            var quotient = ShapeError(() => zeros(2, 3).ExpectShape("b dim/heads", new ShapeScope().Bind("dim", 64)));
            Assert.Contains("dim 1 is 3, but no whole value of 'heads' makes 'dim/heads' equal 3 (dim=64, heads=?).", quotient);
        }

        [Fact]
        public void Binding_a_null_name_says_null()
        {
            var ex = Assert.Throws<ArgumentException>(() => new ShapeScope().Bind(null!, 3));
            Assert.StartsWith("null is not a dimension name", ex.Message);
        }

        [Fact]
        public void Non_finite_model_input_quotes_the_model_name()
        {
            var model = nn.Sequential(("fc", nn.Linear(4, 4)));
            using var guard = NonFiniteGuard.Attach(model);
            var ex = Assert.Throws<NonFiniteValueException>(() => model.call(full(2, 4, float.NaN)));
            Assert.Contains("The input given to the model 'Sequential' is already non-finite at step 1", ex.Message);
            Assert.DoesNotContain("<root", ex.Message);
        }

        [Fact]
        public void A_non_finite_loss_after_finite_outputs_says_what_the_loss_computation_produced()
        {
            var model = nn.Sequential(("fc", nn.Linear(4, 4)));
            using var guard = NonFiniteGuard.Attach(model);
            var output = model.call(ones(2, 4));
            var ex = Assert.Throws<NonFiniteValueException>(() => guard.Check(output.sum() / 0.0, "loss"));
            Assert.Contains("so the NaN/Inf comes from the loss/metric computation itself.", ex.Message);
        }

        [Fact]
        public void Gradient_check_agrees_in_number_and_gives_advice_that_can_be_followed()
        {
            var one = nn.Linear(2, 1);
            one.call(ones(1, 2)).sum().backward();
            using (no_grad()) one.weight!.grad![0, 0] = tensor(float.NaN);
            var single = Assert.Throws<NonFiniteValueException>(() => one.AssertFiniteGradients()).Message;
            Assert.StartsWith("1 parameter has a non-finite gradient after backward():", single);
            Assert.Contains("attach a NonFiniteGuard with DetectAnomalyInBackward = true and call guard.Backward(loss) instead of loss.backward().", single);
            Assert.Contains("Parameters are listed in model order, input side first;", single);
            Assert.DoesNotContain("Run backward under", single);

            using (no_grad()) one.bias!.grad![0] = tensor(float.PositiveInfinity);
            var two = Assert.Throws<NonFiniteValueException>(() => one.AssertFiniteGradients()).Message;
            Assert.StartsWith("2 parameters have non-finite gradients after backward():", two);
        }

        [Fact]
        public void Backward_anomaly_does_not_claim_the_guard_would_have_stopped()
        {
            manual_seed(1);
            var model = nn.Sequential(("fc", nn.Linear(2, 2)));
            using var guard = NonFiniteGuard.Attach(model, new NonFiniteGuardOptions { DetectAnomalyInBackward = true });
            var y = model.call(ones(2, 2));
            var ex = Assert.Throws<NonFiniteValueException>(() => guard.Backward(((y * 0).sqrt() * 0).sum()));
            Assert.Contains("If the forward values were finite (the guard reports them when they are not), a derivative is undefined", ex.Message);
            Assert.DoesNotContain("or the guard would have stopped earlier", ex.Message);
        }

        [Fact]
        public void Coverage_agrees_in_number_and_its_reasons_end_with_a_period()
        {
            var model = nn.Linear(2, 2);
            using var guard = NonFiniteGuard.Attach(model);
            Assert.StartsWith("NaN guard coverage: 0 modules observed, 1 never observed, 0 not inspected.", guard.Coverage().ToString());
            Assert.EndsWith("no forward pass has run through call() since the guard was attached.", guard.Coverage().ToString());
            model.call(ones(1, 2));
            Assert.Equal("NaN guard coverage: 1 module observed, 0 never observed, 0 not inspected.", guard.Coverage().ToString());
        }

        private sealed class ZeroGradientNet : nn.Module<Tensor, Tensor>
        {
            private readonly TorchSharp.Modules.Linear a = nn.Linear(4, 4);

            public ZeroGradientNet() : base(nameof(ZeroGradientNet)) => RegisterComponents();

            public override Tensor forward(Tensor x) => a.call(x) * 0;
        }

        [Fact]
        public void Gradient_flow_header_agrees_in_number_and_counts_unregistered_modules()
        {
            manual_seed(1);
            var zero = new ZeroGradientNet();
            zero.call(ones(2, 4)).sum().backward();
            var report = GradientFlow.Analyze(zero);
            Assert.StartsWith("Gradient flow for 'ZeroGradientNet': 2 parameters, 2 with a problem, 0 frozen.", report.ToString());
            Assert.Equal("0", Assert.Single(report.Layers).NormText);

            var list = new ListLayersNet();
            list.call(ones(2, 4)).sum().backward();
            Assert.StartsWith("Gradient flow for 'ListLayersNet': 2 parameters, 0 with a problem, 0 frozen, and 2 modules used in forward but never registered.",
                GradientFlow.Analyze(list).ToString());

            var nan = nn.Linear(2, 1);
            nan.call(ones(1, 2)).sum().backward();
            using (no_grad()) nan.weight!.grad![0, 0] = tensor(float.NaN);
            Assert.Contains("see NonFiniteGuard.CheckGradients() and nn.utils.clip_grad_norm_.", GradientFlow.Analyze(nan).ToString());
        }

        [Fact]
        public void Initial_loss_prints_readable_numbers()
        {
            Assert.StartsWith("Initial loss 1e+20 vs expected", SanityChecks.CheckInitialLoss(1e20, 10).Message);
            Assert.StartsWith("Initial loss -1e-7 vs expected", SanityChecks.CheckInitialLoss(-1e-7, 10).Message);
            Assert.StartsWith("Initial loss 0 vs expected", SanityChecks.CheckInitialLoss(-0.0, 10).Message);
            var huge = SanityChecks.CheckInitialLoss(1e6, 10).Message;
            Assert.Contains("exp(-loss) = 0, where a uniform guess gives 1/10 = 0.1", huge);
            Assert.DoesNotContain("0e+0", huge);
        }

        private sealed class OneDetachedParameterNet : nn.Module<Tensor, Tensor>
        {
            private readonly TorchSharp.Modules.Parameter offset = nn.Parameter(ones(3));
            private readonly TorchSharp.Modules.Linear fc = nn.Linear(4, 3);

            public OneDetachedParameterNet() : base(nameof(OneDetachedParameterNet)) => RegisterComponents();

            public override Tensor forward(Tensor x) => fc.call(x) + offset.detach();
        }

        [Fact]
        public void Overfit_messages_agree_in_number_and_print_readable_losses()
        {
            manual_seed(1);
            var model = new OneDetachedParameterNet();
            var result = SanityChecks.OverfitOneBatch(model, optim.SGD(model.parameters(), 1e-6), randn(4, 4), randint(0, 3, 4),
                (o, t) => nn.functional.cross_entropy(o, t), steps: 1);
            Assert.Contains(" in 1 step (best ", result.Message);
            Assert.Contains("What to check: 1 parameter never received a gradient in the single step: offset. The path from it to the loss is cut", result.Message);
            Assert.Contains("so it cannot learn whatever the learning rate", result.Message);

            var linear = nn.Linear(4, 3);
            var constant = SanityChecks.OverfitOneBatch(linear, optim.SGD(linear.parameters(), 1e-6), randn(4, 4), randint(0, 3, 4),
                (o, t) => o.sum() * 0 + 2e7, steps: 2);
            Assert.Contains("loss 2e+7 -> 2e+7 in 2 steps (best 2e+7, target <= 0.05)", constant.Message);
            Assert.Contains("What to check: the loss barely moves:", constant.Message);

            var steps = Assert.Throws<ArgumentOutOfRangeException>(() => SanityChecks.OverfitOneBatch(linear, optim.SGD(linear.parameters(), 0.1), ones(1, 4),
                zeros(1, ScalarType.Int64), (o, t) => o.sum(), steps: 0));
            Assert.Contains("OverfitOneBatch needs at least 1 training step.", steps.Message);

            var detached = Assert.Throws<ArgumentException>(() => SanityChecks.OverfitOneBatch(linear, optim.SGD(linear.parameters(), 0.1), ones(1, 4),
                zeros(1, ScalarType.Int64), (o, t) => o.detach().sum()));
            Assert.Contains("cannot reach any parameter of 'Linear'", detached.Message);

            var unsupported = Assert.Throws<NotSupportedException>(() => SanityChecks.OverfitOneBatch(linear, optim.LBFGS(linear.parameters()), ones(1, 4),
                zeros(1, ScalarType.Int64), (o, t) => o.sum()));
            Assert.Contains("cannot save and restore the state of the optimizer 'LBFGS'", unsupported.Message);
            Assert.Contains("Pass one of those for the check, e.g. torch.optim.Adam(model.parameters())", unsupported.Message);
            Assert.DoesNotContain("a fresh optimizer", unsupported.Message);
        }

        private sealed class SumAllNet : nn.Module<Tensor, Tensor>
        {
            public SumAllNet() : base(nameof(SumAllNet)) { }

            public override Tensor forward(Tensor x) => x.sum(1).sum(0, keepdim: true);
        }

        [Fact]
        public void Batch_independence_messages_agree_in_number_and_name_the_model()
        {
            manual_seed(1);
            var single = SanityChecks.CheckBatchIndependence(nn.Linear(4, 3), randn(4, 4), new[] { 1 });
            Assert.StartsWith("Batch independence: the output of sample 1 (1 of 4; pass allSamples: true to check every one) does not depend on the inputs of other samples", single.Message);

            var ignores = SanityChecks.CheckBatchIndependence(new IgnoresInputNet(), randn(4, 4), new[] { 2 });
            Assert.Contains("Note: the output of sample 2 does not depend on its own input (zero gradient): check that forward() really uses its input, and look for dead ReLUs", ignores.Message);

            var leak = SanityChecks.CheckBatchIndependence(new SeqFirstNet(buggy: true), randn(2, 12));
            Assert.Contains("  output of sample 0 depends on the input of sample 1", leak.Message);

            var probe = Assert.Throws<ArgumentOutOfRangeException>(() => SanityChecks.CheckBatchIndependence(nn.Linear(4, 3), zeros(4, 4), new[] { 5 }));
            Assert.Contains("Probe 5 is outside the batch: the input has 4 samples, so a probe must be 0 to 3.", probe.Message);

            var shape = Assert.Throws<ArgumentException>(() => SanityChecks.CheckBatchIndependence(new SumAllNet(), zeros(4, 4)));
            Assert.Contains("The output of 'SumAllNet' has shape [1]; its first dimension should be the batch size (4), so batch independence cannot be checked.", shape.Message);

            var detached = Assert.Throws<ArgumentException>(() => SanityChecks.CheckBatchIndependence(new DetachingNet(), zeros(4, 4)));
            Assert.StartsWith("The output of 'DetachingNet' does not require grad", detached.Message);
        }

        [Fact]
        public void Mode_check_reads_as_a_sentence_and_explains_except()
        {
            var model = nn.Sequential(("fc", nn.Linear(2, 2)), ("drop", nn.Dropout(0.1)));
            var eval = SanityChecks.CheckModes(model, expectTraining: false).Message;
            Assert.StartsWith("Expected every module of 'Sequential' to be in evaluation mode, but 3 are in training mode:", eval);
            Assert.Contains("or model.eval() was not called again after a training step.", eval);
            Assert.EndsWith("Modules meant to stay in training mode can be listed by path in 'except'.", eval);
            Assert.DoesNotContain("Pass intentional exceptions", eval);
        }
    }
}
