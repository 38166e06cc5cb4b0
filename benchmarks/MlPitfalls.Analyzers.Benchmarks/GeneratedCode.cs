using System.Collections.Immutable;

namespace MlPitfalls.Analyzers.Benchmarks;

/// <summary>
/// Generated source and what MlPitfalls must report on it, by rule id. Every planted bug is counted where it is written
/// (see the generators), so a benchmark that finds another count measures the wrong thing and refuses to run.
/// </summary>
internal sealed class GeneratedCode
{
    public GeneratedCode(string source, bool referencesTorchSharp, ImmutableDictionary<string, int> expected)
    {
        Source = source;
        ReferencesTorchSharp = referencesTorchSharp;
        Expected = expected;
    }

    public string Source { get; }

    /// <summary>False for plain C#: the compilation is created without TorchSharp, and the analyzers must register nothing.</summary>
    public bool ReferencesTorchSharp { get; }

    /// <summary>Diagnostics per rule id; a rule not listed must report nothing.</summary>
    public ImmutableDictionary<string, int> Expected { get; }

    public int Lines => Source.Split('\n').Length;

    public int ExpectedFor(string ruleId) => Expected.TryGetValue(ruleId, out var count) ? count : 0;

    /// <summary>Per-unit counts (bugs per generated class or section) multiplied by the number of units.</summary>
    public static ImmutableDictionary<string, int> Times(ImmutableDictionary<string, int> perUnit, int units)
    {
        var builder = ImmutableDictionary.CreateBuilder<string, int>();
        foreach (var pair in perUnit)
        {
            builder[pair.Key] = pair.Value * units;
        }

        return builder.ToImmutable();
    }
}
