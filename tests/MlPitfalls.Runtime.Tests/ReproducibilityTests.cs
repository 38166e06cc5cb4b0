using System;
using System.Linq;
using MlPitfalls.Runtime.Sanity;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace MlPitfalls.Runtime.Tests
{
    [Collection(TorchCollection.Name)]
    public class ReproducibilityTests
    {
        [Fact]
        public void Seed_reproduces_tensors_layers_dropout_and_the_returned_random()
        {
            var first = Reproducibility.Seed(5);
            var a = (randn(3), nn.Linear(2, 2).weight!.detach().clone(), nn.functional.dropout(ones(100), 0.5));
            var r1 = first.Random.Next();
            var second = Reproducibility.Seed(5);
            var b = (randn(3), nn.Linear(2, 2).weight!.detach().clone(), nn.functional.dropout(ones(100), 0.5));

            Assert.True(a.Item1.equal(b.Item1).all().item<bool>());
            Assert.True(a.Item2.equal(b.Item2).all().item<bool>());
            Assert.True(a.Item3.equal(b.Item3).all().item<bool>());
            Assert.Equal(r1, second.Random.Next());
            Assert.Equal(new Random(5).Next(), r1);
            Assert.Contains("torch.manual_seed(5)", second.ToString());
            Assert.False(second.CudaSeeded); // no GPU here
        }

        [Fact]
        public void Deterministic_seeding_uses_one_cpu_thread_and_says_so()
        {
            var threads = get_num_threads();
            try
            {
                var result = Reproducibility.Seed(1, deterministic: true);
                Assert.Equal(1, get_num_threads());
                Assert.Contains(result.Actions, a => a.StartsWith("torch.set_num_threads(1)", StringComparison.Ordinal));
            }
            finally
            {
                set_num_threads(threads);
            }
        }

        private static Tensor Loss(Tensor output, Tensor target) => nn.functional.cross_entropy(output, target);

        [Fact]
        public void A_deterministic_training_step_passes_and_the_model_and_optimizer_are_restored()
        {
            manual_seed(3);
            var model = nn.Sequential(("fc", nn.Linear(4, 8)), ("drop", nn.Dropout(0.3)), ("head", nn.Linear(8, 3)));
            var optimizer = optim.Adam(model.parameters(), 0.01);
            var x = randn(16, 4);
            var y = randint(0, 3, 16);
            var before = model.parameters().Select(p => p.detach().clone()).ToList();

            var result = SanityChecks.CheckDeterminism(model, optimizer, x, y, Loss, steps: 3, seed: 11);

            Assert.True(result.IsOk, result.Message);
            Assert.Equal(result.FirstRunLosses, result.SecondRunLosses);
            Assert.Null(result.FirstDifferentStep);
            Assert.All(model.parameters().Zip(before), pair => Assert.True(pair.First.detach().equal(pair.Second).all().item<bool>()));
        }

        /// <summary>Adds noise from an unseeded System.Random: what a seed on torch's generator cannot reach.</summary>
        private sealed class NoisyNet : nn.Module<Tensor, Tensor>
        {
            private readonly TorchSharp.Modules.Linear fc = nn.Linear(4, 3);
            private readonly Random _random = new();

            public NoisyNet() : base(nameof(NoisyNet)) { RegisterComponents(); }

            public override Tensor forward(Tensor x) => fc.call(x) * (1 + (float)_random.NextDouble());
        }

        [Fact]
        public void Randomness_the_seed_does_not_reach_is_reported_at_the_first_step_that_differs()
        {
            manual_seed(4);
            var model = new NoisyNet();
            var optimizer = optim.SGD(model.parameters(), 0.1);
            var result = SanityChecks.CheckDeterminism(model, optimizer, randn(8, 4), randint(0, 3, 8), Loss, steps: 2);

            Assert.False(result.IsOk);
            Assert.Equal(1, result.FirstDifferentStep);
            Assert.Contains("first differ at step 1: the losses differ", result.Message);
            Assert.Contains("a System.Random or data shuffling created without a fixed seed", result.Message);
            Assert.Throws<NondeterminismException>(() => result.ThrowIfFailed());
        }
    }
}
