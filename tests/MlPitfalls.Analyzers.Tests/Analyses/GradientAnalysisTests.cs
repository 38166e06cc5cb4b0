using System.Collections.Generic;
using System.Collections.Immutable;
using System.Linq;
using System.Threading;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using Microsoft.CodeAnalysis.FlowAnalysis;
using Microsoft.CodeAnalysis.Operations;
using MlPitfalls.Analyzers.Analyses.Gradients;
using MlPitfalls.Analyzers.FlowAnalysis;
using MlPitfalls.Analyzers.Infrastructure;
using MlPitfalls.Analyzers.Tests.Infrastructure;
using MlPitfalls.Analyzers.Tests.Verifiers;
using Xunit;

namespace MlPitfalls.Analyzers.Tests.Analyses;

/// <summary>The gradient analysis on its own: what an optimizer's buffers may hold at a site, round a loop.</summary>
public class GradientAnalysisTests
{
    /// <summary>
    /// The states <paramref name="kind"/>'s first site in <c>M</c>'s first loop may see, on every path that has gone round
    /// the loop once; with <paramref name="skipClearsThatDoNotRunOnEveryPass"/>, as if the clears some passes skip were not there.
    /// </summary>
    private static string Before(GradientSiteKind kind, string body, string members = "", bool skipClearsThatDoNotRunOnEveryPass = false)
    {
        var compilation = TestCompilation.Create(referenceTorchSharp: true, TorchSharpSources.Usings + $$"""
            class C
            {
                private optim.Optimizer field = null!;
                private Module<Tensor, Tensor> net = nn.Linear(1, 1);
                void M(Module<Tensor, Tensor> model, optim.Optimizer optimizer, IEnumerable<Tensor> batches, bool c)
                {
            {{body}}
                }
            {{members}}
            }
            """);
        var tree = compilation.SyntaxTrees.Single();
        var model = compilation.GetSemanticModel(tree);
        var method = tree.GetRoot().DescendantNodes().OfType<MethodDeclarationSyntax>().Single(m => m.Identifier.ValueText == "M");
        var graph = ControlFlowGraph.Create((IMethodBodyOperation)model.GetOperation(method)!);
        var services = AnalysisServices.For(compilation)!;
        var whole = GradientAnalysis.For(services, graph, CancellationToken.None);
        var loop = method.DescendantNodes().First(n => n is ForStatementSyntax or CommonForEachStatementSyntax or WhileStatementSyntax or DoStatementSyntax);
        var loops = LoopTable.For(graph);
        var range = loops.RangeOf(loop)!.Value;
        var later = GradientAnalysis.LaterIterations(services, graph, whole, range.Header, range.Last, null, CancellationToken.None)!;
        if (skipClearsThatDoNotRunOnEveryPass)
        {
            var skipped = later.Sites.Where(s => s.Kind == GradientSiteKind.Clear && !loops.RunsOnEveryPass(s.Anchor, range)).Select(s => s.Anchor).ToImmutableHashSet();
            later = GradientAnalysis.LaterIterations(services, graph, whole, range.Header, range.Last, skipped, CancellationToken.None)!;
        }

        return later.Sites.Where(s => s.Kind == kind).OrderBy(s => s.Anchor.SpanStart).First().Before.ToString();
    }

    [Theory]
    [InlineData("foreach (var x in batches) { x.sum().backward(); optimizer.step(); }", "{Stale}")]
    [InlineData("foreach (var x in batches) { optimizer.zero_grad(); x.sum().backward(); optimizer.step(); }", "{Fresh}")]
    [InlineData("foreach (var x in batches) { x.sum().backward(); optimizer.step(); optimizer.zero_grad(); }", "{Fresh}")]
    [InlineData("foreach (var x in batches) { x.sum().backward(); optimizer.zero_grad(); optimizer.step(); }", "{Zero+lost}")]
    [InlineData("foreach (var x in batches) { if (c) optimizer.zero_grad(); x.sum().backward(); optimizer.step(); }", "{Fresh, Stale}")]
    [InlineData("foreach (var x in batches) { optimizer.zero_grad(); foreach (var m in x.chunk(4)) { m.sum().backward(); } optimizer.step(); }", "{Zero, Fresh}")]
    [InlineData("foreach (var x in batches) { foreach (var m in x.chunk(4)) { optimizer.zero_grad(); m.sum().backward(); } optimizer.step(); }", "{Fresh, Applied, Fresh+lost}")]
    public void Histories_follow_backward_step_and_clear_round_the_loop(string body, string expected)
        => Assert.Equal(expected, Before(GradientSiteKind.Step, body));

