using System.Collections.Generic;
using System.Linq;
using System.Threading.Tasks;
using Microsoft.CodeAnalysis;
using MlPitfalls.Analyzers.Tests.Verifiers;
using Xunit;

namespace MlPitfalls.Analyzers.Tests.Robustness;

/// <summary>
/// KNOWN ANALYZER CRASHES, found by the crash-safety sweep and not fixed yet: these tests fail until the analyzers are
/// fixed. Each sweep case listed in <see cref="KnownAnalyzerFailures"/> is run here (and skipped by the sweep), next to
/// a minimal program that reproduces the crash. When a fix lands, these pass: delete the entries and this class.
/// </summary>
public class CrashSafetyKnownFailureTests
{
    public static IEnumerable<object[]> SkippedSweepCases() => KnownAnalyzerFailures.Cases.OrderBy(c => c, System.StringComparer.Ordinal).Select(c => new object[] { c });

    /// <summary>The sweep's own cases that crash, exactly as the sweep would run them.</summary>
    [Theory]
    [MemberData(nameof(SkippedSweepCases))]
    public async Task KNOWN_CRASH_sweep_case_skipped_by_the_sweep(string sweepCase)
    {
        foreach (var program in SweepCorpus.TwoProjects.Value.Select(p => p.Name))
        {
            foreach (var way in new[] { CrashSafetyProjectReferenceTests.AsTheBuildDoes, CrashSafetyProjectReferenceTests.AsTheIdeDoes })
            {
                if (CrashSafetyProjectReferenceTests.Case(program, way) == sweepCase)
                {
                    await CrashSafetyProjectReferenceTests.AssertAsync(program, way);
                    return;
                }
            }
        }

        Assert.Fail($"No sweep case '{sweepCase}': remove it from {nameof(KnownAnalyzerFailures)}.");
    }

    /// <summary>
    /// A helper declared in another C# project of the solution, called from the training code, as the IDE compiles it:
    /// Roslyn's workspace references a same-language project by its compilation (Compilation.ToMetadataReference), so the
    /// helper is a source symbol whose DeclaringSyntaxReferences lie in the library's syntax trees. The rules that follow
    /// calls treat it as a body of the compilation being analysed and ask that compilation for a semantic model of a tree
    /// it does not contain: ArgumentException "SyntaxTree is not part of the compilation" (AD0001), from
    /// SourceMethodBodies.GetOperation (MLP001) and AnalysisServices.SemanticModel via AnalysisServices.GetBody (MLP002,
    /// MLP003, MLP004, MLP006, MLP007, MLP008; MLP005 alone does not follow such calls). A command-line build references
    /// the emitted assembly and does not crash.
    /// </summary>
    [Theory]
    [InlineData("MLP001",
        "public static class Steps { public static void Step(optim.Optimizer optimizer) => optimizer.step(); }",
        "class Trainer { void Train(Tensor loss, optim.Optimizer optimizer) { for (int i = 0; i < 3; i++) { loss.backward(); Steps.Step(optimizer); } } }")]
    [InlineData("MLP002, MLP003, MLP004, MLP006",
        "public static class Activations { public static Tensor Probabilities(Tensor t) => t.softmax(1); }",
        "class Losses { Tensor Loss(Tensor x, Tensor y) => functional.cross_entropy(Activations.Probabilities(x), y); }")]
    [InlineData("MLP007, MLP008",
        "public static class Modes { public static void Train(Module model) => model.train(); }",
        """
        class Trainer
        {
            void Train(IEnumerable<(Tensor x, Tensor y)> batches)
            {
                var model = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.5));
                var optimizer = optim.SGD(model.parameters(), 0.1);
                Modes.Train(model);
                foreach (var (x, y) in batches) { optimizer.zero_grad(); functional.cross_entropy(model.call(x), y).backward(); optimizer.step(); }
                using (torch.no_grad()) { Console.WriteLine(model.call(batches.First().x)); }
            }
        }
        """)]
    public async Task KNOWN_CRASH_a_call_into_another_project_as_the_IDE_compiles_it(string rules, string library, string application)
    {
        var libraryCompilation = CrashSafety.Compile(new[] { ("Library.cs", TorchSharpSources.Usings + library) }).WithAssemblyName("Library");
        var applicationCompilation = CrashSafety.Compile(
            new[] { ("Application.cs", TorchSharpSources.Usings + application) }, extraReferences: new[] { libraryCompilation.ToMetadataReference() });
        Assert.DoesNotContain(libraryCompilation.GetDiagnostics().Concat(applicationCompilation.GetDiagnostics()), d => d.Severity == DiagnosticSeverity.Error);

        // The same program as a command-line build compiles it is analysed without a crash.
        var asBuilt = CrashSafety.Compile(
            new[] { ("Application.cs", TorchSharpSources.Usings + application) }, extraReferences: new[] { CrashSafety.EmitToImage(libraryCompilation) });
        await CrashSafety.AssertAnalyzedAsync(asBuilt, $"a call into another project ({rules}) as a command-line build compiles it");

        await CrashSafety.AssertAnalyzedAsync(applicationCompilation, $"a call into another project ({rules}) as the IDE compiles it");
    }
}
