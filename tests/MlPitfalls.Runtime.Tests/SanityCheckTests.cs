using System;
using System.Collections.Generic;
using System.Linq;
using MlPitfalls.Runtime.Sanity;
using TorchSharp;
using TorchSharp.Modules;
using Xunit;
using static TorchSharp.torch;

namespace MlPitfalls.Runtime.Tests
{
    [Collection(TorchCollection.Name)]
    public class SanityCheckTests
    {
        private static Sequential Classifier(int classes = 10) =>
            nn.Sequential(("fc1", nn.Linear(20, 32)), ("act", nn.ReLU()), ("drop", nn.Dropout(0.1)), ("fc2", nn.Linear(32, classes)));

        private static Tensor CrossEntropy(Tensor output, Tensor target) => nn.functional.cross_entropy(output, target);

        [Fact]
        public void Initial_loss_near_ln_C_passes()
        {
            manual_seed(20);
            var model = Classifier();
            using var scope = NewDisposeScope();
            var result = SanityChecks.CheckInitialLoss(model, randn(64, 20), randint(0, 10, new long[] { 64 }), CrossEntropy, classes: 10).ThrowIfFailed();
            Assert.True(result.IsOk);
            Assert.Equal(Math.Log(10), result.Expected, 10);
            Assert.InRange(result.Loss, 2.0, 2.6);
        }

        [Fact]
        public void Initial_loss_too_high_or_too_low_is_explained()
        {
            manual_seed(21);
            var model = Classifier();
            using (no_grad())
            {
                foreach (var p in model.named_parameters().Where(p => p.name.StartsWith("fc2")).Select(p => p.parameter)) p.mul_(200);
            }
            using var scope = NewDisposeScope();
            var result = SanityChecks.CheckInitialLoss(model, randn(64, 20), randint(0, 10, new long[] { 64 }), CrossEntropy, classes: 10);
            Assert.False(result.IsOk);
            var ex = Assert.Throws<InitialLossException>(() => result.ThrowIfFailed());
            Assert.Contains("expected -ln(1/10) = 2.3026 for 10 classes", ex.Message);
            Assert.Contains("too high", ex.Message);
            Assert.Contains("logits are too large at initialisation", ex.Message);

            var low = SanityChecks.CheckInitialLoss(0.05, 10);
            Assert.False(low.IsOk);
            Assert.Contains("too low", low.Message);
            Assert.Contains("labels leak", low.Message);

            Assert.False(SanityChecks.CheckInitialLoss(double.NaN, 10).IsOk);
            Assert.True(SanityChecks.CheckInitialLoss(Math.Log(5) * 1.1, 5).IsOk);
        }

        [Fact]
        public void Overfit_one_batch_succeeds_and_restores_everything()
        {
            manual_seed(22);
            var model = Classifier();
            using var optimizer = optim.Adam(model.parameters(), lr: 0.01);
            var x = randn(8, 20);
            var y = randint(0, 10, new long[] { 8 });
            // Some real training first, so that the optimizer has state worth restoring.
            TrainSteps(model, optimizer, x, y, 3);
            model.eval();
            var before = model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.clone());

            var result = SanityChecks.OverfitOneBatch(model, optimizer, x, y, CrossEntropy, steps: 150).ThrowIfFailed();

            Assert.True(result.IsOk, result.Message);
            Assert.Equal(150, result.Losses.Count);
            Assert.True(result.Losses[^1] < 0.05);
            Assert.Contains("OK", result.Message);
            Assert.False(model.training); // mode restored
            foreach (var (name, value) in model.state_dict())
            {
                Assert.True(value.allclose(before[name], rtol: 0, atol: 0), $"{name} was not restored");
            }
            foreach (var t in before.Values) t.Dispose();
            x.Dispose();
            y.Dispose();
        }

        [Theory]
        [InlineData("adam")]
        [InlineData("sgd-momentum")]
        public void After_overfit_training_continues_exactly_as_without_it(string kind)
        {
            List<double> Run(bool withCheck)
            {
                manual_seed(23);
                var model = Classifier();
                model.named_modules().First(m => m.name == "drop").module.eval(); // no dropout randomness in the comparison
                using var optimizer = kind == "adam" ? optim.Adam(model.parameters(), lr: 0.01) : (optim.Optimizer)optim.SGD(model.parameters(), 0.05, momentum: 0.9);
                var x = randn(16, 20);
                var y = randint(0, 10, new long[] { 16 });
                var losses = TrainSteps(model, optimizer, x, y, 3);
                if (withCheck)
                {
                    SanityChecks.OverfitOneBatch(model, optimizer, x, y, CrossEntropy, steps: 20);
                }
                losses.AddRange(TrainSteps(model, optimizer, x, y, 3));
                x.Dispose();
                y.Dispose();
                return losses;
            }

            var plain = Run(false);
            var withCheck = Run(true);
            Assert.Equal(plain, withCheck);
        }

