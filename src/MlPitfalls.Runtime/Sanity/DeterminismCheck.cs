using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using MlPitfalls.Runtime.Internal;
using TorchSharp;

namespace MlPitfalls.Runtime.Sanity
{
    public static partial class SanityChecks
    {
        /// <summary>
        /// Runs <paramref name="steps"/> training steps twice from the same seed and the same model and optimizer state, and
        /// reports the first step at which the losses or the parameters differ. The model, its gradients and modes, the
        /// optimizer state and the CPU random generator are restored afterwards.
        /// </summary>
        /// <param name="model">The model (trained in training mode during the check).</param>
        /// <param name="optimizer">A managed TorchSharp optimizer (SGD, Adam, AdamW, RMSProp, ...).</param>
        /// <param name="input">One batch of inputs.</param>
        /// <param name="target">Its targets.</param>
        /// <param name="lossFunction">Computes the loss from the model's output and the target.</param>
        /// <param name="steps">Training steps per run (at least 1).</param>
        /// <param name="seed">The seed both runs start from.</param>
        public static DeterminismResult CheckDeterminism(torch.nn.Module<torch.Tensor, torch.Tensor> model, torch.optim.Optimizer optimizer, torch.Tensor input, torch.Tensor target,
            Func<torch.Tensor, torch.Tensor, torch.Tensor> lossFunction, int steps = 3, int seed = 0)
        {
            if (model is null) throw new ArgumentNullException(nameof(model));
            TorchLoad.EnsureLoaded();
            if (optimizer is null) throw new ArgumentNullException(nameof(optimizer));
            if (input is null) throw new ArgumentNullException(nameof(input));
            if (target is null) throw new ArgumentNullException(nameof(target));
            if (lossFunction is null) throw new ArgumentNullException(nameof(lossFunction));
            if (steps < 1) throw new ArgumentOutOfRangeException(nameof(steps), steps, "CheckDeterminism needs at least 1 step per run.");
            if (optimizer is not TorchSharp.Modules.OptimizerHelper helper)
            {
                throw new NotSupportedException($"CheckDeterminism cannot save and restore the state of {optimizer.GetType().Name}; pass a managed TorchSharp optimizer, " +
                                                "e.g. torch.optim.Adam(model.parameters()).");
            }

            using var snapshot = ModelSnapshot.Take(model);
            using var generator = torch.Generator.Default;
            using var rngState = generator.get_state().DetachFromDisposeScope();
            var optimizerState = new MemoryStream();
            using (var writer = new BinaryWriter(optimizerState, System.Text.Encoding.UTF8, leaveOpen: true)) helper.save_state_dict(writer);
            var parameters = model.named_parameters().ToList();

            void Reset()
            {
                snapshot.Restore();
                optimizerState.Position = 0;
                using var reader = new BinaryReader(optimizerState, System.Text.Encoding.UTF8, leaveOpen: true);
                helper.load_state_dict(reader);
            }

            // One run: the losses, and the parameters after each step (clones, kept until the comparison is done).
            (List<double> Losses, List<torch.Tensor[]> Parameters) Run()
            {
                Reset();
                torch.manual_seed(seed);
                var losses = new List<double>(steps);
                var after = new List<torch.Tensor[]>(steps);
                model.train();
                using var grad = torch.enable_grad();
                for (int i = 0; i < steps; i++)
                {
                    using var scope = torch.NewDisposeScope();
                    optimizer.zero_grad();
                    var loss = lossFunction(model.call(input), target);
                    if (loss.numel() != 1) throw NotASingleLoss(loss, $"{nameof(CheckDeterminism)} trains on the mean loss over the batch");
                    loss.backward();
                    optimizer.step();
                    losses.Add(loss.ToDouble());
                    using (torch.no_grad()) after.Add(parameters.Select(p => p.parameter.detach().clone().DetachFromDisposeScope()).ToArray());
                }
                return (losses, after);
            }

            List<torch.Tensor[]>? first = null, second = null;
            try
            {
                var a = Run();
                first = a.Parameters;
                var b = Run();
                second = b.Parameters;
                for (int i = 0; i < steps; i++)
                {
                    bool lossDiffers = a.Losses[i].CompareTo(b.Losses[i]) != 0;
                    var differing = new List<string>();
                    double largest = 0;
                    for (int k = 0; k < parameters.Count; k++)
                    {
                        using var difference = (first[i][k] - second[i][k]).abs().max();
                        var d = difference.ToDouble();
                        if (d != 0 || double.IsNaN(d))
                        {
                            differing.Add(parameters[k].name);
                            largest = Math.Max(largest, double.IsNaN(d) ? double.PositiveInfinity : d);
                        }
                    }
                    if (lossDiffers || differing.Count > 0)
                    {
                        return new DeterminismResult(false, steps, i + 1, a.Losses, b.Losses, differing,
                            DifferenceMessage(model, steps, i + 1, a.Losses[i], b.Losses[i], differing, largest));
                    }
                }

                return new DeterminismResult(true, steps, null, a.Losses, b.Losses, Array.Empty<string>(),
                    $"Determinism: two runs of {steps} training step{(steps == 1 ? "" : "s")} from seed {seed} and the same state gave identical losses and parameters. OK — " +
                    "model, gradients, optimizer state and the random generator were restored.");
            }
            finally
            {
                foreach (var run in new[] { first, second })
                {
                    if (run is null) continue;
                    foreach (var step in run) foreach (var t in step) t.Dispose();
                }
                Reset();
                generator.set_state(rngState);
            }
        }