    [Theory]
    // One creation expression keeps its optimizers' buffers together: made on each pass, or copied.
    [InlineData("foreach (var x in batches) { var o = optim.SGD(model.parameters(), 0.1); x.sum().backward(); o.step(); }", "{Stale}")]
    [InlineData("var o = optim.SGD(model.parameters(), 0.1); foreach (var x in batches) { var same = o; x.sum().backward(); same.zero_grad(); o.step(); }", "{Zero+lost}")]
    // A module's zero_grad() clears the optimizers built from its parameters, and only those.
    [InlineData("var o = optim.SGD(model.parameters(), 0.1); foreach (var x in batches) { model.zero_grad(); x.sum().backward(); o.step(); }", "{Fresh}")]
    [InlineData("var o = optim.SGD(model.parameters(), 0.1); foreach (var x in batches) { net.zero_grad(); x.sum().backward(); o.step(); }", "{Stale}")]
    [InlineData("var o = optim.SGD(model.parameters(), 0.1); foreach (var x in batches) { foreach (var p in model.parameters()) p.grad = null; x.sum().backward(); o.step(); }", "{Fresh, Stale}")]
    // Two optimizers from different expressions do not share buffers; an optimizer of unknown origin may be either.
    [InlineData("var o = optim.SGD(model.parameters(), 0.1); var other = optim.SGD(net.parameters(), 0.1); foreach (var x in batches) { other.zero_grad(); x.sum().backward(); o.step(); }", "{Stale}")]
    [InlineData("var o = optim.SGD(model.parameters(), 0.1); foreach (var x in batches) { optimizer.zero_grad(); x.sum().backward(); o.step(); }", "{Fresh, Stale}")]
    public void Buffers_are_kept_by_creation_and_cleared_through_modules(string body, string expected)
        => Assert.Equal(expected, Before(GradientSiteKind.Step, body));

    [Theory]
    [InlineData("foreach (var x in batches) { x.sum().backward(); Apply(optimizer); }", "static void Apply(optim.Optimizer o) => o.step();", "{Stale}")]
    [InlineData("foreach (var x in batches) { Reset(optimizer); x.sum().backward(); optimizer.step(); }", "static void Reset(optim.Optimizer o) => o.zero_grad();", "{Fresh}")]
    [InlineData("foreach (var x in batches) { Reset(field); x.sum().backward(); optimizer.step(); }", "static void Reset(optim.Optimizer o) => o.zero_grad();", "{Fresh, Stale}")]
    [InlineData("foreach (var x in batches) { Train(x); }", "void Train(Tensor x) { x.sum().backward(); field.step(); }", "{Stale}")]
    [InlineData("foreach (var x in batches) { Train(x); }", "void Train(Tensor x) { field.zero_grad(); x.sum().backward(); field.step(); }", "{Fresh}")]
    [InlineData("foreach (var x in batches) { Train(model, x); }", "void Train(Module<Tensor, Tensor> m, Tensor x) { var o = optim.SGD(m.parameters(), 0.1); x.sum().backward(); o.step(); }", "{Stale}")]
    [InlineData("foreach (var x in batches) { Hook(); x.sum().backward(); optimizer.step(); }", "protected virtual void Hook() { }", "{Fresh, Stale}")]
    [InlineData("foreach (var x in batches) { Log(optimizer); x.sum().backward(); optimizer.step(); }", "static void Log(object o) => Console.WriteLine(o);", "{Stale}")]
    // A helper handed the optimizer passes it to code no one can read (here abstract, in real code another library): that
    // may clear, although nothing in the helper's text says so.
    [InlineData("foreach (var x in batches) { ResetAll(resetter, optimizer); x.sum().backward(); optimizer.step(); }", "static bool ResetAll(Resetter r, optim.Optimizer o) => r.Reset(o); static Resetter resetter = null!; public abstract class Resetter { public abstract bool Reset(optim.Optimizer o); }", "{Fresh, Stale}")]
    // A module's parts: nothing in them touches gradients, and they are not bound to learn it.
    [InlineData("foreach (var x in batches) { Forward(x); x.sum().backward(); optimizer.step(); }", "Tensor Forward(Tensor x) => net.call(cat(new[] { x, x }, 0));", "{Stale}")]
    // A catch handler may be entered anywhere in its try block: nothing is known there, in a helper as in the loop's body.
    [InlineData("foreach (var x in batches) { Train(field, x); }", "static void Train(optim.Optimizer o, Tensor x) { o.zero_grad(); try { x.sum().backward(); } catch { } o.step(); }", "{Zero, Fresh, Applied, Stale, Zero+lost, Fresh+lost, Applied+lost, Stale+lost}")]
    public void Helpers_apply_their_summaries(string body, string members, string expected)
        => Assert.Equal(expected, Before(GradientSiteKind.Step, body, members));

