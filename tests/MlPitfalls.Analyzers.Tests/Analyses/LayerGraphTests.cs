using System.Collections.Immutable;
using System.Linq;
using System.Threading;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using Microsoft.CodeAnalysis.FlowAnalysis;
using Microsoft.CodeAnalysis.Operations;
using MlPitfalls.Analyzers.Analyses.LayerGraph;
using MlPitfalls.Analyzers.Infrastructure;
using MlPitfalls.Analyzers.Tests.Infrastructure;
using Xunit;

namespace MlPitfalls.Analyzers.Tests.Analyses;

/// <summary>The layer-graph analysis, asked directly: which layer outputs go straight into a normalization, and which go elsewhere.</summary>
public class LayerGraphTests
{
    private const string Source = """
        class Net : Module<Tensor, Tensor>
        {
            private readonly Conv2d conv = nn.Conv2d(3, 16, 3);
            private readonly Conv2d other = nn.Conv2d(3, 16, 3);
            private readonly Linear fc = nn.Linear(16, 16);
            private readonly BatchNorm2d bn = nn.BatchNorm2d(16);
            private readonly Module<Tensor, Tensor> head = nn.Sequential(nn.ReLU(), nn.Linear(16, 4));
            public Net() : base("net") { RegisterComponents(); }
            public override Tensor forward(Tensor x) => bn.call(conv.call(x));
            Tensor ThroughLocals(Tensor x) { var h = conv.call(x); var g = h; return bn.call(g); }
            Tensor Merged(Tensor x, bool c) { var h = c ? conv.call(x) : other.call(x); return bn.call(h); }
            Tensor LoopCarried(Tensor x) { var h = conv.call(x); for (int i = 0; i < 3; i++) h = other.call(h); return bn.call(h); }
            Tensor Summed(Tensor x) => bn.call(conv.call(x) + x);
            Tensor Returned(Tensor x) { var h = fc.call(x); return h; }
            Tensor SequentialLast(Tensor x) => bn.call(head.call(x));
            Tensor NoModules(Tensor x) => x * 2;
        }
        """;

    private static (LayerUses Uses, Compilation Compilation) Analyse(string method)
    {
        var compilation = TestCompilation.Create(sources: Source);
        var graph = ControlFlowGraph.Create(TestCompilation.MethodBodyOperation(compilation, method));
        return (LayerGraphAnalysis.For(AnalysisServices.For(compilation)!, graph, CancellationToken.None), compilation);
    }

    private static string[] Normalized(LayerUses uses) => uses.NormalizedOutputs.Select(n => n.Layer.Syntax.ToString() + " -> " + n.Normalization.Type.Name).ToArray();

    private static string[] Elsewhere(LayerUses uses) => uses.UsedElsewhereLayers.Select(s => s.ToString()).OrderBy(s => s).ToArray();

    [Theory]
    [InlineData("forward")]
    [InlineData("ThroughLocals")]
    public void A_layer_output_passed_to_a_normalization_nested_or_through_locals_is_an_edge(string method)
    {
        var (uses, _) = Analyse(method);
        Assert.Equal(new[] { "nn.Conv2d(3, 16, 3) -> BatchNorm2d" }, Normalized(uses));
        Assert.Empty(uses.UsedElsewhereLayers);
        Assert.False(uses.UsesAnything);
    }

    [Fact]
    public void Two_layers_merged_on_different_paths_are_no_edge_and_both_count_as_used_elsewhere()
    {
        var (uses, _) = Analyse("Merged");
        Assert.Empty(uses.NormalizedOutputs);
        Assert.Equal(2, uses.UsedElsewhereLayers.Count);
    }

    [Fact]
    public void A_loop_carried_value_joins_the_first_layer_and_the_loop_layer()
    {
        var (uses, _) = Analyse("LoopCarried");
        Assert.Empty(uses.NormalizedOutputs); // conv on the first path, other after an iteration: not one layer
        Assert.Equal(2, uses.UsedElsewhereLayers.Count); // conv is also the input of other; other's output merges
    }

    [Theory]
    [InlineData("Summed", "nn.Conv2d(3, 16, 3)")]
    [InlineData("Returned", "nn.Linear(16, 16)")]
    public void A_layer_output_used_otherwise_is_recorded_and_is_no_edge(string method, string layer)
    {
        var (uses, _) = Analyse(method);
        Assert.Empty(uses.NormalizedOutputs);
        Assert.Equal(new[] { layer }, Elsewhere(uses));
    }

    [Fact]
    public void A_sequential_call_gives_its_last_childs_output_when_created_in_place()
    {
        var (uses, _) = Analyse("SequentialLast");
        Assert.Equal(new[] { "nn.Linear(16, 4) -> BatchNorm2d" }, Normalized(uses));
    }

    [Fact]
    public void A_body_without_module_calls_has_no_uses()
    {
        var (uses, _) = Analyse("NoModules");
        Assert.Empty(uses.NormalizedOutputs);
        Assert.Empty(uses.UsedElsewhereLayers);
    }

    [Theory]
    [InlineData("forward", false)]
    [InlineData("ThroughLocals", false)]
    [InlineData("Summed", false)]
    [InlineData("Returned", false)]
    [InlineData("SequentialLast", false)]
    [InlineData("Merged", false)]
    [InlineData("LoopCarried", true)]
    public void A_body_of_locals_assigned_once_is_read_without_the_graph_and_agrees_with_the_dataflow(string method, bool needsFlow)
    {
        var compilation = TestCompilation.Create(sources: Source);
        var body = TestCompilation.MethodBodyOperation(compilation, method);
        var services = AnalysisServices.For(compilation)!;
        Assert.Equal(needsFlow, LayerGraphAnalysis.NeedsFlow(services.Torch, ImmutableArray.Create<IOperation>(body), CancellationToken.None));
        if (!needsFlow)
        {
            var direct = LayerGraphAnalysis.ForWithoutFlow(services, ImmutableArray.Create<IOperation>(body), CancellationToken.None);
            var flow = LayerGraphAnalysis.For(services, ControlFlowGraph.Create(body), CancellationToken.None);
            Assert.Equal(Normalized(flow), Normalized(direct));
            Assert.Equal(Elsewhere(flow), Elsewhere(direct));
        }
    }
}
