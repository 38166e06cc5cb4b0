using System.Linq;
using System.Threading;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using Microsoft.CodeAnalysis.FlowAnalysis;
using MlPitfalls.Analyzers.Analyses.Mode;
using MlPitfalls.Analyzers.Infrastructure;
using MlPitfalls.Analyzers.Tests.Infrastructure;
using MlPitfalls.Analyzers.Tests.Verifiers;
using Xunit;

namespace MlPitfalls.Analyzers.Tests.Analyses;

/// <summary>The mode analysis on its own: the mode of the receiver of the last <c>Use(m)</c> call in <c>M</c>.</summary>
public class ModeAnalysisTests
{
    private static int ModeAtUse(string body, string members = "") => Analyze(body, members).Mode;

    private static (int Mode, AnalysisServices Services) Analyze(string body, string members = "")
    {
        var compilation = TestCompilation.Create(referenceTorchSharp: true, TorchSharpSources.Usings + $$"""
            class C
            {
                private Module<Tensor, Tensor> field = nn.Linear(1, 1);
                static void Use(Module<Tensor, Tensor> module) { }
                void M(bool c, Module<Tensor, Tensor> parameter, IReadOnlyList<int> items)
                {
            {{body}}
                }
            {{members}}
            }
            """);
        var tree = compilation.SyntaxTrees.Single();
        var model = compilation.GetSemanticModel(tree);
        var method = tree.GetRoot().DescendantNodes().OfType<MethodDeclarationSyntax>().Single(m => m.Identifier.ValueText == "M");
        var graph = ControlFlowGraph.Create((Microsoft.CodeAnalysis.Operations.IMethodBodyOperation)model.GetOperation(method)!);
        var services = AnalysisServices.For(compilation)!;
        var result = ModeAnalysis.For(services, model.GetDeclaredSymbol(method)!, graph, CancellationToken.None);
        var argument = tree.GetRoot().DescendantNodes().OfType<InvocationExpressionSyntax>().Last(i => i.Expression.ToString() == "Use").ArgumentList.Arguments[0].Expression;
        return ((int)result.ValueOf(argument).Kinds, services);
    }

