using System.Collections.Generic;
using System.Linq;
using System.Threading.Tasks;
using Microsoft.CodeAnalysis.CSharp;
using Xunit;

namespace MlPitfalls.Analyzers.Tests.Robustness;

/// <summary>
/// Crash safety over every C# source the analyzer tests are written with (hundreds of small TorchSharp programs, each
/// aimed at a corner of some rule): each as written, cut off at <see cref="EditsPerSource"/> tokens, with as many
/// tokens deleted, and with as many ways of referring to what does not exist. The cut points, the language version of
/// the cut programs and the broken references vary from source to source (chosen by a hash of the source's name, the
/// same on every run), so together the sources cover every part of a program, every version and every kind of breakage.
/// </summary>
public class CrashSafetyTestSourceTests
{
    /// <summary>Cuts, deletions and broken references per source; sized so the whole crash-safety sweep fits in CI's time.</summary>
    internal const int EditsPerSource = 2;

    public static IEnumerable<object[]> Sources()
        => SweepCorpus.TestSourceList.Value.Select(p => new object[] { p.Name });

    [Fact]
    public void The_test_sources_are_found()
        // A change to how tests are written must not silently empty the sweep.
        => Assert.True(SweepCorpus.TestSourceList.Value.Length >= 300, $"Only {SweepCorpus.TestSourceList.Value.Length} test sources found.");

    [Theory]
    [MemberData(nameof(Sources))]
    public async Task A_test_source_as_written_cut_and_broken_is_analysed_without_an_analyzer_exception_or_a_hang(string name)
    {
        var program = SweepCorpus.Get(name);
        var (path, text) = program.Files.Single();
        await CrashSafety.AssertAnalyzedAsync(program.Compile(), name + " as written");

        var versions = CrashSafetyBrokenCodeTests.LanguageVersions().ToList();
        var ways = BrokenReferences.All.Length + 1;
        for (int k = 0; k < EditsPerSource; k++)
        {
            var version = versions[(int)(StableHash(name + "#version" + k) % (uint)versions.Count)];
            var cut = CutPoints.At(text, Fraction(name + "#cut" + k));
            await CrashSafety.AssertAnalyzedAsync(
                program.CompileWith(path, CutPoints.Truncate(text, cut), version), $"{name} truncated at {CutPoints.Describe(cut)}, C# {version.ToDisplayString()}");

            var deleted = CutPoints.At(text, Fraction(name + "#delete" + k));
            await CrashSafety.AssertAnalyzedAsync(
                program.CompileWith(path, CutPoints.DeleteToken(text, deleted), version), $"{name} with the token deleted at {CutPoints.Describe(deleted)}, C# {version.ToDisplayString()}");

            // The broken references in turn, and TorchSharp not referenced at all as one more (distinct for each k).
            var way = (int)((StableHash(name) + (uint)(3 * k)) % (uint)ways);
            if (way < BrokenReferences.All.Length)
            {
                var (brokenName, edit) = BrokenReferences.All[way];
                await CrashSafety.AssertAnalyzedAsync(program.CompileEdited(edit), $"{name} with {brokenName}");
            }
            else
            {
                await CrashSafety.AssertAnalyzedAsync(program.Compile(referenceTorchSharp: false), $"{name} without TorchSharp referenced");
            }
        }
    }

    /// <summary>FNV-1a: string.GetHashCode differs from run to run, and the sweep must cut the same places every time.</summary>
    private static uint StableHash(string text)
    {
        var hash = 2166136261u;
        foreach (var c in text)
        {
            hash = (hash ^ c) * 16777619u;
        }

        return hash;
    }

    /// <summary>A fraction from 0 to 1 that depends only on <paramref name="key"/>.</summary>
    private static double Fraction(string key) => (StableHash(key) % 10007u) / 10007.0;
}
