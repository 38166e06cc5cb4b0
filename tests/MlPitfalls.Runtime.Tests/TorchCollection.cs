using Xunit;

namespace MlPitfalls.Runtime.Tests
{
    /// <summary>
    /// Tests share one collection: they count live tensors per thread and toggle process-wide switches, so they run one at a time.
    /// </summary>
    [CollectionDefinition(Name, DisableParallelization = true)]
    public sealed class TorchCollection
    {
        public const string Name = "torch";
    }
}