        [Fact]
        public void After_overfit_training_with_dropout_continues_exactly_as_without_it()
        {
            // The trial steps run dropout in training mode; the random stream must be put back, or later masks differ.
            List<double> Run(bool withCheck)
            {
                manual_seed(29);
                var model = Classifier();
                using var optimizer = optim.Adam(model.parameters(), lr: 0.01);
                var x = randn(16, 20);
                var y = randint(0, 10, new long[] { 16 });
                var losses = TrainSteps(model, optimizer, x, y, 2);
                if (withCheck) SanityChecks.OverfitOneBatch(model, optimizer, x, y, CrossEntropy, steps: 5);
                losses.AddRange(TrainSteps(model, optimizer, x, y, 3));
                x.Dispose();
                y.Dispose();
                return losses;
            }

            Assert.Equal(Run(false), Run(true));
        }

        [Fact]
        public void Overfit_with_a_detached_output_explains_the_cut_and_restores_the_model()
        {
            manual_seed(30);
            var model = nn.Sequential(("fc", nn.Linear(3, 3)), ("cut", new DetachingNet()));
            using var optimizer = optim.SGD(model.parameters(), 0.1);
            using var scope = NewDisposeScope();
            var before = model.named_parameters().Select(p => p.parameter.clone()).ToList();
            var ex = Assert.Throws<ArgumentException>(() => SanityChecks.OverfitOneBatch(model, optimizer, randn(4, 3), randn(4, 3),
                (o, t) => nn.functional.mse_loss(o, t), steps: 3));
            Assert.Contains("The loss does not require grad", ex.Message);
            Assert.Contains("detach()", ex.Message);
            Assert.True(model.training);
            Assert.All(model.parameters().Zip(before), pair => Assert.True(pair.First.allclose(pair.Second, rtol: 0, atol: 0)));
        }

        [Fact]
        public void Overfit_of_a_model_without_registered_parameters_says_so()
        {
            var model = new UnregisteredNet();
            var other = nn.Linear(1, 1);
            using var optimizer = optim.SGD(other.parameters(), 0.1);
            using var scope = NewDisposeScope();
            var ex = Assert.Throws<ArgumentException>(() => SanityChecks.OverfitOneBatch(model, optimizer, randn(4, 4), randint(0, 3, new long[] { 4 }), CrossEntropy, steps: 2));
            Assert.Contains("Model 'UnregisteredNet' has no parameters that TorchSharp knows about", ex.Message);
            Assert.Contains("RegisterComponents()", ex.Message);
        }

        [Fact]
        public void Overfit_failure_explains_what_to_check()
        {
            manual_seed(24);
            var model = Classifier();
            using var optimizer = optim.SGD(model.parameters(), 1e-9);
            using var scope = NewDisposeScope();
            var result = SanityChecks.OverfitOneBatch(model, optimizer, randn(8, 20), randint(0, 10, new long[] { 8 }), CrossEntropy, steps: 10);
            Assert.False(result.IsOk);
            var ex = Assert.Throws<OverfitException>(() => result.ThrowIfFailed());
            Assert.Contains("Overfit one batch failed: loss", ex.Message);
            Assert.Contains("in 10 steps", ex.Message);
            Assert.Contains("barely moves", ex.Message);
        }

        [Fact]
        public void Batch_independence_passes_for_permute_and_restores_mode()
        {
            manual_seed(25);
            var model = new SeqFirstNet(buggy: false);
            model.train();
            using var scope = NewDisposeScope();
            var result = SanityChecks.CheckBatchIndependence(model, randn(6, 12)).ThrowIfFailed();
            Assert.True(result.IsOk);
            Assert.Equal(new[] { 0, 3, 5 }, result.Probes.ToArray());
            Assert.True(model.training);
            Assert.All(model.parameters(), p => Assert.True(p.grad is null)); // parameter gradients untouched
        }

        [Fact]
        public void Batch_independence_catches_view_instead_of_permute()
        {
            manual_seed(26);
            var model = new SeqFirstNet(buggy: true);
            using var scope = NewDisposeScope();
            var result = SanityChecks.CheckBatchIndependence(model, randn(6, 12));
            Assert.False(result.IsOk);
            Assert.NotEmpty(result.Leaks[0].DependsOn);
            Assert.DoesNotContain(result.Leaks[0].OutputSample, result.Leaks[0].DependsOn);
            var ex = Assert.Throws<BatchDependenceException>(() => result.ThrowIfFailed());
            var dependsOn = result.Leaks[0].DependsOn;
            Assert.Contains($"output of sample 0 depends on the {(dependsOn.Count == 1 ? "input of sample" : "inputs of samples")} {string.Join(", ", dependsOn)}", ex.Message);
            Assert.Contains("view/reshape used to reorder dimensions", ex.Message);
            Assert.Contains("permute", ex.Message);
        }

        [Fact]
        public void Batch_independence_of_a_model_that_ignores_its_input_passes_with_a_note()
        {
            using var scope = NewDisposeScope();
            var result = SanityChecks.CheckBatchIndependence(new IgnoresInputNet(), randn(4, 3));
            Assert.True(result.IsOk, result.Message);
            Assert.Contains("do not depend on the inputs of other samples", result.Message);
            Assert.Contains("the outputs of samples 0, 2, 3 do not depend on their own inputs (zero gradient)", result.Message);
        }

