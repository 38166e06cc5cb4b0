using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
using MlPitfalls.Runtime.Internal;
using TorchSharp;

namespace MlPitfalls.Runtime.Sanity
{
    /// <summary>
    /// Training sanity checks from Karpathy's "A Recipe for Training Neural Networks": loss at initialisation, overfitting one batch,
    /// batch independence and train/eval mode. Each returns a result with <c>IsOk</c>, a message, and <c>ThrowIfFailed()</c>.
    /// All of them leave the model (and the optimizer) as they found them.
    /// </summary>
    public static partial class SanityChecks
    {
        private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

        /// <summary>
        /// Compares a classification loss measured at initialisation with −ln(1/C) = ln(C), the cross-entropy of a model that
        /// predicts the uniform distribution.
        /// </summary>
        /// <param name="loss">The mean cross-entropy of the untrained model on a batch.</param>
        /// <param name="classes">Number of classes C (at least 2).</param>
        /// <param name="tolerance">Allowed relative deviation from ln(C); default 0.25 (25%).</param>
        public static InitialLossResult CheckInitialLoss(double loss, int classes, double tolerance = 0.25)
        {
            if (classes < 2) throw new ArgumentOutOfRangeException(nameof(classes), classes, "A classification loss needs at least 2 classes.");
            double expected = Math.Log(classes);
            double implied = Math.Exp(loss);
            string head = string.Format(Inv, "Initial loss {0} vs expected -ln(1/{1}) = {2:0.####} for {1} classes", Number(loss), classes, expected);
            if (!double.IsFinite(loss))
            {
                return new InitialLossResult(false, loss, expected, classes,
                    head + " — the loss is not finite before any training." + Environment.NewLine +
                    "What to check: log of 0 in the loss (softmax().log() instead of log_softmax, BCELoss on exact 0/1), NaN in the data, or uninitialised weights (torch.empty). A NonFiniteGuard names the module.");
            }
            double deviation = Math.Abs(loss - expected) / expected;
            if (deviation <= tolerance)
            {
                return new InitialLossResult(true, loss, expected, classes, head + string.Format(Inv, ": within {0:0%}. OK.", tolerance));
            }
            // exp(-loss) is the (geometric) mean probability the model gives the correct class: meaningful for any loss value,
            // unlike "a uniform guess over exp(loss) classes", which runs into astronomical numbers for a far-off loss.
            string correctClass = string.Format(Inv, "the model gives the correct class a mean probability of exp(-loss) = {0}, where a uniform guess gives 1/{1} = {2}",
                Probability(Math.Exp(-loss)), classes, Probability(1.0 / classes));
            string message = loss < 0
                ? head + ": negative, which a cross-entropy of probabilities can never be." + Environment.NewLine +
                  "What to check: the loss is not computed on log-probabilities — NLLLoss given raw logits (apply log_softmax, or use cross_entropy), " +
                  "or a hand-written loss with the wrong sign."
                : loss > expected
                ? head + string.Format(Inv, ": {0} too high. The untrained model is confidently wrong: {1}.", HowFar(loss, expected, deviation), correctClass) + Environment.NewLine +
                  "What to check: the logits are too large at initialisation (initialise the last layer with smaller weights, or zero it; normalise the inputs), " +
                  "the loss is summed instead of averaged (reduction), or C is not the number of classes the model outputs."
                : head + string.Format(Inv, ": {0:0%} too low for a model that has not learned anything: {1}.", deviation, correctClass) + Environment.NewLine +
                  "What to check: the labels leak into the inputs, the targets are not what the loss expects (class indices vs one-hot/probabilities), " +
                  "C is not the real number of classes (ignored or unused classes), or the model was already trained/loaded.";
            return new InitialLossResult(false, loss, expected, classes, message);
        }

        /// <summary>"25%" for a moderate deviation, "18 times" or "4.34e+5 times" beyond 10x.</summary>
        private static string HowFar(double loss, double expected, double deviation)
        {
            if (deviation <= 9) return deviation.ToString("0%", Inv);
            var ratio = loss / expected;
            return (ratio < 1e4 ? ratio.ToString("0.#", Inv) : ratio.ToString("0.##e+0", Inv)) + " times";
        }

        /// <summary>A probability for a message: 0.1, 0.0312, 1.2e-17.</summary>
        private static string Probability(double p) => p == 0 ? "0" : p >= 1e-3 ? p.ToString("0.####", Inv) : p.ToString("0.##e+0", Inv);

