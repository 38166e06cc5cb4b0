using System.Threading.Tasks;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Testing;
using Xunit;
using Verifier = MlPitfalls.Analyzers.Tests.Verifiers.Verify<
    MlPitfalls.Analyzers.Losses.LogitsLossGivenProbabilitiesAnalyzer,
    MlPitfalls.CodeFixes.Losses.LossPairingCodeFix>;

namespace MlPitfalls.Analyzers.Tests.Review;

/// <summary>A second independent review's cases (scoped writes, the graph-free layer graph, list-built Sequentials): each pins the behaviour it checked.</summary>
public class SecondReviewLossTests
{
    private static DiagnosticResult MLP002(int marker = 0) => Verifier.DiagnosticAnyMessage(Descriptors.MLP002_LogitsLossGivenProbabilities).WithLocation(marker);

    private static string Step(string body) => $$"""
        class Trainer
        {
            void Train(Module<Tensor, Tensor> model, Tensor x, Tensor y, bool flag, int k)
            {
                var criterion = nn.CrossEntropyLoss();
        {{body}}
            }
        }
        """;

    private static Task TopLevel(string body, params DiagnosticResult[] expected)
    {
        var test = Verifier.Create();
        test.TestState.OutputKind = OutputKind.ConsoleApplication;
        test.TestCode = Verifier.Usings + """
            var model = nn.Linear(10, 3);
            var criterion = nn.CrossEntropyLoss();
            var x = torch.randn(4, 10);
            var y = torch.zeros(4, dtype: ScalarType.Int64);

            """ + body;
        test.ExpectedDiagnostics.AddRange(expected);
        return test.RunAsync();
    }

    [Fact]
    public Task T01_top_level_reassigned_to_logits()
        => TopLevel("""
            var output = model.call(x).softmax(1);
            output = model.call(x);
            var loss = criterion.call(output, y);
            """);

    [Fact]
    public Task T02_top_level_reassigned_to_softmax()
        => TopLevel("""
            var output = model.call(x);
            output = {|#0:output.softmax(1)|};
            var loss = criterion.call(output, y);
            """, MLP002());

    [Fact]
    public Task T03_top_level_plain_true_positive()
        => TopLevel("""
            var output = {|#0:model.call(x).softmax(1)|};
            var loss = criterion.call(output, y);
            """, MLP002());

    [Fact]
    public Task M01_switch_section_write()
        => Verifier.AnalyzerAsync(Step("""
                    switch (k)
                    {
                        case 0:
                            var t = model.call(x).softmax(1);
                            break;
                        default:
                            t = model.call(x);
                            var loss = criterion.call(t, y);
                            break;
                    }
            """));

    [Fact]
    public Task M02_catch_write()
        => Verifier.AnalyzerAsync(Step("""
                    var t = model.call(x).softmax(1);
                    try { x.print(); } catch (Exception) { t = model.call(x); }
                    var loss = criterion.call(t, y);
            """));

    [Fact]
    public Task M03_for_iterator_write()
        => Verifier.AnalyzerAsync(Step("""
                    for (var t = model.call(x).softmax(1); flag; t = model.call(x))
                    {
                        var loss = criterion.call(t, y);
                    }
            """));

    [Fact]
    public Task M04_lambda_write()
        => Verifier.AnalyzerAsync(Step("""
                    var t = model.call(x).softmax(1);
                    Action a = () => t = model.call(x);
                    a();
                    var loss = criterion.call(t, y);
            """));

    [Fact]
    public Task M05_nested_block_write_and_sibling_scope()
        => Verifier.AnalyzerAsync(Step("""
                    var t = model.call(x).softmax(1);
                    if (flag) { t = model.call(x); }
                    var loss = criterion.call(t, y);
                    { var u = model.call(x); u = u + 1; }
                    { var u = {|#0:model.call(x).softmax(1)|}; var loss2 = criterion.call(u, y); }
            """), MLP002());

    [Fact]
    public Task M06_local_function_write()
        => Verifier.AnalyzerAsync(Step("""
                    var t = model.call(x).softmax(1);
                    void Reset() => t = model.call(x);
                    Reset();
                    var loss = criterion.call(t, y);
            """));

    [Fact]
    public Task M07_out_and_ref_write()
        => Verifier.AnalyzerAsync(Step("""
                    var t = model.call(x).softmax(1);
                    Fill(out t, model, x);
                    var loss = criterion.call(t, y);
                }
                static void Fill(out Tensor t, Module<Tensor, Tensor> m, Tensor x) { t = m.call(x);
            """));

    [Fact]
    public Task M08_deconstruction_write()
        => Verifier.AnalyzerAsync(Step("""
                    var t = model.call(x).softmax(1);
                    (t, flag) = (model.call(x), true);
                    var loss = criterion.call(t, y);
            """));

    [Fact]
    public Task T02m_method_reassigned_to_softmax()
        => Verifier.AnalyzerAsync(Step("""
                    var output = model.call(x);
                    output = {|#0:output.softmax(1)|};
                    var loss = criterion.call(output, y);
            """), MLP002());

    [Fact]
    public Task T01m_method_reassigned_to_logits()
        => Verifier.AnalyzerAsync(Step("""
                    var output = model.call(x).softmax(1);
                    output = model.call(x);
                    var loss = criterion.call(output, y);
            """));
}
