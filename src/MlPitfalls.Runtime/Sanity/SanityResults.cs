using System.Collections.Generic;

namespace MlPitfalls.Runtime.Sanity
{
    /// <summary>Result of <see cref="SanityChecks.CheckInitialLoss(double, int, double)"/>.</summary>
    public sealed class InitialLossResult
    {
        internal InitialLossResult(bool ok, double loss, double expected, int classes, string message)
        {
            IsOk = ok;
            Loss = loss;
            Expected = expected;
            Classes = classes;
            Message = message;
        }

        /// <summary>True when the loss is within tolerance of −ln(1/C).</summary>
        public bool IsOk { get; }

        /// <summary>The measured loss.</summary>
        public double Loss { get; }

        /// <summary>−ln(1/C) = ln(C).</summary>
        public double Expected { get; }

        /// <summary>Number of classes C.</summary>
        public int Classes { get; }

        /// <summary>Explanation.</summary>
        public string Message { get; }

        /// <summary>Throws <see cref="InitialLossException"/> when not OK; returns this otherwise.</summary>
        public InitialLossResult ThrowIfFailed() => IsOk ? this : throw new InitialLossException(this);

        /// <inheritdoc />
        public override string ToString() => Message;
    }

    /// <summary>Result of <see cref="SanityChecks.OverfitOneBatch"/>.</summary>
    public sealed class OverfitResult
    {
        internal OverfitResult(bool ok, IReadOnlyList<double> losses, double target, string message, IReadOnlyList<string> parametersWithoutGradient)
        {
            IsOk = ok;
            Losses = losses;
            Target = target;
            Message = message;
            ParametersWithoutGradient = parametersWithoutGradient;
        }

        /// <summary>
        /// Trainable parameters (by name) that never received a gradient in any trial step: the path from them to the loss
        /// is cut (a detach(), a no_grad() block, an unused layer), so no learning rate can make them learn.
        /// </summary>
        public IReadOnlyList<string> ParametersWithoutGradient { get; }

        /// <summary>True when the loss reached the target.</summary>
        public bool IsOk { get; }

        /// <summary>The loss at every step.</summary>
        public IReadOnlyList<double> Losses { get; }

        /// <summary>The target loss.</summary>
        public double Target { get; }

        /// <summary>Explanation.</summary>
        public string Message { get; }

        /// <summary>Throws <see cref="OverfitException"/> when not OK; returns this otherwise.</summary>
        public OverfitResult ThrowIfFailed() => IsOk ? this : throw new OverfitException(this);

        /// <inheritdoc />
        public override string ToString() => Message;
    }

    /// <summary>One output sample whose value depends on other input samples.</summary>
    public sealed class BatchLeak
    {
        internal BatchLeak(int output, IReadOnlyList<int> dependsOn)
        {
            OutputSample = output;
            DependsOn = dependsOn;
        }

        /// <summary>The sample whose output was differentiated.</summary>
        public int OutputSample { get; }

        /// <summary>Other samples whose input has a non-zero gradient.</summary>
        public IReadOnlyList<int> DependsOn { get; }
    }

    /// <summary>Result of <see cref="SanityChecks.CheckBatchIndependence"/>.</summary>
    public sealed class BatchIndependenceResult
    {
        internal BatchIndependenceResult(IReadOnlyList<int> probes, IReadOnlyList<BatchLeak> leaks, string message)
        {
            Probes = probes;
            Leaks = leaks;
            Message = message;
        }

        /// <summary>True when no probed output depends on another sample.</summary>
        public bool IsOk => Leaks.Count == 0;

        /// <summary>The output samples that were differentiated.</summary>
        public IReadOnlyList<int> Probes { get; }

        /// <summary>Probes whose output depends on other samples.</summary>
        public IReadOnlyList<BatchLeak> Leaks { get; }

        /// <summary>Explanation.</summary>
        public string Message { get; }

        /// <summary>Throws <see cref="BatchDependenceException"/> when not OK; returns this otherwise.</summary>
        public BatchIndependenceResult ThrowIfFailed() => IsOk ? this : throw new BatchDependenceException(this);

        /// <inheritdoc />
        public override string ToString() => Message;
    }

    /// <summary>A module whose mode differs from the expected one.</summary>
    public sealed class ModuleMode
    {
        internal ModuleMode(string path, string typeName, bool training)
        {
            Path = path;
            TypeName = typeName;
            Training = training;
        }

        /// <summary>Module path.</summary>
        public string Path { get; }

        /// <summary>Module type name.</summary>
        public string TypeName { get; }

        /// <summary>Its actual mode.</summary>
        public bool Training { get; }

        /// <inheritdoc />
        public override string ToString() => $"{Path} ({TypeName})";
    }

    /// <summary>Result of <see cref="SanityChecks.CheckModes"/>.</summary>
    public sealed class ModeReport
    {
        internal ModeReport(bool expectTraining, IReadOnlyList<ModuleMode> mismatched, string message)
        {
            ExpectedTraining = expectTraining;
            Mismatched = mismatched;
            Message = message;
        }

        /// <summary>The mode that was expected.</summary>
        public bool ExpectedTraining { get; }

        /// <summary>Modules in the other mode.</summary>
        public IReadOnlyList<ModuleMode> Mismatched { get; }

        /// <summary>True when every module is in the expected mode.</summary>
        public bool IsOk => Mismatched.Count == 0;

        /// <summary>Explanation.</summary>
        public string Message { get; }

        /// <summary>Throws <see cref="ModuleModeException"/> when not OK; returns this otherwise.</summary>
        public ModeReport ThrowIfFailed() => IsOk ? this : throw new ModuleModeException(this);

        /// <inheritdoc />
        public override string ToString() => Message;
    }
}