        /// <summary>A loss for a message: 2.3026, 1.7e+6, 1e-7; never "-0" or a 20-digit number.</summary>
        private static string Number(double x) =>
            x == 0 ? "0"
            : !double.IsFinite(x) ? x.ToString(Inv)
            : Math.Abs(x) >= 1e6 || Math.Abs(x) < 1e-4 ? x.ToString("0.##e+0", Inv)
            : x.ToString("0.####", Inv);

        private static string Plural(int n, string noun) => n == 1 ? $"1 {noun}" : $"{n} {noun}s";

        /// <summary>
        /// Computes the loss of <paramref name="model"/> on one batch without training (no gradients, current mode) and compares it with ln(C).
        /// </summary>
        public static InitialLossResult CheckInitialLoss(torch.nn.Module<torch.Tensor, torch.Tensor> model, torch.Tensor input, torch.Tensor target,
            Func<torch.Tensor, torch.Tensor, torch.Tensor> lossFunction, int classes, double tolerance = 0.25)
        {
            if (model is null) throw new ArgumentNullException(nameof(model));
            TorchLoad.EnsureLoaded();
            if (lossFunction is null) throw new ArgumentNullException(nameof(lossFunction));
            double loss;
            using (var scope = torch.NewDisposeScope())
            using (torch.no_grad())
            {
                var output = model.call(input);
                var l = lossFunction(output, target);
                if (l.numel() != 1) throw NotASingleLoss(l, $"{nameof(CheckInitialLoss)} compares the mean loss over the batch with ln(C)");
                loss = l.ToDouble();
            }
            return CheckInitialLoss(loss, classes, tolerance);
        }

