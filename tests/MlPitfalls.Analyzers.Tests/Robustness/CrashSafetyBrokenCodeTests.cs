using System.Collections.Generic;
using System.Linq;
using System.Threading.Tasks;
using Microsoft.CodeAnalysis.CSharp;
using Xunit;

namespace MlPitfalls.Analyzers.Tests.Robustness;

/// <summary>
/// Crash safety over the samples and the generated training code when they refer to what does not exist (an undefined
/// type used as a module, TorchSharp methods that are not there), when TorchSharp is not referenced at all, and in every
/// C# language version from 7.3 to the latest; and compiled against assemblies named TorchSharp with another API.
/// </summary>
public class CrashSafetyBrokenCodeTests
{
    public const string WithoutTorchSharp = "TorchSharp not referenced";

    public static IEnumerable<object[]> BrokenPrograms()
        => from program in SweepCorpus.Realistic.Value
           from way in BrokenReferences.All.Select(b => b.Name).Append(WithoutTorchSharp)
           // Only the edits that change something (plain code has no module or tensor to break).
           where way == WithoutTorchSharp || program.Files.Any(f => BrokenReferences.Named(way)(f.Text) != f.Text)
           select new object[] { program.Name, way };

    [Theory]
    [MemberData(nameof(BrokenPrograms))]
    public async Task Code_referring_to_what_does_not_exist_is_analysed_without_an_analyzer_exception_or_a_hang(string program, string way)
    {
        var source = SweepCorpus.Get(program);
        var compilation = way == WithoutTorchSharp ? source.Compile(referenceTorchSharp: false) : source.CompileEdited(BrokenReferences.Named(way));
        await CrashSafety.AssertAnalyzedAsync(compilation, $"{program} with {way}");
    }

    public static IEnumerable<object[]> ProgramsAgainstOtherTorchSharps()
        => from shape in OtherTorchSharpShapes.Names
           from program in SweepCorpus.Realistic.Value.Select(p => p.Name).Concat(StressPrograms.Small)
           select new object[] { shape, program };

    [Theory]
    [MemberData(nameof(ProgramsAgainstOtherTorchSharps))]
    public async Task Code_compiled_against_a_TorchSharp_of_another_shape_is_analysed_without_an_analyzer_exception_or_a_hang(string shape, string program)
    {
        var source = StressPrograms.Names.Contains(program) ? StressPrograms.Get(program) : SweepCorpus.Get(program);
        await CrashSafety.AssertAnalyzedAsync(source.CompileAgainst(OtherTorchSharpShapes.Get(shape)), $"{program} against {shape}");
    }

    /// <summary>Every C# version from 7.3 (the default of .NET Framework projects) to the newest this Roslyn knows, and preview.</summary>
    public static IEnumerable<LanguageVersion> LanguageVersions()
        => System.Enum.GetValues<LanguageVersion>()
            .Where(v => v >= LanguageVersion.CSharp7_3 && v <= LanguageVersion.Preview && v != LanguageVersion.LatestMajor)
            .OrderBy(v => v);

    public static IEnumerable<object[]> ProgramsInEveryVersion()
        => from program in SweepCorpus.Realistic.Value
           from version in LanguageVersions()
           select new object[] { program.Name, version };

    [Theory]
    [MemberData(nameof(ProgramsInEveryVersion))]
    public async Task Every_language_version_is_analysed_without_an_analyzer_exception_or_a_hang(string program, LanguageVersion version)
        => await CrashSafety.AssertAnalyzedAsync(SweepCorpus.Get(program).Compile(version), $"{program} as C# {version.ToDisplayString()}");

    [Fact]
    public void The_language_versions_reach_the_latest()
    {
        var versions = LanguageVersions().ToList();
        Assert.Equal(LanguageVersion.CSharp7_3, versions.First());
        Assert.Contains(LanguageVersion.Latest.MapSpecifiedToEffectiveVersion(), versions);
    }
}
