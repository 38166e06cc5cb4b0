using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Reflection;

namespace MlPitfalls.Runtime.Tests.Package
{
    /// <summary>Runs the dotnet CLI the way a user would, and records what it printed and how long it took.</summary>
    public static class DotnetCli
    {
        public static string RepoRoot { get; } = typeof(DotnetCli).Assembly
            .GetCustomAttributes<AssemblyMetadataAttribute>()
            .Single(a => a.Key == "RepoRoot").Value
            ?? throw new InvalidOperationException("The test assembly does not record the repository root.");

        /// <summary>The configuration this test assembly was built in: the package is packed from the same build.</summary>
        public static string Configuration { get; } =
            typeof(DotnetCli).Assembly.GetCustomAttribute<AssemblyConfigurationAttribute>()?.Configuration ?? "Debug";

        public sealed record Result(int ExitCode, string Output, TimeSpan Elapsed)
        {
            public override string ToString() => $"exit code {ExitCode} after {Elapsed.TotalSeconds:0.0} s:\n{Output}";
        }

        /// <summary>
        /// Runs <c>dotnet</c> with <paramref name="arguments"/> in <paramref name="workingDirectory"/>. Variables in
        /// <paramref name="environment"/> are set (a null value removes one). A run longer than <paramref name="timeout"/> is killed.
        /// </summary>
        public static Result Run(string workingDirectory, IEnumerable<string> arguments, IReadOnlyDictionary<string, string?>? environment = null, TimeSpan? timeout = null)
        {
            var start = new ProcessStartInfo("dotnet")
            {
                WorkingDirectory = workingDirectory,
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
            };
            foreach (var argument in arguments) start.ArgumentList.Add(argument);
            start.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
            start.Environment["DOTNET_NOLOGO"] = "1";
            start.Environment["DOTNET_SKIP_FIRST_TIME_EXPERIENCE"] = "1";
            // The plain console logger: one line per message, whatever the terminal.
            start.Environment["MSBUILDTERMINALLOGGER"] = "off";
            foreach (var (name, value) in environment ?? new Dictionary<string, string?>())
            {
                if (value is null) start.Environment.Remove(name);
                else start.Environment[name] = value;
            }

            var watch = Stopwatch.StartNew();
            using var process = Process.Start(start)!;
            var stdout = process.StandardOutput.ReadToEndAsync();
            var stderr = process.StandardError.ReadToEndAsync();
            if (!process.WaitForExit((int)(timeout ?? TimeSpan.FromMinutes(5)).TotalMilliseconds))
            {
                process.Kill(entireProcessTree: true);
                process.WaitForExit();
                return new Result(-1, $"timed out: dotnet {string.Join(' ', arguments)}\n{stdout.Result}{stderr.Result}", watch.Elapsed);
            }
            process.WaitForExit(); // lets the output readers finish
            return new Result(process.ExitCode, stdout.Result + stderr.Result, watch.Elapsed);
        }

        /// <summary>The NuGet global packages folder this machine's restore uses (NUGET_PACKAGES, nuget.config, or the default).</summary>
        public static string GlobalPackagesFolder()
        {
            var result = Run(RepoRoot, new[] { "nuget", "locals", "global-packages", "--list" });
            const string prefix = "global-packages:";
            var line = result.Output.Split('\n').Select(l => l.Trim()).FirstOrDefault(l => l.StartsWith(prefix, StringComparison.Ordinal));
            if (result.ExitCode != 0 || line is null) throw new InvalidOperationException("dotnet nuget locals failed: " + result);
            return Path.TrimEndingDirectorySeparator(line.Substring(prefix.Length).Trim());
        }
    }
}
