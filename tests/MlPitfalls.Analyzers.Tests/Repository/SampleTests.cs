using System.Threading.Tasks;
using MlPitfalls.Analyzers.TrainingLoop;
using Xunit;
using Verifier = MlPitfalls.Analyzers.Tests.Verifiers.Verify<
    MlPitfalls.Analyzers.TrainingLoop.GradientsNotClearedAnalyzer,
    MlPitfalls.CodeFixes.TrainingLoop.GradientsNotClearedCodeFix>;

namespace MlPitfalls.Analyzers.Tests.Repository;

/// <summary>The samples stay honest: the buggy one raises what it claims, and the code fixes turn it into the fixed one.</summary>
public class SampleTests
{
    [Fact]
    public async Task Code_fixes_turn_the_sample_into_the_fixed_sample_which_raises_nothing()
    {
        var test = Verifier.Create();
        test.TestState.Sources.Add(("Program.cs", RepositoryFiles.Read("samples", "TrainingLoop", "Program.cs")));
        test.FixedState.Sources.Add(("Program.cs", RepositoryFiles.Read("samples", "TrainingLoop.Fixed", "Program.cs")));
        foreach (var shared in new[] { "DigitClassifier.cs", "SyntheticDigits.cs", "Baseline.cs" })
        {
            var source = (shared, RepositoryFiles.Read("samples", "TrainingLoop", shared));
            test.TestState.Sources.Add(source);
            test.FixedState.Sources.Add(source);
        }

        test.TestState.ExpectedDiagnostics.Add(
            Verifier.DiagnosticAnyMessage(Descriptors.MLP001_GradientsNotCleared).WithSpan("Program.cs", 29, 17, 29, 32));
        await test.RunAsync();
    }
}
