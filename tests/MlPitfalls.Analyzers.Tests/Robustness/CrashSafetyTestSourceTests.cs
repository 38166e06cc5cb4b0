using System;
using System.Collections.Generic;
using System.Linq;
using System.Threading.Tasks;
using Xunit;

namespace MlPitfalls.Analyzers.Tests.Robustness;

/// <summary>
/// Crash safety over every C# source the analyzer tests are written with (hundreds of small TorchSharp programs, each
/// aimed at a corner of some rule): each as written, cut off at one token, with one token deleted, and with one way of
/// referring to what does not exist. The cut points and the broken reference vary from source to source (chosen by a
/// hash of the source's name, the same on every run), so together the sources cover every part of a program and every
/// kind of breakage.
/// </summary>
public class CrashSafetyTestSourceTests
{
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
        var hash = StableHash(name);
        await CrashSafety.AssertAnalyzedAsync(program.Compile(), name + " as written");

        var cut = CutPoints.At(text, Fraction(hash));
        await CrashSafety.AssertAnalyzedAsync(program.CompileWith(path, CutPoints.Truncate(text, cut)), $"{name} truncated at {CutPoints.Describe(cut)}");

        var deleted = CutPoints.At(text, Fraction(hash * 31 + 17));
        await CrashSafety.AssertAnalyzedAsync(program.CompileWith(path, CutPoints.DeleteToken(text, deleted)), $"{name} with the token deleted at {CutPoints.Describe(deleted)}");

        // Each broken reference in turn, and TorchSharp not referenced at all as one more.
        var way = (int)(hash % (uint)(BrokenReferences.All.Length + 1));
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

    private static double Fraction(uint hash) => (hash % 10007u) / 10007.0;
}
