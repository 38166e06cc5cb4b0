using System.Diagnostics;
using System.Linq;
using System.Threading.Tasks;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using Microsoft.CodeAnalysis.Testing;
using MlPitfalls.Analyzers.Analyses.Gradients;
using MlPitfalls.Analyzers.Infrastructure;
using MlPitfalls.Analyzers.Tests.AllRules;
using Xunit;
using Xunit.Abstractions;
using static MlPitfalls.Analyzers.Tests.TrainingLoop.Expected;
using Verifier = MlPitfalls.Analyzers.Tests.Verifiers.Verify<
    MlPitfalls.Analyzers.TrainingLoop.GradientsNotClearedAnalyzer,
    MlPitfalls.CodeFixes.TrainingLoop.GradientsNotClearedCodeFix>;

namespace MlPitfalls.Analyzers.Tests.Review;

/// <summary>
/// Review of e724ad5/3c106f2: the step gate follows local functions declared outside the walked loop, whatever their
/// shape. Their cost (local functions calling each other, long chains) is in the stress programs of the crash sweep.
/// </summary>
public class LocalFunctionReachReviewTests
{
    private readonly ITestOutputHelper _output;

    public LocalFunctionReachReviewTests(ITestOutputHelper output) => _output = output;

    private static string Training(string body) => TrainingLoop.GradientsNotClearedAnalyzerTests.Training(body);

    [Fact]
    public Task LF1_generic_local_function_declared_before_the_loop()
        => Verifier.AnalyzerAsync(Training("""
                    void TrainStep<T>(Tensor x, Tensor y, T tag)
                    {
                        criterion.call(model.call(x), y).backward();
                        optimizer.step();
                    }

                    foreach (var (x, y) in batches)
                    {
                        {|#0:TrainStep(x, y, 1)|};
                    }
            """), MLP001());

    [Fact]
    public Task LF2_expression_bodied_local_function()
        => Verifier.AnalyzerAsync(Training("""
                    void Step() => optimizer.step();

                    foreach (var (x, y) in batches)
                    {
                        {|#0:criterion.call(model.call(x), y).backward()|};
                        Step();
                    }
            """), MLP001());

    [Fact]
    public Task LF3_loop_in_a_local_function_calls_a_sibling_local_function()
        => Verifier.AnalyzerAsync(Training("""
                    void TrainStep(Tensor x, Tensor y)
                    {
                        criterion.call(model.call(x), y).backward();
                        optimizer.step();
                    }

                    void Run()
                    {
                        foreach (var (x, y) in batches)
                        {
                            {|#0:TrainStep(x, y)|};
                        }
                    }

                    Run();
            """), MLP001());

    [Fact]
    public async Task LF5_top_level_local_function_declared_after_the_loop()
    {
        var test = Verifier.Create();
        test.TestState.OutputKind = Microsoft.CodeAnalysis.OutputKind.ConsoleApplication;
        test.TestCode = Verifier.Usings + """
            var model = nn.Linear(10, 1);
            var optimizer = optim.Adam(model.parameters());
            var batches = new List<(Tensor x, Tensor y)>();

            foreach (var (x, y) in batches)
            {
                {|#0:TrainStep(x, y)|};
            }

            static void Unrelated() { }

            void TrainStep(Tensor x, Tensor y)
            {
                functional.mse_loss(model.call(x), y).backward();
                optimizer.step();
            }
            """;
        test.ExpectedDiagnostics.Add(MLP001());
        await test.RunAsync();
    }


    /// <summary>GradientReach.MayStep on the member's only foreach loop, asked directly.</summary>
    private static bool MayStep(string source)
    {
        var compilation = AllAnalyzers.Compile(LanguageVersion.Latest, addUsings: true, source);
        var services = AnalysisServices.For(compilation)!;
        var tree = compilation.SyntaxTrees.Single();
        var loop = tree.GetRoot().DescendantNodes().OfType<ForEachVariableStatementSyntax>().Single();
        var operation = compilation.GetSemanticModel(tree).GetOperation(loop)!;
        return GradientReach.MayStep(services, operation, default);
    }

    [Theory]
    [InlineData("Self(3);")]
    [InlineData("Ping(3);")]
    [InlineData("viaLambda(3);")]
    public void LF7_the_gate_passes_recursive_helpers(string call)
        => Assert.True(MayStep(Training($$"""
                    Action<int> viaLambda = null;
                    void Self(int n) { if (n > 0) Self(n - 1); }
                    void Ping(int n) { if (n > 0) Pong(n - 1); }
                    void Pong(int n) { if (n > 0) { Ping(n - 1); viaLambda(n - 1); } }
                    viaLambda = n => { if (n > 0) Pong(n - 1); };

                    void TrainStep(Tensor x, Tensor y)
                    {
                        {{call}}
                        criterion.call(model.call(x), y).backward();
                        optimizer.step();
                    }

                    foreach (var (x, y) in batches)
                    {
                        TrainStep(x, y);
                    }
            """)));

    [Theory]
    [InlineData("static void Step(torch.optim.Optimizer o) { o.step(); }", "Step(optimizer);")]
    [InlineData("async System.Threading.Tasks.Task Step() { await System.Threading.Tasks.Task.Yield(); optimizer.step(); }", "_ = Step();")]
    [InlineData("IEnumerable<int> Step() { optimizer.step(); yield return 1; }", "Step();")]
    [InlineData("void Outer() { void Step() => optimizer.step(); Step(); }", "Outer();")]
    [InlineData("Action a = () => { void Step() => optimizer.step(); Step(); };", "a();")]
    public void LF8_the_gate_passes_other_local_function_shapes(string declaration, string call)
        => Assert.True(MayStep(Training($$"""
                    {{declaration}}
                    foreach (var (x, y) in batches)
                    {
                        {{call}}
                    }
            """)));
}
