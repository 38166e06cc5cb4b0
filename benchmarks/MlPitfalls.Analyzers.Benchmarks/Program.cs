using BenchmarkDotNet.Running;

namespace MlPitfalls.Analyzers.Benchmarks;

public static class Program
{
    /// <summary><c>dotnet run -c Release --project benchmarks/MlPitfalls.Analyzers.Benchmarks -- --filter '*'</c></summary>
    public static void Main(string[] args) => BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
}