        [Fact]
        public void Batch_independence_rejects_unusable_inputs()
        {
            var model = new SeqFirstNet(buggy: false);
            using var scope = NewDisposeScope();
            Assert.Throws<ArgumentException>(() => SanityChecks.CheckBatchIndependence(model, randn(1, 12)));
            Assert.Throws<ArgumentException>(() => SanityChecks.CheckBatchIndependence(model, zeros(new long[] { 4, 12 }, dtype: int64)));
            Assert.Throws<ArgumentOutOfRangeException>(() => SanityChecks.CheckBatchIndependence(model, randn(4, 12), new[] { 4 }));
        }

        [Fact]
        public void Mode_check_lists_modules_in_the_wrong_mode()
        {
            var model = Classifier();
            Assert.True(SanityChecks.CheckModes(model, expectTraining: true).IsOk);

            model.eval();
            var dropout = model.named_modules().First(m => m.name == "drop").module;
            dropout.train();
            var report = SanityChecks.CheckModes(model, expectTraining: false);
            Assert.False(report.IsOk);
            var m = Assert.Single(report.Mismatched);
            Assert.Equal("drop", m.Path);
            Assert.Equal("Dropout", m.TypeName);
            var ex = Assert.Throws<ModuleModeException>(() => report.ThrowIfFailed());
            Assert.Contains("Expected every module of 'Sequential' to be in evaluation mode, but 1 is in training mode: drop (Dropout)", ex.Message);
            Assert.True(SanityChecks.CheckModes(model, false, except: new[] { "drop" }).IsOk);

            var training = SanityChecks.CheckModes(model, expectTraining: true);
            Assert.Contains("<root Sequential> (Sequential)", training.Message);
            Assert.Contains("model.train() was not called again", training.Message);
        }

        [Fact]
        public void Sanity_checks_leak_no_tensors()
        {
            manual_seed(27);
            var model = new SeqFirstNet(buggy: true);
            var clf = Classifier();
            using var optimizer = optim.Adam(clf.parameters(), lr: 0.01);
            var x = randn(4, 12);
            var cx = randn(4, 20);
            var cy = randint(0, 10, new long[] { 4 });
            SanityChecks.CheckBatchIndependence(model, x);
            SanityChecks.OverfitOneBatch(clf, optimizer, cx, cy, CrossEntropy, steps: 2);
            long before = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
            SanityChecks.CheckBatchIndependence(model, x);
            SanityChecks.OverfitOneBatch(clf, optimizer, cx, cy, CrossEntropy, steps: 3);
            SanityChecks.CheckInitialLoss(clf, cx, cy, CrossEntropy, 10);
            Assert.Equal(before, DisposeScopeManager.Statistics.ThreadTotalLiveCount);
            foreach (var t in new[] { x, cx, cy }) t.Dispose();
        }

        [Fact]
        public void Batch_independence_explains_an_output_detached_from_the_input()
        {
            using var scope = NewDisposeScope();
            var ex = Assert.Throws<ArgumentException>(() => SanityChecks.CheckBatchIndependence(new DetachingNet(), randn(4, 3)));
            Assert.Contains("DetachingNet", ex.Message);
            Assert.Contains("does not require grad", ex.Message);
            Assert.Contains("detach", ex.Message);
        }

        [Fact]
        public void Unreduced_losses_are_rejected_with_a_clear_message()
        {
            manual_seed(28);
            var model = Classifier();
            using var scope = NewDisposeScope();
            var ex = Assert.Throws<ArgumentException>(() => SanityChecks.CheckInitialLoss(model, randn(8, 20), randint(0, 10, new long[] { 8 }),
                (o, t) => nn.functional.cross_entropy(o, t, reduction: nn.Reduction.None), classes: 10));
            Assert.Contains("[8]", ex.Message);
            Assert.Contains("single value", ex.Message);
            Assert.Contains("reduction", ex.Message);

            using var optimizer = optim.SGD(model.parameters(), 0.1);
            var overfit = Assert.Throws<ArgumentException>(() => SanityChecks.OverfitOneBatch(model, optimizer, randn(8, 20), randint(0, 10, new long[] { 8 }),
                (o, t) => nn.functional.cross_entropy(o, t, reduction: nn.Reduction.None), steps: 2));
            Assert.Contains("OverfitOneBatch trains on the mean loss", overfit.Message);
            Assert.Contains("[8]", overfit.Message);
        }

        private static List<double> TrainSteps(nn.Module<Tensor, Tensor> model, optim.Optimizer optimizer, Tensor x, Tensor y, int steps)
        {
            var losses = new List<double>();
            for (int i = 0; i < steps; i++)
            {
                using var scope = NewDisposeScope();
                optimizer.zero_grad();
                var loss = CrossEntropy(model.call(x), y);
                loss.backward();
                optimizer.step();
                losses.Add(loss.ToDouble());
            }
            return losses;
        }
    }
}
