using System.Collections.Generic;
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
using Xunit.Abstractions;

namespace MlPitfalls.Analyzers.Tests.Analyses;

/// <summary>
/// The gradient analysis on its own: the sites of <c>M</c>'s first loop in its later iterations, each as
/// "kind anchor [path] {possible states before}".
/// </summary>
public class GradientAnalysisTests
{
    private readonly ITestOutputHelper _output;

    public GradientAnalysisTests(ITestOutputHelper output) => _output = output;

    internal static List<string> LaterSites(string body, string members = "")
    {
        var compilation = TestCompilation.Create(referenceTorchSharp: true, TorchSharpSources.Usings + $$"""
            class C
            {
                private optim.Optimizer field = null!;
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
        var graph = ControlFlowGraph.Create((Microsoft.CodeAnalysis.Operations.IMethodBodyOperation)model.GetOperation(method)!);
        var services = AnalysisServices.For(compilation)!;
        var whole = GradientAnalysis.For(services, graph, CancellationToken.None);
        var loop = method.DescendantNodes().First(n => n is ForStatementSyntax or CommonForEachStatementSyntax or WhileStatementSyntax or DoStatementSyntax);
        var range = LoopTable.For(graph).RangeOf(loop)!.Value;
        var later = GradientAnalysis.LaterIterations(services, graph, whole, range.Header, range.Last, null, CancellationToken.None)!;
        return later.Sites.OrderBy(s => s.Anchor.SpanStart).Select(s => $"{s.Kind} {s.Anchor} [{s.Path}|{s.Key}]{(s.Definite ? "" : "?")} {s.Before}").ToList();
    }

    [Theory]
    [InlineData("foreach (var x in batches) { Action trainStep = () => { model.call(x).sum().backward(); optimizer.step(); }; trainStep(); }")]
    [InlineData("var opt = optim.Adam(model.parameters()); foreach (var x in batches) { foreach (var p in model.parameters()) { p.grad = null; } model.call(x).sum().backward(); opt.step(); }")]
    [InlineData("var opt = optim.Adam(model.parameters()); foreach (var x in batches) { model.zero_grad(); model.call(x).sum().backward(); opt.step(); }")]
    [InlineData("var opt = optim.Adam(model.parameters()); foreach (var x in batches) { foreach (var p in model.parameters()) { p.grad?.zero_(); } model.call(x).sum().backward(); opt.step(); }")]
    [InlineData("foreach (var x in batches) { TrainStep(model, x); }", "void TrainStep(Module<Tensor, Tensor> model, Tensor x) { var o = optim.SGD(model.parameters(), 0.1); model.call(x).sum().backward(); o.step(); }")]
    [InlineData("foreach (var x in batches) { optimizer.step(Closure); }", "Tensor Closure() { var l = torch.ones(1).sum(); l.backward(); return l; }")]
    public void Dump(string body, string members = "")
    {
        foreach (var site in LaterSites(body, members))
        {
            _output.WriteLine(site);
        }
    }
}
