using BenchmarkDotNet.Attributes;
using MlPitfalls.Runtime.NonFinite;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MlPitfalls.Runtime.Benchmarks
{
    /// <summary>
    /// One training step of a small CNN (two conv blocks + linear head) on a batch of 64 MNIST-sized images, on the CPU:
    /// without a guard, with a NaN guard checking every step (forward outputs, loss and gradients), and checking every 100th step.
    /// The every-step guard reads its forward checks back once per pass (the default); a fourth variant reads them after every
    /// module (<see cref="NonFiniteSyncMode.PerModule"/>, the behaviour before deferred checking).
    /// </summary>
    public class TrainingStepBenchmarks
    {
        public const int Batch = 64;
        private Tensor _x = null!;
        private Tensor _y = null!;
        private (Sequential Model, optim.Optimizer Optimizer) _plain, _every, _sampled, _perModule;
        private NonFiniteGuard _guardEvery = null!;
        private NonFiniteGuard _guardSampled = null!;
        private NonFiniteGuard _guardPerModule = null!;

        [GlobalSetup]
        public void Setup()
        {
            // One intra-op thread: on a small shared machine, libtorch's OpenMP threads contending with other processes make
            // step times swing by several times; one thread keeps the comparison stable. The guard's extra work (reductions)
            // scales with threads the same way the step does.
            set_num_threads(1);
            manual_seed(0);
            _x = randn(Batch, 1, 28, 28);
            _y = randint(0, 10, new long[] { Batch });
            _plain = Create();
            _every = Create();
            _sampled = Create();
            _perModule = Create();
            _guardEvery = NonFiniteGuard.Attach(_every.Model);
            _guardSampled = NonFiniteGuard.Attach(_sampled.Model, new NonFiniteGuardOptions { CheckEvery = 100 });
            _guardPerModule = NonFiniteGuard.Attach(_perModule.Model, new NonFiniteGuardOptions { SyncMode = NonFiniteSyncMode.PerModule });
        }

        [GlobalCleanup]
        public void Cleanup()
        {
            if (_guardEvery.Step == 0 || _guardSampled.Step == 0 || _guardPerModule.Step == 0)
            {
                throw new System.InvalidOperationException("A guard saw no forward pass: the benchmark did not measure the guarded step.");
            }
            _guardEvery.Dispose();
            _guardSampled.Dispose();
            _guardPerModule.Dispose();
        }

        [Benchmark(Baseline = true, Description = "step")]
        public float Step() => TrainStep(_plain.Model, _plain.Optimizer, null);

        [Benchmark(Description = "step + NaN guard every step")]
        public float StepGuardEveryStep() => TrainStep(_every.Model, _every.Optimizer, _guardEvery);

        [Benchmark(Description = "step + NaN guard every 100th step")]
        public float StepGuardEvery100() => TrainStep(_sampled.Model, _sampled.Optimizer, _guardSampled);

        [Benchmark(Description = "step + NaN guard every step, read back per module")]
        public float StepGuardPerModule() => TrainStep(_perModule.Model, _perModule.Optimizer, _guardPerModule);

        internal float TrainStep(Sequential model, optim.Optimizer optimizer, NonFiniteGuard? guard)
        {
            using var scope = NewDisposeScope();
            optimizer.zero_grad();
            var loss = nn.functional.cross_entropy(model.call(_x), _y);
            if (guard is null)
            {
                loss.backward();
            }
            else
            {
                guard.Check(loss);
                guard.Backward(loss); // backward + gradient check
            }
            optimizer.step();
            return loss.ToSingle();
        }

        internal void TrainStepWithNaNInput(Sequential model, optim.Optimizer optimizer, NonFiniteGuard guard)
        {
            using var scope = NewDisposeScope();
            var x = _x.clone();
            x[0, 0, 0, 0] = tensor(float.NaN);
            var loss = nn.functional.cross_entropy(model.call(x), _y);
            guard.Check(loss);
        }

        internal (Sequential Model, optim.Optimizer Optimizer) Plain => _plain;

        internal (Sequential Model, optim.Optimizer Optimizer) Every => _every;

        internal (Sequential Model, optim.Optimizer Optimizer) Sampled => _sampled;

        internal NonFiniteGuard GuardEvery => _guardEvery;

        internal NonFiniteGuard GuardSampled => _guardSampled;

        internal (Sequential Model, optim.Optimizer Optimizer) PerModule => _perModule;

        internal NonFiniteGuard GuardPerModule => _guardPerModule;

        private static (Sequential, optim.Optimizer) Create()
        {
            var model = nn.Sequential(
                ("conv1", nn.Conv2d(1, 16, 3, padding: 1)),
                ("relu1", nn.ReLU()),
                ("pool1", nn.MaxPool2d(2)),
                ("conv2", nn.Conv2d(16, 32, 3, padding: 1)),
                ("relu2", nn.ReLU()),
                ("pool2", nn.MaxPool2d(2)),
                ("flatten", nn.Flatten()),
                ("fc", nn.Linear(32 * 7 * 7, 10)));
            return (model, optim.SGD(model.parameters(), 0.01));
        }
    }
}
