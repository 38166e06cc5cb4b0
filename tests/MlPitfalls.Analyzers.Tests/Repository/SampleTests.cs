using System.Threading.Tasks;
using MlPitfalls.Analyzers.TrainingLoop;
using Xunit;
using Verifier = MlPitfalls.Analyzers.Tests.Verifiers.Verify<
    MlPitfalls.Analyzers.TrainingLoop.GradientsNotClearedAnalyzer,
    MlPitfalls.CodeFixes.TrainingLoop.GradientsNotClearedCodeFix>;

using ModeVerifier = MlPitfalls.Analyzers.Tests.Verifiers.Verify<
    MlPitfalls.Analyzers.TrainEval.EvaluatedInTrainingModeAnalyzer,
    MlPitfalls.CodeFixes.TrainEval.SwitchModeCodeFix>;

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

    [Fact]
    public async Task The_mode_fix_turns_the_sample_baseline_into_the_fixed_one()
    {
        var test = ModeVerifier.Create();
        test.TestState.Sources.Add(("Baseline.cs", RepositoryFiles.Read("samples", "TrainingLoop", "Baseline.cs")));
        test.FixedState.Sources.Add(("Baseline.cs", RepositoryFiles.Read("samples", "TrainingLoop.Fixed", "Baseline.cs")));
        foreach (var shared in new[] { ("DigitClassifier.cs", "TrainingLoop.Fixed"), ("SyntheticDigits.cs", "TrainingLoop") })
        {
            var source = (shared.Item1, RepositoryFiles.Read("samples", shared.Item2, shared.Item1));
            test.TestState.Sources.Add(source);
            test.FixedState.Sources.Add(source);
        }

        test.TestState.ExpectedDiagnostics.Add(
            ModeVerifier.DiagnosticAnyMessage(Descriptors.MLP007_EvaluatedInTrainingMode).WithSpan("Baseline.cs", 15, 27, 15, 45));
        await test.RunAsync();
    }
}
