namespace MlPitfalls.Runtime.Sanity
{
    /// <summary>The loss at initialisation is far from −ln(1/C).</summary>
    public sealed class InitialLossException : RuntimeCheckException
    {
        internal InitialLossException(InitialLossResult result) : base(result.Message) => Result = result;

        /// <summary>The check's result.</summary>
        public InitialLossResult Result { get; }
    }

    /// <summary>The model could not drive the loss on a single batch near zero.</summary>
    public sealed class OverfitException : RuntimeCheckException
    {
        internal OverfitException(OverfitResult result) : base(result.Message) => Result = result;

        /// <summary>The check's result.</summary>
        public OverfitResult Result { get; }
    }

    /// <summary>The output for one sample depends on other samples of the batch.</summary>
    public sealed class BatchDependenceException : RuntimeCheckException
    {
        internal BatchDependenceException(BatchIndependenceResult result) : base(result.Message) => Result = result;

        /// <summary>The check's result.</summary>
        public BatchIndependenceResult Result { get; }
    }

    /// <summary>Some modules are in an unexpected train/eval mode.</summary>
    public sealed class ModuleModeException : RuntimeCheckException
    {
        internal ModuleModeException(ModeReport report) : base(report.Message) => Report = report;

        /// <summary>The check's result.</summary>
        public ModeReport Report { get; }
    }
}
