using System.Collections.Generic;
using System.Linq;
using System.Threading.Tasks;
using Xunit;

namespace MlPitfalls.Analyzers.Tests.Robustness;

/// <summary>
/// Crash safety, the main sweep: every analyzer, with concurrent execution on, over the samples and the generated
/// training code cut off at sampled token boundaries and with single tokens deleted, the way an editor shows the rules
/// half-written code on every keystroke. No analyzer may throw (AD0001) or hang. One test case per cut, so a failure
/// names the program, the file and the cut.
/// </summary>
public class CrashSafetySweepTests
{
    /// <summary>Cut points per file (for each kind of cut), spread evenly over the members' tokens; sized so the whole crash-safety sweep fits in CI's time.</summary>
    internal const int CutsPerFile = 30;

    public const string Truncated = "truncated";
    public const string TokenDeleted = "token deleted";

    public static IEnumerable<object[]> Cuts()
        => from program in SweepCorpus.Realistic.Value
           from file in program.Files
           let count = CutPoints.Sample(file.Text, CutsPerFile).Length
           from edit in new[] { Truncated, TokenDeleted }
           from ordinal in Enumerable.Range(0, count)
           where !KnownAnalyzerFailures.Skips(Case(program.Name, file.Path, edit, ordinal))
           select new object[] { program.Name, file.Path, edit, ordinal };

    [Fact]
    public void The_programs_cut_are_correct_TorchSharp_programs_before_they_are_cut()
    {
        // The samples/RuntimeChecks sample uses MlPitfalls.Runtime, which is not referenced here: its errors are expected.
        foreach (var program in SweepCorpus.Realistic.Value.Concat(SweepCorpus.TwoProjects.Value).Where(p => p.Name != "samples/RuntimeChecks"))
        {
            var errors = program.Compile().GetDiagnostics().Where(d => d.Severity == Microsoft.CodeAnalysis.DiagnosticSeverity.Error).Take(3).ToList();
            Assert.True(errors.Count == 0, $"{program.Name} does not compile: {string.Join("; ", errors)}");
        }
    }

    [Theory]
    [MemberData(nameof(Cuts))]
    public async Task Cut_code_is_analysed_without_an_analyzer_exception_or_a_hang(string program, string file, string edit, int ordinal)
        => await AssertCutAsync(program, file, edit, ordinal);

    internal static string Case(string program, string file, string edit, int ordinal) => $"{program}/{file}, {edit} #{ordinal}";

    private static async Task AssertCutAsync(string program, string file, string edit, int ordinal)
    {
        var source = SweepCorpus.Get(program);
        var text = source.Text(file);
        var token = CutPoints.Sample(text, CutsPerFile)[ordinal];
        var edited = edit == Truncated ? CutPoints.Truncate(text, token) : CutPoints.DeleteToken(text, token);
        await CrashSafety.AssertAnalyzedAsync(source.CompileWith(file, edited), $"{Case(program, file, edit, ordinal)} ({CutPoints.Describe(token)})");
    }
}
