using System;
using System.Globalization;
using BenchmarkDotNet.Running;

namespace MlPitfalls.Analyzers.Benchmarks;

public static class Program
{
    /// <summary>
    /// <c>dotnet run -c Release -- --filter '*'</c>: BenchmarkDotNet (add <c>--job short</c> for a quick run).
    /// <c>dotnet run -c Release -- --driver-times [--rounds N] [--verbose]</c>: the driver-times measurement (<see cref="DriverTimes"/>;
    /// <c>--verbose</c> prints every round to standard error).
    /// </summary>
    public static void Main(string[] args)
    {
        if (Array.IndexOf(args, "--driver-times") >= 0)
        {
            var rounds = Array.IndexOf(args, "--rounds") is var at and >= 0 && at + 1 < args.Length
                ? int.Parse(args[at + 1], CultureInfo.InvariantCulture)
                : 7;
            DriverTimes.Run(rounds, verbose: Array.IndexOf(args, "--verbose") >= 0);
            return;
        }

        BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
    }
}
