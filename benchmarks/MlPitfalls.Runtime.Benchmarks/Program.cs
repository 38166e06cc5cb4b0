using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Running;
using BenchmarkDotNet.Toolchains.InProcess.Emit;

namespace MlPitfalls.Runtime.Benchmarks
{
    public static class Program
    {
        /// <summary>
        /// Runs in-process (the native libtorch is loaded from this project's own, patched output) with a short job by default.
        /// Pass BenchmarkDotNet arguments as usual, e.g. <c>--filter *Shape*</c>.
        /// </summary>
        public static void Main(string[] args)
        {
            var config = DefaultConfig.Instance
                .AddJob(Job.ShortRun.WithToolchain(InProcessEmitToolchain.Instance).WithId("ShortRun-InProcess"))
                .WithOptions(ConfigOptions.DisableOptimizationsValidator);
            BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args, config);
        }
    }
}