        private static string DifferenceMessage(torch.nn.Module model, int steps, int step, double lossA, double lossB, List<string> differing, double largest)
        {
            var parts = new List<string>();
            if (lossA.CompareTo(lossB) != 0) parts.Add($"the losses differ ({lossA.ToString("R", Inv)} vs {lossB.ToString("R", Inv)})");
            if (differing.Count > 0)
            {
                parts.Add($"{differing.Count} parameter{(differing.Count == 1 ? "" : "s")} differ{(differing.Count == 1 ? "s" : "")} " +
                          $"(largest difference {largest.ToString("0.##e+0", Inv)}): {string.Join(", ", differing.Take(8))}{(differing.Count > 8 ? ", ..." : "")}");
            }

            return $"Determinism failed: two runs of {steps} training steps of '{model.GetType().Name}' from the same seed and state first differ at step {step}: " +
                   $"{string.Join("; ", parts)}.{Environment.NewLine}" +
                   "What to check: randomness the seed does not reach — a System.Random or data shuffling created without a fixed seed, " +
                   "a dropout or augmentation drawing from another generator, multi-threaded CPU reductions (Reproducibility.Seed(seed, deterministic: true) " +
                   "uses one thread), or nondeterministic CUDA kernels (scatter/index_add, some convolution backward passes), which TorchSharp 0.107.0 " +
                   "cannot switch off. Model, gradients, optimizer state and the random generator were restored.";
        }
    }

    /// <summary>The result of <see cref="SanityChecks.CheckDeterminism"/>.</summary>
    public sealed class DeterminismResult
    {
        internal DeterminismResult(bool ok, int steps, int? firstDifferentStep, IReadOnlyList<double> firstRun, IReadOnlyList<double> secondRun,
            IReadOnlyList<string> differingParameters, string message)
        {
            IsOk = ok;
            Steps = steps;
            FirstDifferentStep = firstDifferentStep;
            FirstRunLosses = firstRun;
            SecondRunLosses = secondRun;
            DifferingParameters = differingParameters;
            Message = message;
        }

        /// <summary>True when both runs gave identical losses and parameters at every step.</summary>
        public bool IsOk { get; }

        /// <summary>Steps per run.</summary>
        public int Steps { get; }

        /// <summary>The first step (1-based) at which the runs differ, or null.</summary>
        public int? FirstDifferentStep { get; }

        /// <summary>The losses of the first run.</summary>
        public IReadOnlyList<double> FirstRunLosses { get; }

        /// <summary>The losses of the second run.</summary>
        public IReadOnlyList<double> SecondRunLosses { get; }

        /// <summary>At the first differing step: the parameters that differ.</summary>
        public IReadOnlyList<string> DifferingParameters { get; }

        /// <summary>Explanation.</summary>
        public string Message { get; }

        /// <summary>Throws <see cref="NondeterminismException"/> when not OK; returns this otherwise.</summary>
        public DeterminismResult ThrowIfFailed() => IsOk ? this : throw new NondeterminismException(this);

        /// <inheritdoc />
        public override string ToString() => Message;
    }

    /// <summary>Two training runs from the same seed and state differ.</summary>
    public sealed class NondeterminismException : RuntimeCheckException
    {
        internal NondeterminismException(DeterminismResult result) : base(result.Message) => Result = result;

        /// <summary>The check's result.</summary>
        public DeterminismResult Result { get; }
    }
}
