using BenchmarkDotNet.Attributes;
using MlPitfalls.Runtime.Shapes;
using static TorchSharp.torch;

namespace MlPitfalls.Runtime.Benchmarks
{
    /// <summary>The cost of one passing shape check on a 4-d tensor whose names are already bound, and of a disabled check.</summary>
    [MemoryDiagnoser]
    public class ShapeCheckBenchmarks
    {
        private Tensor _x = null!;
        private ShapeScope _dims = null!;
        private readonly ShapeSpec _spec = ShapeSpec.Parse("batch 1 28 28");

        [GlobalSetup]
        public void Setup()
        {
            _x = zeros(64, 1, 28, 28);
            _dims = new ShapeScope();
            _x.ExpectShape("batch 1 28 28", _dims); // binds batch; the measured checks verify it
        }

        [Benchmark(Baseline = true, Description = "ExpectShape(\"batch 1 28 28\") passing")]
        public Tensor PassingCheck() => _x.ExpectShape("batch 1 28 28", _dims);

        [Benchmark(Description = "ExpectShape(pre-parsed spec) passing")]
        public Tensor PassingCheckPreParsed() => _x.ExpectShape(_spec, _dims);

        [Benchmark(Description = "ExpectShape with ShapeChecks.Enabled = false")]
        public Tensor DisabledCheck()
        {
            ShapeChecks.Enabled = false;
            var r = _x.ExpectShape("batch 1 28 28", _dims);
            ShapeChecks.Enabled = true;
            return r;
        }

        [Benchmark(Description = "reading x.shape (TorchSharp, for comparison)")]
        public long[] ReadShape() => _x.shape;
    }
}
