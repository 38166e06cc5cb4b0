using System;
using System.Globalization;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Running;
using BenchmarkDotNet.Toolchains.InProcess.Emit;

namespace MlPitfalls.Runtime.Benchmarks
{
    public static class Program
    {
        /// <summary>
        /// BenchmarkDotNet, in-process (the native libtorch is loaded from this project's own, patched output), with a short job:
        /// 3 warm-up and 10 measured iterations. Pass BenchmarkDotNet arguments as usual, e.g. <c>--filter *Shape*</c>.
        /// <c>--interleaved [rounds]</c> runs the drift-resistant training-step comparison instead.
        /// </summary>
        public static void Main(string[] args)
        {
            if (args.Length > 0 && args[0] == "--interleaved")
            {
                Interleaved.Run(args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 300);
                return;
            }
            var config = DefaultConfig.Instance
                .AddJob(Job.ShortRun.WithIterationCount(10).WithToolchain(InProcessEmitToolchain.Instance).WithId("Short-InProcess"))
                .WithOptions(ConfigOptions.DisableOptimizationsValidator);
            BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args, config);
        }
    }
}
