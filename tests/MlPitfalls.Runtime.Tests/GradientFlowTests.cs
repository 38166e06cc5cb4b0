using System.Linq;
using MlPitfalls.Runtime.Gradients;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace MlPitfalls.Runtime.Tests
{
    [Collection(TorchCollection.Name)]
    public class GradientFlowTests
    {
        [Fact]
        public void Healthy_model_reports_every_parameter_with_layer_norms()
        {
            manual_seed(10);
            var model = nn.Sequential(("fc1", nn.Linear(4, 8)), ("act", nn.Tanh()), ("fc2", nn.Linear(8, 3)));
            using var scope = NewDisposeScope();
            var loss = model.call(randn(6, 4)).pow(2).mean();
            loss.backward();

            var report = model.AssertGradientsFlow();

            Assert.True(report.IsHealthy);
            Assert.Equal(new[] { "fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias" }, report.Parameters.Select(p => p.Name).ToArray());
            Assert.All(report.Parameters, p => Assert.Equal(GradientStatus.Ok, p.Status));
            Assert.All(report.Parameters, p => Assert.True(p.Norm > 0));
            Assert.Equal(new[] { "fc1", "fc2" }, report.Layers.Select(l => l.Layer).ToArray());
            var fc2 = report.Parameters.Where(p => p.Name.StartsWith("fc2")).Select(p => p.Norm * p.Norm).Sum();
            Assert.Equal(System.Math.Sqrt(fc2), report.Layers[1].Norm, 6);
            Assert.Contains("Per-layer gradient norms", report.ToString());
        }

        [Fact]
        public void Unused_frozen_and_missing_gradients_are_told_apart()
        {
            manual_seed(11);
            var model = new UnusedLayerNet();
            using var scope = NewDisposeScope();
            model.call(randn(2, 4)).sum().backward();

            var report = GradientFlow.Analyze(model);
            var byName = report.Parameters.ToDictionary(p => p.Name, p => p.Status);
            Assert.Equal(GradientStatus.Ok, byName["fc.weight"]);
            Assert.Equal(GradientStatus.NoGradient, byName["unused.weight"]);
            Assert.Equal(GradientStatus.NoGradient, byName["unused.bias"]);
            Assert.Equal(GradientStatus.Frozen, byName["frozen.weight"]);
            Assert.False(report.IsHealthy);

            var ex = Assert.Throws<GradientFlowException>(() => model.AssertGradientsFlow());
            Assert.Contains("no gradient: unused.weight, unused.bias", ex.Message);
            Assert.Contains("not used in forward()", ex.Message);
            Assert.Contains("2 frozen", ex.Message); // frozen.weight and frozen.bias
            Assert.DoesNotContain("fc.weight,", ex.Message);
        }

        [Fact]
        public void All_zero_and_nonfinite_gradients()
        {
            manual_seed(12);
            var model = nn.Sequential(("a", nn.Linear(3, 3)), ("b", nn.Linear(3, 1)));
            using var scope = NewDisposeScope();
            (model.call(randn(4, 3)) * 0).sum().backward();
            var zero = GradientFlow.Analyze(model);
            Assert.All(zero.Parameters, p => Assert.Equal(GradientStatus.AllZero, p.Status));
            Assert.Contains("all-zero gradient: a.weight, a.bias, b.weight, b.bias", zero.ToString());

            // The same report taken after optimizer.zero_grad() (zeroes in place) must point at the call order too.
            using var optimizer = optim.SGD(model.parameters(), 0.1);
            model.call(randn(4, 3)).sum().backward();
            optimizer.zero_grad();
            var afterZeroGrad = GradientFlow.Analyze(model);
            Assert.All(afterZeroGrad.Parameters, p => Assert.Equal(GradientStatus.AllZero, p.Status));
            Assert.Contains("before optimizer.zero_grad()", afterZeroGrad.ToString());

            model.zero_grad();
            (model.call(randn(4, 3)) * 0).sqrt().sum().backward();
            var nan = GradientFlow.Analyze(model);
            Assert.All(nan.Parameters, p => Assert.Equal(GradientStatus.NonFinite, p.Status));
            Assert.Contains("NaN/Inf gradient", nan.ToString());
        }

        [Fact]
        public void Model_without_registered_parameters_gets_its_own_message()
        {
            var model = new UnregisteredNet();
            using var scope = NewDisposeScope();
            var ex = Assert.Throws<GradientFlowException>(() => model.AssertGradientsFlow());
            Assert.True(ex.Report.ModelHasNoParameters);
            Assert.Contains("Model 'UnregisteredNet' has no parameters that TorchSharp knows about", ex.Message);
            Assert.Contains("fc1 (Linear), fc2 (Linear)", ex.Message);
            Assert.Contains("RegisterComponents()", ex.Message);
        }

        [Fact]
        public void Parameters_missing_from_the_optimizer_are_reported()
        {
            manual_seed(13);
            var model = nn.Sequential(("body", nn.Linear(3, 3)), ("head", nn.Linear(3, 1)));
            var bodyOnly = ((nn.Module)model.named_children().First().module).parameters();
            using var optimizer = optim.SGD(bodyOnly, 0.1);
            using var scope = NewDisposeScope();
            model.call(randn(4, 3)).sum().backward();

            var report = GradientFlow.Analyze(model, optimizer);
            var byName = report.Parameters.ToDictionary(p => p.Name, p => p.Status);
            Assert.Equal(GradientStatus.Ok, byName["body.weight"]);
            Assert.Equal(GradientStatus.NotInOptimizer, byName["head.weight"]);
            Assert.Equal(GradientStatus.NotInOptimizer, byName["head.bias"]);
            Assert.Contains("is not in the optimizer: head.weight, head.bias", report.ToString());
        }

        [Fact]
        public void Analysis_leaks_no_tensors()
        {
            manual_seed(14);
            var model = new UnusedLayerNet();
            var x = randn(2, 4);
            var y = model.call(x);
            var loss = y.sum();
            loss.backward();
            GradientFlow.Analyze(model);
            long before = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
            for (int i = 0; i < 3; i++) GradientFlow.Analyze(model).ToString();
            Assert.Equal(before, DisposeScopeManager.Statistics.ThreadTotalLiveCount);
            foreach (var t in new[] { x, y, loss }) t.Dispose();
        }

        [Fact]
        public void Layers_kept_in_a_list_are_reported_as_used_but_never_trained()
        {
            manual_seed(15);
            var model = new ListLayersNet();
            var x = randn(3, 4);
            var y = model.call(x);
            var loss = y.sum();
            loss.backward();

            var report = GradientFlow.Analyze(model);
            // named_parameters() only knows the head, and its gradients are fine: the parameter table alone looks healthy.
            Assert.Equal(new[] { "head.weight", "head.bias" }, report.Parameters.Select(p => p.Name).ToArray());
            Assert.Empty(report.Problems);
            Assert.Equal(new[] { "hidden[0] (Linear)", "hidden[1] (Linear)" }, report.UnregisteredModulesInUse.ToArray()); // 'spare' is unused
            Assert.False(report.IsHealthy);

            var ex = Assert.Throws<GradientFlowException>(() => model.AssertGradientsFlow());
            Assert.Contains("used in forward but never registered, so never trained: hidden[0] (Linear), hidden[1] (Linear)", ex.Message);
            Assert.Contains("use ModuleList", ex.Message);

            long before = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
            GradientFlow.Analyze(model).ToString();
            Assert.Equal(before, DisposeScopeManager.Statistics.ThreadTotalLiveCount);
            foreach (var t in new[] { x, y, loss }) t.Dispose();
        }
    }
}