        /// <summary>
        /// Trains on one batch for <paramref name="steps"/> steps and reports whether the loss gets down to <paramref name="targetLoss"/>.
        /// Afterwards the model's parameters, buffers, gradients and train/eval modes, the optimizer's state (moments, step counts,
        /// learning rates) and the default CPU random generator (dropout masks) are restored exactly, so it is safe to call before real training.
        /// </summary>
        /// <param name="model">The model.</param>
        /// <param name="optimizer">The optimizer that trains it: a managed TorchSharp optimizer (SGD, Adam, AdamW, RMSProp, ...),
        /// whose state can be saved and restored.</param>
        /// <param name="input">One batch of inputs.</param>
        /// <param name="target">Its targets.</param>
        /// <param name="lossFunction">(output, target) → scalar loss.</param>
        /// <param name="steps">Number of optimisation steps (default 100).</param>
        /// <param name="targetLoss">The loss to reach (default 0.05).</param>
        /// <exception cref="NotSupportedException">The optimizer's state cannot be snapshotted.</exception>
        public static OverfitResult OverfitOneBatch(torch.nn.Module<torch.Tensor, torch.Tensor> model, torch.optim.Optimizer optimizer, torch.Tensor input, torch.Tensor target,
            Func<torch.Tensor, torch.Tensor, torch.Tensor> lossFunction, int steps = 100, double targetLoss = 0.05)
        {
            if (model is null) throw new ArgumentNullException(nameof(model));
            TorchLoad.EnsureLoaded();
            if (optimizer is null) throw new ArgumentNullException(nameof(optimizer));
            if (lossFunction is null) throw new ArgumentNullException(nameof(lossFunction));
            if (steps < 1) throw new ArgumentOutOfRangeException(nameof(steps), steps, "OverfitOneBatch needs at least 1 training step.");
            if (optimizer is not TorchSharp.Modules.OptimizerHelper helper)
            {
                throw new NotSupportedException($"OverfitOneBatch cannot save and restore the state of the optimizer '{optimizer.GetType().Name}'; it supports the managed TorchSharp optimizers (SGD, Adam, AdamW, RMSProp, ...). Pass one of those for the check, e.g. torch.optim.Adam(model.parameters()): the model is restored afterwards either way.");
            }

            if (!model.parameters().Any())
            {
                throw new ArgumentException(
                    $"Model '{model.GetType().Name}' has no parameters that TorchSharp knows about, so there is nothing to train and OverfitOneBatch cannot succeed. " +
                    "A custom module must call RegisterComponents() at the end of its constructor (layers in a List need a ModuleList); " +
                    "GradientFlow.Analyze(model) lists the fields that were never registered.", nameof(model));
            }

            var losses = new List<double>(steps);
            // Gradient flow is watched during the trial: a parameter that never gets a gradient explains a failure better
            // than any learning-rate advice, and whether the loss still reaches the target by luck depends on the seed.
            var trainable = model.named_parameters().Where(p => p.parameter.requires_grad).ToList();
            var gotGradient = new bool[trainable.Count];
            using var snapshot = ModelSnapshot.Take(model);
            // Dropout in the trial steps draws from the default CPU generator; without restoring it, real training after the
            // check would see different dropout masks than training without it.
            using var generator = torch.Generator.Default;
            using var rngState = generator.get_state().DetachFromDisposeScope();
            var optimizerState = new MemoryStream();
            using (var writer = new BinaryWriter(optimizerState, System.Text.Encoding.UTF8, leaveOpen: true)) helper.save_state_dict(writer);
            try
            {
                model.train();
                using var grad = torch.enable_grad();
                for (int i = 0; i < steps; i++)
                {
                    using var scope = torch.NewDisposeScope();
                    optimizer.zero_grad();
                    var output = model.call(input);
                    var loss = lossFunction(output, target);
                    if (loss.numel() != 1) throw NotASingleLoss(loss, $"{nameof(OverfitOneBatch)} trains on the mean loss over the batch");
                    if (!loss.requires_grad)
                    {
                        throw new ArgumentException(
                            $"The loss does not require grad, so backward() cannot reach any parameter of '{model.GetType().Name}' and nothing can be trained. " +
                            "The path from the parameters to the loss is cut: a detach(), a no_grad()/inference_mode() block in forward() or in the loss function, " +
                            "values copied out (item(), data<T>()) into a new tensor, or every parameter frozen (requires_grad = false). The model and optimizer were restored.",
                            nameof(lossFunction));
                    }
                    loss.backward();
                    for (int p = 0; p < trainable.Count; p++)
                    {
                        if (!gotGradient[p] && trainable[p].parameter.grad is { IsInvalid: false }) gotGradient[p] = true;
                    }
                    optimizer.step();
                    losses.Add(loss.ToDouble());
                }
            }
            finally
            {
                optimizerState.Position = 0;
                using (var reader = new BinaryReader(optimizerState)) helper.load_state_dict(reader);
                snapshot.Restore();
                generator.set_state(rngState);
            }

            var withoutGradient = trainable.Where((p, index) => !gotGradient[index]).Select(p => p.name).ToList();
            bool one = withoutGradient.Count == 1;
            string noGradient = withoutGradient.Count == 0 ? "" :
                $"{(one ? "1 parameter" : $"{withoutGradient.Count} parameters")} never received a gradient {(steps == 1 ? "in the single step" : $"in any of the {steps} steps")}: {string.Join(", ", withoutGradient.Take(10))}" +
                (withoutGradient.Count > 10 ? $" and {withoutGradient.Count - 10} more" : "") +
                $". The path from {(one ? "it" : "them")} to the loss is cut (a detach(), a no_grad()/inference_mode() block in forward(), a layer whose output is not used), " +
                $"so {(one ? "it" : "they")} cannot learn whatever the learning rate; GradientFlow.Analyze(model, optimizer) after one backward() shows the whole picture.";
            double first = losses[0], last = losses[losses.Count - 1], best = losses.Min();
            bool ok = last <= targetLoss;
            string trend = string.Format(Inv, "loss {0} -> {1} in {2} (best {3}, target <= {4})", Number(first), Number(last), Plural(steps, "step"), Number(best), Number(targetLoss));
            string message;
            if (ok)
            {
                message = $"Overfit one batch: {trend}. OK — model, gradients and optimizer state were restored." +
                          (noGradient.Length == 0 ? "" : $"{Environment.NewLine}Note: {noGradient}");
            }
            else
            {
                string why = noGradient.Length > 0 ? noGradient
                    : !double.IsFinite(last) ? "the loss became non-finite: the learning rate is too high, or an operation is unstable (attach a NonFiniteGuard)."
                    : last > first ? "the loss went up: the learning rate is too high, or the sign of the loss is wrong (maximising)."
                    : best < first * 0.9 ? "the loss decreases but too slowly: more steps, a higher learning rate, or less regularisation (dropout, weight decay) may be needed; if it plateaus, the model lacks capacity."
                    : "the loss barely moves: the optimizer may not hold the model's parameters (GradientFlow.Analyze(model, optimizer) reports them), gradients may not reach the weights (detach/no_grad in forward), or the learning rate is far too low.";
                message = $"Overfit one batch failed: {trend}. A model that cannot memorise one batch has a bug or a configuration problem.{Environment.NewLine}" +
                          $"What to check: {why} Also check that the targets belong to the inputs and that the loss gets logits when it expects logits. " +
                          "Model, gradients and optimizer state were restored.";
            }
            return new OverfitResult(ok, losses, targetLoss, message, withoutGradient);
        }

