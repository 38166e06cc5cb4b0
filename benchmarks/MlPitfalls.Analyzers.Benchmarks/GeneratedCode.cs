using System.Collections.Immutable;
using System.Linq;

namespace MlPitfalls.Analyzers.Benchmarks;

/// <summary>
/// Generated source and what MlPitfalls must report on it, by rule id. Every planted bug is counted where it is written
/// (see the generators), so a benchmark that finds another count measures the wrong thing and refuses to run.
/// </summary>
internal sealed class GeneratedCode
{
    public GeneratedCode(string source, bool referencesTorchSharp, ImmutableDictionary<string, int> expected)
        : this(ImmutableArray.Create(source), referencesTorchSharp, expected)
    {
    }

    /// <param name="files">The source files of one compilation (one syntax tree each).</param>
    public GeneratedCode(ImmutableArray<string> files, bool referencesTorchSharp, ImmutableDictionary<string, int> expected)
    {
        Files = files;
        ReferencesTorchSharp = referencesTorchSharp;
        Expected = expected;
    }

    /// <summary>The source, when it is one file; the files joined otherwise.</summary>
    public string Source => Files.Length == 1 ? Files[0] : string.Join("\n", Files);

    public ImmutableArray<string> Files { get; }

    /// <summary>False for plain C#: the compilation is created without TorchSharp, and the analyzers must register nothing.</summary>
    public bool ReferencesTorchSharp { get; }

    /// <summary>Diagnostics per rule id; a rule not listed must report nothing.</summary>
    public ImmutableDictionary<string, int> Expected { get; }

    public int Lines => Files.Sum(f => f.Split('\n').Length);

    public int ExpectedFor(string ruleId) => Expected.TryGetValue(ruleId, out var count) ? count : 0;

    /// <summary>
    /// <paramref name="files"/> files, each <paramref name="usings"/> and the unit <paramref name="appendUnit"/> writes for
    /// its index, with <paramref name="expectedPerUnit"/> counted once per file.
    /// </summary>
    public static GeneratedCode PerFile(
        int files, string usings, System.Action<System.Text.StringBuilder, int> appendUnit, bool referencesTorchSharp, ImmutableDictionary<string, int> expectedPerUnit)
    {
        var sources = ImmutableArray.CreateBuilder<string>(files);
        for (int i = 0; i < files; i++)
        {
            var code = new System.Text.StringBuilder(usings);
            appendUnit(code, i);
            sources.Add(code.ToString());
        }

        return new GeneratedCode(sources.MoveToImmutable(), referencesTorchSharp, Times(expectedPerUnit, files));
    }

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
