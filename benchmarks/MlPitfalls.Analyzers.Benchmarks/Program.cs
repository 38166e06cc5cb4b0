using System;
using System.Globalization;
using System.Linq;
using BenchmarkDotNet.Running;

namespace MlPitfalls.Analyzers.Benchmarks;

public static class Program
{
    /// <summary>
    /// <c>dotnet run -c Release -- --filter '*'</c>: BenchmarkDotNet (add <c>--job short</c> for a quick run).
    /// <c>dotnet run -c Release -- --driver-times [--rounds N] [--verbose]</c>: the driver-times measurement (<see cref="DriverTimes"/>;
    /// <c>--verbose</c> prints every round to standard error).
    /// <c>dotnet run -c Release -- --long-method [--rounds N]</c>: how the analysis of one long method grows with its length, with
    /// the share of Roslyn's control-flow graph builder apart (<see cref="DriverTimes.RunLongMethodScaling"/>).
    /// <c>dotnet run -c Release -- --profile torch|long|project.rsp... [--size N] [--rounds N] [--rules MLP005,...]</c>: only the analysis of one generated case,
    /// again and again, for a profiler to attach to (<c>dotnet-trace collect -- dotnet ...dll --profile long --size 5000</c>).
    /// <c>dotnet run -c Release -- --files [--rounds N]</c>: the driver-times metric on generated projects of 10, 100 and 1,000
    /// files, TorchSharp and plain C# (<see cref="DriverTimes.RunFileScaling"/>).
    /// <c>dotnet run -c Release -- --projects a.rsp b.rsp ... [--rounds N] [--with-meziantou | --added-time] [--with-emit]</c>: the driver-times metric on real
    /// projects, from their csc response files (<see cref="RealProjects"/>), with Meziantou.Analyzer's time for context, or with what MlPitfalls adds to the analysis's wall time,
    /// and against compile time with emit too.
    /// </summary>
    public static void Main(string[] args)
    {
        if (Array.IndexOf(args, "--driver-times") >= 0)
        {
            DriverTimes.Run(Option(args, "--rounds", 7), verbose: Array.IndexOf(args, "--verbose") >= 0);
            return;
        }

        if (Array.IndexOf(args, "--files") >= 0)
        {
            DriverTimes.RunFileScaling(Option(args, "--rounds", 3));
            return;
        }

        if (Array.IndexOf(args, "--long-method") >= 0)
        {
            DriverTimes.RunLongMethodScaling(Option(args, "--rounds", 7));
            return;
        }

        if (Array.IndexOf(args, "--projects") is var projects and >= 0)
        {
            var files = args.Skip(projects + 1).TakeWhile(a => !a.StartsWith("--", StringComparison.Ordinal)).ToList();
            RealProjects.Run(files, Option(args, "--rounds", 5), withMeziantou: Array.IndexOf(args, "--with-meziantou") >= 0, withAddedTime: Array.IndexOf(args, "--added-time") >= 0,
                withEmit: Array.IndexOf(args, "--with-emit") >= 0);
            return;
        }

        if (Array.IndexOf(args, "--profile") is var profile and >= 0 && profile + 1 < args.Length)
        {
            var size = Option(args, "--size", args[profile + 1] == "long" ? 5_000 : 100);
            var rules = Array.IndexOf(args, "--rules") is var at and >= 0 && at + 1 < args.Length ? args[at + 1].Split(',') : null;
            if (args[profile + 1].EndsWith(".rsp", StringComparison.OrdinalIgnoreCase))
            {
                var responseFiles = args.Skip(profile + 1).TakeWhile(a => a.EndsWith(".rsp", StringComparison.OrdinalIgnoreCase));
                ProfileRun.Run(responseFiles.Select(RealProjects.Compilation).ToList(), Option(args, "--rounds", 20), rules);
                return;
            }

            var code = args[profile + 1] == "long" ? LongMethodGenerator.Generate(size) : TrainingCodeGenerator.Generate(size);
            ProfileRun.Run(code, Option(args, "--rounds", 20), rules);
            return;
        }

        BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
    }

    private static int Option(string[] args, string name, int byDefault)
        => Array.IndexOf(args, name) is var at and >= 0 && at + 1 < args.Length ? int.Parse(args[at + 1], CultureInfo.InvariantCulture) : byDefault;
}