        /// <summary>
        /// Checks that each output sample depends only on its own input sample: in evaluation mode (restored afterwards),
        /// the gradient of output i with respect to the input must be zero for every other sample. Catches
        /// <c>view</c>-instead-of-<c>permute</c> and other batch-mixing bugs. The model's parameter gradients are not touched.
        /// </summary>
        /// <param name="model">The model (its first input and output dimension is the batch).</param>
        /// <param name="input">A floating-point batch with at least 2 samples.</param>
        /// <param name="probes">Output samples to differentiate (one backward pass each). Default: first, middle and last.</param>
        /// <param name="allSamples">Differentiate every output sample (one backward pass per sample) instead of the probes.</param>
        public static BatchIndependenceResult CheckBatchIndependence(torch.nn.Module<torch.Tensor, torch.Tensor> model, torch.Tensor input, IReadOnlyList<int>? probes = null,
            bool allSamples = false)
        {
            if (model is null) throw new ArgumentNullException(nameof(model));
            TorchLoad.EnsureLoaded();
            if (input is null) throw new ArgumentNullException(nameof(input));
            if (!TensorText.IsFloating(input.dtype))
            {
                throw new ArgumentException($"CheckBatchIndependence needs a floating-point input to differentiate; got {input.dtype}. For token ids, check a model that starts after the embedding.", nameof(input));
            }
            long batch = input.ndim > 0 ? input.size(0) : 0;
            if (batch < 2) throw new ArgumentException($"CheckBatchIndependence needs a batch of at least 2 samples; the input has shape {TensorText.Shape(input.shape)}.", nameof(input));

            if (allSamples && probes is not null) throw new ArgumentException("Pass either probes or allSamples: true, not both.", nameof(allSamples));
            var probeList = (allSamples ? Enumerable.Range(0, (int)batch).ToArray() : probes ?? new[] { 0, (int)(batch / 2), (int)batch - 1 }).Distinct().ToList();
            foreach (var p in probeList)
            {
                if (p < 0 || p >= batch) throw new ArgumentOutOfRangeException(nameof(probes), p, $"Probe {p} is outside the batch: the input has {batch} samples, so a probe must be 0 to {batch - 1}.");
            }

            var modes = ModelSnapshot.Modes(model);
            var leaks = new List<BatchLeak>();
            var independentOfOwnInput = new List<int>();
            try
            {
                model.eval();
                using var scope = torch.NewDisposeScope();
                using var grad = torch.enable_grad();
                var x = input.detach().clone().requires_grad_(true);
                var y = model.call(x);
                if (y.ndim == 0 || y.size(0) != batch)
                {
                    throw new ArgumentException($"The output of '{model.GetType().Name}' has shape {TensorText.Shape(y.shape)}; its first dimension should be the batch size ({batch}), so batch independence cannot be checked.", nameof(model));
                }
                if (!y.requires_grad)
                {
                    // Checked here because libtorch's "does not require grad" error inside autograd.grad escapes TorchSharp 0.107.0
                    // and terminates the process instead of throwing.
                    throw new ArgumentException(
                        $"The output of '{model.GetType().Name}' does not require grad even though its input does, so it cannot be differentiated with respect to the input " +
                        "and batch independence cannot be checked. Its forward cuts the path from input to output: a detach(), a no_grad()/inference_mode() block, " +
                        "or values copied out (item(), data<T>()) into a new tensor. Remove the cut, or check the part of the model after it.", nameof(model));
                }
                foreach (var i in probeList)
                {
                    var yi = y[i].sum();
                    var g = torch.autograd.grad(new[] { yi }, new[] { x }, retain_graph: true, allow_unused: true)[0];
                    if (g is null || g.IsInvalid)
                    {
                        // An undefined gradient (TorchSharp wraps it in a tensor with an empty handle): this output does not depend
                        // on the input at all, so it cannot depend on other samples either.
                        independentOfOwnInput.Add(i);
                        continue;
                    }
                    var perSample = g.abs().reshape(batch, -1).sum(1).to(torch.ScalarType.Float64).data<double>().ToArray();
                    if (perSample[i] == 0) independentOfOwnInput.Add(i);
                    var others = Enumerable.Range(0, (int)batch).Where(j => j != i && perSample[j] != 0).ToList();
                    if (others.Count > 0) leaks.Add(new BatchLeak(i, others));
                }
            }
            finally
            {
                ModelSnapshot.RestoreModes(modes);
            }

            string probesText = probeList.Count == batch
                ? $"all {batch} samples"
                : $"sample{(probeList.Count == 1 ? "" : "s")} {Abbreviate(probeList)} ({probeList.Count} of {batch}; pass allSamples: true to check every one)";
            string note = independentOfOwnInput.Count == 0 ? "" :
                $"{Environment.NewLine}Note: {(independentOfOwnInput.Count == 1 ? $"the output of sample {independentOfOwnInput[0]} does not depend on its own input" : $"the outputs of samples {string.Join(", ", independentOfOwnInput)} do not depend on their own inputs")} " +
                "(zero gradient): check that forward() really uses its input, and look for dead ReLUs or saturated activations.";
            if (leaks.Count == 0)
            {
                return new BatchIndependenceResult(probeList, leaks, $"Batch independence: the output{(probeList.Count == 1 ? "" : "s")} of {probesText} do{(probeList.Count == 1 ? "es" : "")} not depend on the inputs of other samples (eval mode). OK.{note}");
            }
            var lines = leaks.Select(l => $"  output of sample {l.OutputSample} depends on the {(l.DependsOn.Count == 1 ? "input of sample" : "inputs of samples")} {Abbreviate(l.DependsOn)}");
            string message =
                $"Batch independence violated: the model mixes data across the batch dimension (eval mode; checked the outputs of {probesText}).{Environment.NewLine}" +
                string.Join(Environment.NewLine, lines) + Environment.NewLine +
                "What to check: a view/reshape used to reorder dimensions — x.view(seq, batch, d) on a [batch, seq, d] tensor reinterprets memory instead of " +
                "moving axes; use permute/transpose (then contiguous() or reshape) — or a flatten/reshape that merges the batch with another dimension, " +
                "or a reduction/softmax/normalisation over dim 0 (the batch)." + note;
            return new BatchIndependenceResult(probeList, leaks, message);
        }