    [Theory]
    [InlineData("var m = nn.Linear(1, 1); Use(m);", (int)ModeKind.Train)]
    [InlineData("var m = nn.Linear(1, 1); m.eval(); Use(m);", (int)ModeKind.Eval)]
    [InlineData("var m = nn.Linear(1, 1); m.eval(); m.train(); Use(m);", (int)ModeKind.Train)]
    [InlineData("var m = nn.Linear(1, 1); m.train(false); Use(m);", (int)ModeKind.Eval)]
    [InlineData("var m = nn.Linear(1, 1); m.train(c); Use(m);", (int)ModeKind.Unknown)]
    [InlineData("Use(parameter);", (int)ModeKind.Unknown)]
    [InlineData("Use(field);", (int)ModeKind.Unknown)]
    [InlineData("field.eval(); Use(field);", (int)ModeKind.Eval)]
    [InlineData("var m = nn.Linear(1, 1); if (c) m.eval(); Use(m);", (int)(ModeKind.Train | ModeKind.Eval))]
    [InlineData("var m = nn.Linear(1, 1); foreach (var i in items) { m.eval(); } Use(m);", (int)(ModeKind.Train | ModeKind.Eval))]
    [InlineData("var m = nn.Linear(1, 1); foreach (var i in items) { Console.WriteLine(i); } Use(m);", (int)ModeKind.Train)]
    [InlineData("var m = nn.Linear(1, 1); foreach (var (i, j) in new[] { (1, 2) }) { Console.WriteLine(i); } Use(m);", (int)ModeKind.Train)]
    [InlineData("var m = nn.Linear(1, 1); var alias = m; alias.eval(); Use(m);", (int)ModeKind.Unknown)]
    [InlineData("var m = nn.Linear(1, 1); items.ToList().ForEach(i => m.eval()); Use(m);", (int)ModeKind.Unknown)]
    [InlineData("var m = nn.Linear(1, 1); m.eval(); var moved = m.to(torch.CPU); Use(moved);", (int)ModeKind.Eval)]
    [InlineData("var m = nn.Linear(1, 1); var opt = optim.Adam(m.parameters()); foreach (var i in items) { opt.zero_grad(); var loss = functional.mse_loss(m.call(torch.zeros(1)), torch.zeros(1)); loss.backward(); opt.step(); } Use(m);", (int)ModeKind.Train)]
    [InlineData("var m = nn.Linear(1, 1); foreach (var i in items) { var loss = functional.mse_loss(m.call(torch.zeros(1)), torch.zeros(1)); } Use(m);", (int)ModeKind.Train)]
    [InlineData("var m = nn.Linear(1, 1); using (torch.no_grad()) { Use(m); }", (int)ModeKind.Train)]
    [InlineData("var m = nn.Linear(1, 1); m.call(torch.zeros(1)); Use(m);", (int)ModeKind.Train)]
    [InlineData("var m = nn.Linear(1, 1); foreach (var (i, j) in new[] { (1, 2) }) { } Use(m);", (int)ModeKind.Train)]
    [InlineData("var m = nn.Linear(1, 1); foreach (var t in new[] { (1, 2) }) { } Use(m);", (int)ModeKind.Train)]
    [InlineData("var m = nn.Linear(1, 1); var (i, j) = (1, 2); Use(m);", (int)ModeKind.Train)]
    [InlineData("var m = nn.Linear(1, 1); m.eval(); using (torch.no_grad()) { Console.WriteLine(1); } Use(m);", (int)ModeKind.Eval)]
    [InlineData("var m = nn.Linear(1, 1); m.eval(); using (var g = torch.no_grad()) { Console.WriteLine(1); } Use(m);", (int)ModeKind.Eval)]
    [InlineData("var m = nn.Linear(1, 1); m.eval(); using var g = torch.no_grad(); Use(m);", (int)ModeKind.Eval)]
    [InlineData("var m = nn.Linear(1, 1); m.eval(); try { Console.WriteLine(1); } finally { m.train(); } Use(m);", (int)ModeKind.Unknown)]
    public void Modes_follow_the_calls_that_set_them(string body, int expected)
        => Assert.Equal((ModeKind)expected, (ModeKind)ModeAtUse(body));

    [Theory]
    [InlineData("var m = nn.Linear(1, 1); SetEval(m); Use(m);", (int)ModeKind.Eval)]
    [InlineData("var m = nn.Linear(1, 1); MaybeEval(m); Use(m);", (int)(ModeKind.Train | ModeKind.Eval))]
    [InlineData("var m = nn.Linear(1, 1); Nothing(m); Use(m);", (int)ModeKind.Train)]
    [InlineData("field.train(); EvalField(); Use(field);", (int)ModeKind.Eval)]
    [InlineData("var m = nn.Linear(1, 1); Lazy(m).ToList(); Use(m);", (int)ModeKind.Unknown)]
    public void Source_helpers_apply_their_summaries(string body, int expected)
        => Assert.Equal((ModeKind)expected, (ModeKind)ModeAtUse(body, """
                static void SetEval(Module<Tensor, Tensor> m) => m.eval();
                static void MaybeEval(Module<Tensor, Tensor> m) { if (DateTime.Now.Second > 3) m.eval(); }
                static void Nothing(Module<Tensor, Tensor> m) => Console.WriteLine(m);
                void EvalField() => field.eval();
                static IEnumerable<int> Lazy(Module<Tensor, Tensor> m) { m.eval(); yield return 1; }
            """));