    [Theory]
    [InlineData("foreach (var x in batches) { Action step = () => { x.sum().backward(); optimizer.step(); }; step(); }", "{Stale}")]
    [InlineData("foreach (var x in batches) { Clear(); x.sum().backward(); optimizer.step(); } void Clear() => optimizer.zero_grad();", "{Fresh}")]
    [InlineData("foreach (var x in batches) { optimizer.step(() => { optimizer.zero_grad(); var l = x.sum(); l.backward(); return l; }); }", "{Fresh}")]
    [InlineData("var callbacks = new List<Action>(); foreach (var x in batches) { callbacks.Add(() => optimizer.zero_grad()); x.sum().backward(); optimizer.step(); }", "{Stale}")]
    [InlineData("foreach (var x in batches) { batches.ToList().ForEach(_ => optimizer.zero_grad()); x.sum().backward(); optimizer.step(); }", "{Fresh, Stale}")]
    public void Local_functions_and_lambdas_run_where_they_run(string body, string expected)
        => Assert.Equal(expected, Before(GradientSiteKind.Step, body));

    [Fact]
    public void A_lambda_that_calls_itself_through_its_local_is_read_once_and_may_clear()
        => Assert.Equal(
            "{Fresh, Stale}",
            Before(GradientSiteKind.Step, "Action f = null!; f = () => f(); foreach (var x in batches) { f(); x.sum().backward(); optimizer.step(); }"));

    [Fact]
    public void A_foreach_over_a_source_iterator_that_may_clear_forgets_what_it_knew()
        => Assert.NotEqual(
            "{Stale}",
            Before(
                GradientSiteKind.Step,
                "foreach (var x in Batches(batches)) { x.sum().backward(); optimizer.step(); }",
                "IEnumerable<Tensor> Batches(IEnumerable<Tensor> data) { foreach (var d in data) { field.zero_grad(); yield return d; } }"));

    [Theory]
    [InlineData("int i = 0; foreach (var x in batches) { if (i++ % 4 == 0) optimizer.zero_grad(); x.sum().backward(); optimizer.step(); }", "{Stale}")]
    [InlineData("foreach (var x in batches) { x.sum().backward(); optimizer.step(); if (c) continue; optimizer.zero_grad(); }", "{Stale}")]
    [InlineData("foreach (var x in batches) { optimizer.zero_grad(); x.sum().backward(); optimizer.step(); if (c) optimizer.zero_grad(); }", "{Fresh}")]
    public void Clears_some_passes_skip_can_be_left_out(string body, string expected)
        => Assert.Equal(expected, Before(GradientSiteKind.Step, body, skipClearsThatDoNotRunOnEveryPass: true));

    [Fact]
    public void A_clear_between_backward_and_step_erases_unapplied_gradients()
        => Assert.Equal("{Stale}", Before(GradientSiteKind.Clear, "foreach (var x in batches) { x.sum().backward(); optimizer.zero_grad(); optimizer.step(); }"));
}