        /// <summary>
        /// Lists the modules of <paramref name="model"/> (root included) whose train/eval mode is not <paramref name="expectTraining"/>.
        /// </summary>
        /// <param name="model">The model.</param>
        /// <param name="expectTraining">True before a training step, false before evaluation/inference.</param>
        /// <param name="except">Module paths that are intentionally in the other mode (e.g. a frozen BatchNorm kept in eval).</param>
        public static ModeReport CheckModes(torch.nn.Module model, bool expectTraining, IEnumerable<string>? except = null)
        {
            if (model is null) throw new ArgumentNullException(nameof(model));
            TorchLoad.EnsureLoaded();
            var allowed = new HashSet<string>(except ?? Array.Empty<string>(), StringComparer.Ordinal);
            var mismatched = new List<ModuleMode>();
            foreach (var (path, module) in ModuleNames.All(model))
            {
                if (allowed.Contains(path)) continue;
                bool training = module.training;
                if (training != expectTraining) mismatched.Add(new ModuleMode(ModuleNames.Display(path, module), module.GetType().Name, training));
            }
            string expected = expectTraining ? "training" : "evaluation";
            string other = expectTraining ? "evaluation" : "training";
            if (mismatched.Count == 0)
            {
                return new ModeReport(expectTraining, mismatched, $"Every module of '{model.GetType().Name}' is in {expected} mode. OK.");
            }
            string hint = expectTraining
                ? "model.eval() was called (often inside a validation helper) and model.train() was not called again before training, or a submodule's eval() was called after model.train(). " +
                  "In evaluation mode Dropout is off and BatchNorm stops updating its statistics, so training silently changes."
                : "a submodule's train() was called after model.eval() (train/eval recurse into children, so set the mode on the root last), or model.eval() was not called again after a training step. " +
                  "In training mode Dropout drops units and BatchNorm normalises with batch statistics and updates its running averages, so evaluation results change.";
            string message =
                $"Expected every module of '{model.GetType().Name}' to be in {expected} mode, but {(mismatched.Count == 1 ? "1 is" : $"{mismatched.Count} are")} in {other} mode: {string.Join(", ", mismatched)}.{Environment.NewLine}" +
                $"What to check: {hint} Modules meant to stay in {other} mode can be listed by path in 'except'.";
            return new ModeReport(expectTraining, mismatched, message);
        }

        private static ArgumentException NotASingleLoss(torch.Tensor loss, string whatTheCheckNeeds) =>
            new($"The loss function returned a tensor of shape {TensorText.Shape(loss.shape)} instead of a single value. {whatTheCheckNeeds}: " +
                "use the default reduction (Mean), or reduce the per-sample losses with .mean().", "lossFunction");

        private static string Abbreviate(IReadOnlyList<int> xs) =>
            xs.Count <= 10 ? string.Join(", ", xs) : string.Join(", ", xs.Take(10)) + $", ... ({xs.Count} in total)";
    }
}
