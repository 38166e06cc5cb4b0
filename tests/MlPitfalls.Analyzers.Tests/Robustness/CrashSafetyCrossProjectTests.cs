using System.Collections.Generic;
using System.Linq;
using System.Threading.Tasks;
using Microsoft.CodeAnalysis;
using MlPitfalls.Analyzers.Tests.Verifiers;
using Xunit;

namespace MlPitfalls.Analyzers.Tests.Robustness;

/// <summary>
/// Training code that calls into another C# project of the solution, as the IDE compiles it (the project referenced by
/// its compilation) and as a command-line build does (by its assembly): the crash-safety sweep found every rule but
/// MLP005 throwing AD0001 "SyntaxTree is not part of the compilation" on the first, when it followed the call into the
/// library's source. These are its minimal programs, one per rule family.
/// </summary>
public class CrashSafetyCrossProjectTests
{
    /// <summary>
    /// A helper declared in another C# project of the solution, called from the training code, as the IDE compiles it:
    /// Roslyn's workspace references a same-language project by its compilation (Compilation.ToMetadataReference), so the
    /// helper is a source symbol whose DeclaringSyntaxReferences lie in the library's syntax trees, which the compilation
    /// being analysed cannot bind: the rules read such code as a library's.
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
    public async Task A_call_into_another_project_raises_no_analyzer_exception(string rules, string library, string application)
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
