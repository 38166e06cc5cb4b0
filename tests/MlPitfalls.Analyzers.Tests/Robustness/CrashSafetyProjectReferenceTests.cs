using System.Collections.Generic;
using System.Linq;
using System.Threading.Tasks;
using Xunit;

namespace MlPitfalls.Analyzers.Tests.Robustness;

/// <summary>
/// Crash safety when the training code calls into another project of the solution: the model in a library, the
/// training loop in an application. A command-line build references the library's assembly; the IDE references the
/// library's compilation, so the library's methods are source symbols whose syntax is in another compilation's trees.
/// </summary>
public class CrashSafetyProjectReferenceTests
{
    public const string AsTheBuildDoes = "as a command-line build compiles it";
    public const string AsTheIdeDoes = "as the IDE compiles it";

    public static IEnumerable<object[]> Solutions()
        => from program in SweepCorpus.TwoProjects.Value
           from way in new[] { AsTheBuildDoes, AsTheIdeDoes }
           where !KnownAnalyzerFailures.Skips(Case(program.Name, way))
           select new object[] { program.Name, way };

    [Theory]
    [MemberData(nameof(Solutions))]
    public async Task Training_code_calling_into_another_project_is_analysed_without_an_analyzer_exception_or_a_hang(string program, string way)
        => await AssertAsync(program, way);

    internal static string Case(string program, string way) => $"{program}, two projects {way}";

    internal static async Task AssertAsync(string program, string way)
    {
        var compilation = SweepCorpus.Get(program).CompileAsTwoProjects("Program.cs", asTheIdeDoes: way == AsTheIdeDoes);
        await CrashSafety.AssertAnalyzedAsync(compilation, Case(program, way));
    }
}
