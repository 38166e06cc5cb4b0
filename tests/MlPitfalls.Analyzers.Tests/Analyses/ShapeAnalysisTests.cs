using System.Linq;
using System.Threading;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using Microsoft.CodeAnalysis.FlowAnalysis;
using MlPitfalls.Analyzers.Analyses.Shapes;
using MlPitfalls.Analyzers.Infrastructure;
using MlPitfalls.Analyzers.Tests.Infrastructure;
using MlPitfalls.Analyzers.Tests.Verifiers;
using Xunit;

namespace MlPitfalls.Analyzers.Tests.Analyses;

/// <summary>
/// The shape analysis on small programs: what it knows about the tensor viewed by the last <c>view</c> call of the body
/// (its receiver), written as the analysis writes it: dimensions as products of symbols, <c>permuted</c> when a move left
/// it out of memory order, <c>Unknown</c> when it knows nothing.
/// </summary>
public class ShapeAnalysisTests
{
    private static string ShapeOfViewed(string body)
    {
        var compilation = TestCompilation.Create(referenceTorchSharp: true, TorchSharpSources.Usings + $$"""
            class C
            {
                private Tensor field = torch.zeros(1);
                private readonly long heads = 4;
                void Helper() { }
                Tensor M(Tensor x, Tensor y, long n, bool flag, System.Collections.Generic.List<int> items)
                {
            {{body}}
                }
            }
            """);
        var tree = compilation.SyntaxTrees.Single();
        var model = compilation.GetSemanticModel(tree);
        var method = tree.GetRoot().DescendantNodes().OfType<MethodDeclarationSyntax>().Single(m => m.Identifier.ValueText == "M");
        var graph = ControlFlowGraph.Create((Microsoft.CodeAnalysis.Operations.IMethodBodyOperation)model.GetOperation(method)!);
        var result = ShapeAnalysis.For(TorchSymbols.For(compilation)!, graph, CancellationToken.None);
        var view = method.DescendantNodes().OfType<InvocationExpressionSyntax>()
            .Last(i => i.Expression is MemberAccessExpressionSyntax { Name.Identifier.ValueText: "view" });
        return result.ValueOf(((MemberAccessExpressionSyntax)view.Expression).Expression).ToString();
    }

    [Theory]
    // Read from the tensor itself: by index, through locals, a deconstruction, a shape array, from the end.
    [InlineData("var b = x.shape[0]; return x.view(b, -1);", "(rank ?)")]
    [InlineData("return x.permute(0, 2, 1).view(-1);", "permuted (x.shape[0], x.shape[2], x.shape[1])")]
    [InlineData("var (b, c) = (x.shape[0], x.size(1)); var z = x.view(b, c); return z.t().view(-1);", "permuted (x.shape[1], x.shape[0])")]
    [InlineData("var s = x.shape; var z = x.view(s[0], s[1]); return z.view(-1);", "(x.shape[0], x.shape[1])")]
    [InlineData("var z = x.view(x.size(-1), x.shape[^2]); return z.view(-1);", "(x.shape[-1], x.shape[-2])")]
    // Given by view, reshape and factories; -1 inferred from the element count; unknown sizes named by their code.
    [InlineData("var z = torch.zeros(n, 3, heads); return z.view(-1);", "(n, 3, heads)")]
    [InlineData("var z = torch.ones(new long[] { n, 2 * n }); return z.view(-1);", "(n, 2 * n)")]
    [InlineData("var z = x.view(n, heads, -1); var w = z.view(n * heads, -1); return w.view(-1);", "(n * heads, -1)")]
    [InlineData("var z = torch.zeros(n, 8).view(n, 2, -1); return z.view(-1);", "(n, 2, 4)")]
    [InlineData("var z = x.view(n, items.Count); return z.view(-1);", "(n, items.Count)")]
    // Moves: transpose, permute, t, T, mT, composed; moving back restores memory order; size-1 dimensions do not count.
    [InlineData("var z = torch.zeros(n, 4, 5).transpose(1, 2); return z.view(-1);", "permuted (n, 5, 4)")]
    [InlineData("var z = torch.zeros(n, 4, 5).transpose(1, 2).transpose(1, 2); return z.view(-1);", "(n, 4, 5)")]
    [InlineData("var z = torch.zeros(n, 4, 5).mT; return z.view(-1);", "permuted (n, 5, 4)")]
    [InlineData("var z = torch.zeros(n, 4, 5).T; return z.view(-1);", "permuted (5, 4, n)")]
    [InlineData("var z = torch.zeros(n, 4, 5).permute(0, 2, 1).permute(0, 2, 1); return z.view(-1);", "(n, 4, 5)")]
    [InlineData("var z = torch.zeros(n, 1, 5).transpose(0, 1); return z.view(-1);", "(1, n, 5)")]
    [InlineData("var z = torch.zeros(n, 4).unsqueeze(1).squeeze(1); return z.view(-1);", "(n, 4)")]
    [InlineData("var z = torch.zeros(n, 4, 5).flatten(1); return z.view(-1);", "(n, 20)")]
    // What keeps the strides of a moved tensor, and what returns fresh memory.
    [InlineData("var z = (torch.zeros(n, 4).t() * 2).relu().clone(); return z.view(-1);", "permuted (4, n)")]
    [InlineData("var z = torch.zeros(n, 4).t().contiguous(); return z.view(-1);", "(4, n)")]
    [InlineData("var z = torch.matmul(torch.zeros(n, 4, 5), torch.zeros(n, 5, 6)); return z.view(-1);", "(n, 4, 6)")]
    [InlineData("var z = torch.zeros(n, 4).t().softmax(-1); return z.view(-1);", "(4, n)")]
    // Branches and loops: a merge of different shapes is unknown; the same shape on every path is kept.
    [InlineData("var z = flag ? torch.zeros(n, 4) : torch.ones(n, 4); return z.view(-1);", "(n, 4)")]
    [InlineData("var z = flag ? torch.zeros(n, 4) : torch.ones(n, 5); return z.view(-1);", "(n, ?)")]
    // (after such a merge, the variable is a tensor met for the first time: fresh symbols, taken to be in memory order)
    [InlineData("var z = torch.zeros(n, 4).t(); if (flag) z = z.contiguous(); return z.view(-1);", "(rank ?)")]
    [InlineData("var z = torch.zeros(n, 4); foreach (var i in items) { z = z.t(); } return z.view(-1);", "(rank ?)")]
    [InlineData("var z = torch.zeros(n, 4); foreach (var i in items) { z = z * 2; } return z.view(-1);", "(n, 4)")]
    // In place: a move changes the variable itself; other in-place operations keep its shape and strides.
    [InlineData("var z = torch.zeros(n, 4, 5); z.transpose_(1, 2); return z.view(-1);", "permuted (n, 5, 4)")]
    [InlineData("var z = torch.zeros(n, 4).t(); z.mul_(2).add_(1); return z.view(-1);", "permuted (4, n)")]
    [InlineData("var z = torch.zeros(n, 4); z.unsqueeze_(0); return z.view(-1);", "(1, n, 4)")]
    // Fields written in the method; anything a call may change is forgotten.
    [InlineData("field = torch.zeros(n, 3); return field.view(-1);", "(n, 3)")]
    [InlineData("field = torch.zeros(n, 3); Helper(); return field.view(-1);", "(rank ?)")]
    public void The_viewed_tensor_has_the_shape_the_code_gives_it(string body, string expected)
        => Assert.Equal(expected, ShapeOfViewed(body.Replace("Helper();", "System.Console.WriteLine(); this.Helper();")));
}