    private const string EvalSteps = """
        static IEnumerable<int> EvalSteps(Module<Tensor, Tensor> m, IReadOnlyList<int> items)
        {
            m.eval();
            foreach (var i in items) { yield return i; }
        }

        static IEnumerable<int> Restoring(Module<Tensor, Tensor> m, IReadOnlyList<int> items)
        {
            m.eval();
            foreach (var i in items) { yield return i; }
            m.train();
        }
        """;

    [Theory]
    // A foreach over a source iterator: its body runs in the mode the iterator's steps leave, and after the loop the
    // iterator has run to its end.
    [InlineData("var m = nn.Linear(1, 1); foreach (var i in EvalSteps(m, items)) { } Use(m);", (int)ModeKind.Eval)]
    [InlineData("var m = nn.Linear(1, 1); foreach (var i in EvalSteps(m, items)) { Use(m); }", (int)ModeKind.Eval)]
    [InlineData("var m = nn.Linear(1, 1); foreach (var i in Restoring(m, items)) { } Use(m);", (int)ModeKind.Train)]
    [InlineData("var m = nn.Linear(1, 1); foreach (var i in Restoring(m, items)) { Use(m); }", (int)ModeKind.Eval)]
    [InlineData("var m = nn.Linear(1, 1); foreach (var i in Restoring(m, items)) { m.train(); } Use(m);", (int)ModeKind.Train)]
    [InlineData("var m = nn.Linear(1, 1); foreach (var i in Restoring(m, items)) { if (c) break; } Use(m);", (int)(ModeKind.Train | ModeKind.Eval))]
    [InlineData("var m = nn.Linear(1, 1); var other = nn.Linear(1, 1); foreach (var i in Restoring(other, items)) { } Use(m);", (int)ModeKind.Unknown)]
    [InlineData("var m = nn.Linear(1, 1); var steps = EvalSteps(m, items); Use(m);", (int)ModeKind.Unknown)]
    [InlineData("var m = nn.Linear(1, 1); foreach (var i in EvalSteps(m, items).ToList()) { } Use(m);", (int)ModeKind.Unknown)]
    public void A_foreach_over_an_iterator_applies_its_steps(string body, int expected)
        => Assert.Equal(expected, ModeAtUse(body, EvalSteps));

    private const string Helpers = """
            static void Outer(Module<Tensor, Tensor> m) => Middle(m);
            static void Middle(Module<Tensor, Tensor> m) { Console.WriteLine(1); Inner(m); }
            static void Inner(Module<Tensor, Tensor> m) => m.eval();
            static void ViaGroup(Module<Tensor, Tensor> m, List<Module<Tensor, Tensor>> all) => all.ForEach(Inner);
            static Tensor Features(Module<Tensor, Tensor> m, Tensor x) { var y = m.call(x); Log(y); return y.relu(); }
            static void Log(Tensor t) => Console.WriteLine(t.shape[0]);
        """;

    [Theory]
    // A switch two calls away, or a method group handed over, is still followed: the syntactic pre-filter only skips
    // helpers whose every callee is known not to switch.
    [InlineData("var m = nn.Linear(1, 1); Outer(m); Use(m);", (int)ModeKind.Eval)]
    [InlineData("var m = nn.Linear(1, 1); ViaGroup(m, new List<Module<Tensor, Tensor>>()); Use(m);", (int)ModeKind.Unknown)]
    [InlineData("var m = nn.Linear(1, 1); Features(m, torch.zeros(1)); Use(m);", (int)ModeKind.Train)]
    public void Helpers_reach_switches_through_their_callees(string body, int expected)
        => Assert.Equal((ModeKind)expected, (ModeKind)ModeAtUse(body, Helpers));

    [Fact]
    public void A_helper_that_cannot_reach_a_switch_is_not_analysed()
    {
        var (mode, services) = Analyze("var m = nn.Linear(1, 1); m.eval(); Features(m, torch.zeros(1)); Log(torch.zeros(1)); Use(m);", Helpers);
        Assert.Equal(ModeKind.Eval, (ModeKind)mode);
        Assert.Equal(0, services.SummariesComputed);
    }
}
