using System.Linq;
using System.Threading;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using Microsoft.CodeAnalysis.FlowAnalysis;
using Microsoft.CodeAnalysis.Operations;
using MlPitfalls.Analyzers.Analyses.Composition;
using MlPitfalls.Analyzers.Analyses.Provenance;
using MlPitfalls.Analyzers.Infrastructure;
using MlPitfalls.Analyzers.Tests.Infrastructure;
using Xunit;

namespace MlPitfalls.Analyzers.Tests.Analyses;

/// <summary>The provenance analysis, the composition model and the method summaries, asked directly.</summary>
public class ProvenanceAndCompositionTests
{
    private const string Source = """
        class Net : Module<Tensor, Tensor>
        {
            private readonly Sequential layers;
            public Net() : base("net") { layers = nn.Sequential(("fc", nn.Linear(4, 3)), ("act", nn.Sigmoid()), ("drop", nn.Dropout(0.1))); RegisterComponents(); }
            public override Tensor forward(Tensor x) => layers.call(x);
        }

        class Uses
        {
            static Tensor Probs(Tensor t) => t.softmax(1);
            Tensor A(Tensor x) => Probs(x) + Probs(x * 2);
            Tensor B(Tensor x) => Probs(x);
            void M(Tensor x, bool c)
            {
                var net = new Net();
                Use(net.call(x));
                var y = c ? x.softmax(1) : x.log_softmax(1);
                Use(y);
                Use(x.softmax(1).log());
                Use(x.softmax(1)[.., 0].T);
            }
            static void Use(Tensor t) { }
        }
        """;

    private static (Compilation Compilation, AnalysisServices Services, ControlFlowGraph Graph) Analyse(string method)
    {
        var compilation = TestCompilation.Create(sources: Source);
        var graph = ControlFlowGraph.Create(TestCompilation.MethodBodyOperation(compilation, method));
        return (compilation, AnalysisServices.For(compilation)!, graph);
    }

    private static Provenance[] UseArguments(string method)
    {
        var (_, services, graph) = Analyse(method);
        var result = ProvenanceAnalysis.For(services, graph, CancellationToken.None);
        return graph.OriginalOperation.Syntax.DescendantNodes().OfType<InvocationExpressionSyntax>()
            .Where(i => i.Expression.ToString() == "Use")
            .Select(i => result.ValueOf(i.ArgumentList.Arguments[0].Expression))
            .ToArray();
    }

    [Fact]
    public void Module_calls_take_the_provenance_of_the_last_child_that_changes_values()
    {
        var uses = UseArguments("M");
        Assert.True(uses[0].Is(TensorKind.Sigmoid)); // Net.forward → layers: Linear, Sigmoid, Dropout (passes values through)
        Assert.Equal("nn.Sigmoid()", uses[0].Origins.Single().ToString());
    }

    [Fact]
    public void Must_and_may_queries_tell_a_merge_of_two_kinds_from_one_kind()
    {
        var merged = UseArguments("M")[1];
        Assert.False(merged.Is(TensorKind.Softmax));
        Assert.True(merged.MayBe(TensorKind.Softmax));
        Assert.True(merged.MayBe(TensorKind.LogSoftmax));
        Assert.Equal(2, merged.Origins.Length);
    }

    [Fact]
    public void Log_of_softmax_is_log_probabilities_and_slices_and_transposes_keep_the_kind()
    {
        var uses = UseArguments("M");
        Assert.True(uses[2].Is(TensorKind.LogProbabilities));
        Assert.True(uses[3].Is(TensorKind.Softmax));
    }

    [Fact]
    public void A_helper_is_summarised_once_per_compilation_however_often_it_is_asked()
    {
        var (compilation, services, _) = Analyse("A");
        var tree = compilation.SyntaxTrees.Single();
        var model = compilation.GetSemanticModel(tree);
        foreach (var name in new[] { "A", "B" })
        {
            var syntax = tree.GetRoot().DescendantNodes().OfType<MethodDeclarationSyntax>().Single(m => m.Identifier.ValueText == name);
            ProvenanceAnalysis.For(services, ControlFlowGraph.Create((IMethodBodyOperation)model.GetOperation(syntax)!), CancellationToken.None);
        }

        var probs = (IMethodSymbol)compilation.GetSymbolsWithName("Probs").Single();
        Assert.True(ProvenanceAnalysis.ReturnedBy(services, probs, CancellationToken.None).Is(TensorKind.Softmax));
        Assert.Equal(1, services.SummariesComputed); // three calls in two methods, then a direct question: one analysis of Probs
    }

    [Fact]
    public void A_members_writes_are_found_by_its_name_and_nothing_that_only_looks_like_it()
    {
        // Writes are found from where the name occurs in the class's text: comments, strings, longer names and other
        // classes must not count, and every real way of writing it must (a deconstruction, through 'this', verbatim).
        var compilation = TestCompilation.Create(sources: """
            class Net
            {
                // fc = nn.Softmax(1) in a comment is no write
                private readonly Module<Tensor, Tensor> fc = nn.Linear(4, 4);
                private readonly Module<Tensor, Tensor> fc2;
                private Module<Tensor, Tensor> head = nn.Linear(4, 2);
                private Module<Tensor, Tensor> tail = nn.Linear(4, 2);
                private Module<Tensor, Tensor> @out = nn.Linear(4, 2);
                public Net()
                {
                    fc2 = nn.Softmax(1);
                    var text = "fc = nn.Softmax(1)";
                    (head, var n) = (nn.Softmax(1), 1);
                    this.tail = nn.Sigmoid();
                    @out = nn.Softmax(1);
                }
                Tensor Use(Tensor x) => fc.call(x) + fc2.call(x) + head.call(x) + tail.call(x) + @out.call(x);
            }
            class Escaped
            {
                private Module<Tensor, Tensor> escaped = nn.Linear(4, 2);
                public Escaped() { \u0065scaped = nn.Softmax(1); }
                Tensor Use(Tensor x) => escaped.call(x);
            }
            class Other
            {
                private Module<Tensor, Tensor> fc = nn.Softmax(1);
                void M() { fc = nn.Sigmoid(); }
            }
            """);
        var services = AnalysisServices.For(compilation)!;
        var tree = compilation.SyntaxTrees.Single();
        var model = compilation.GetSemanticModel(tree);
        ModuleModel? Field(string name) => services.Modules.Describe(
            model.GetOperation(tree.GetRoot().DescendantNodes().OfType<MethodDeclarationSyntax>().Where(m => m.Identifier.ValueText == "Use")
                .SelectMany(m => m.DescendantNodes().OfType<MemberAccessExpressionSyntax>()).First(a => a.Expression.ToString() == name).Expression)!,
            CancellationToken.None);

        Assert.Equal("Linear", Field("fc")!.Type.Name); // its initializer only: the comment, the string, fc2 and Other.fc are not its writes
        Assert.Equal("Softmax", Field("fc2")!.Type.Name);
        // Written twice (initializer and constructor), with different modules: the code does not pin it down.
        Assert.Null(Field("head"));
        Assert.Null(Field("tail"));
        Assert.Null(Field("@out"));
        Assert.Null(Field("escaped")); // a class whose text has a Unicode escape is walked, so the escaped write is found
    }

    [Fact]
    public void The_composition_model_reads_sequential_children_from_a_constructor_assignment()
    {
        var (compilation, services, _) = Analyse("M");
        var tree = compilation.SyntaxTrees.Single();
        var forward = tree.GetRoot().DescendantNodes().OfType<MethodDeclarationSyntax>().Single(m => m.Identifier.ValueText == "forward");
        var receiver = compilation.GetSemanticModel(tree).GetOperation(forward.DescendantNodes().OfType<MemberAccessExpressionSyntax>().First().Expression)!;
        var model = services.Modules.Describe(receiver, CancellationToken.None)!;
        Assert.Equal("Sequential", model.Type.Name);
        Assert.Equal(new[] { "fc", "act", "drop" }, model.Children.Select(c => c.Name));
        Assert.Equal(new[] { "Linear", "Sigmoid", "Dropout" }, model.Children.Select(c => c.Model!.Type.Name));
    }

    [Fact]
    public void A_loss_input_fed_by_calls_or_variables_written_once_is_read_without_the_graph_and_agrees_with_the_dataflow()
    {
        var compilation = TestCompilation.Create(sources: """
            class Uses
            {
                private readonly Module<Tensor, Tensor> model = nn.Sequential(nn.Linear(4, 3), nn.Softmax(1));
                private Tensor cached;
                private Tensor stored;
                void M(Tensor x, bool c, Tensor written, GRU rnn, Tensor h)
                {
                    Use(model.call(x));
                    Use(nn.Dropout(0.1).call(x.softmax(1)));
                    Use(x.view(-1, 3).log_softmax(1)[.., 0]);
                    Use(x * 2);
                    var local = x.softmax(1);
                    Use(local);
                    Use(c ? x.softmax(1) : x);
                    Use(nn.Dropout(0.1).call(local));
                    var chained = model.call(x);
                    var viewed = chained.view(-1, 3);
                    Use(viewed);
                    Use(x);
                    Use(cached);
                    (var output, h) = rnn.call(x, h);
                    Use(output);
                    var twice = x.softmax(1);
                    if (c) twice = x;
                    Use(twice);
                    var inPlace = x.softmax(1);
                    inPlace.log_();
                    Use(inPlace);
                    written = written.softmax(1);
                    Use(written);
                    stored = x.softmax(1);
                    Use(stored);
                    Func<Tensor> later = () => local;
                    Use(later());
                    Func<Tensor> inside = () => { var p = x.softmax(1); Use(p); return p; };
                    var batch = new Dictionary<string, Tensor> { ["data"] = x.softmax(1) };
                    Use(nn.Dropout(0.1).call(batch["data"]));
                    for (var i = 0; i < 2; i++) { var s = x; s += x; }
                    for (var i = 0; i < 2; i++) { var s = x.softmax(1); Use(s); }
                    var nested = x.softmax(1);
                    if (c) { nested = x; }
                    Use(nested);
                }
                static void Use(Tensor t) { }
            }
            """);
        var services = AnalysisServices.For(compilation)!;
        var tree = compilation.SyntaxTrees.Single();
        var model = compilation.GetSemanticModel(tree);
        var method = tree.GetRoot().DescendantNodes().OfType<MethodDeclarationSyntax>().Single(m => m.Identifier.ValueText == "M");
        var graph = ControlFlowGraph.Create((IMethodBodyOperation)model.GetOperation(method)!);
        var flow = ProvenanceAnalysis.For(services, graph, CancellationToken.None);
        var results = method.DescendantNodes().OfType<InvocationExpressionSyntax>().Where(i => i.Expression.ToString() == "Use")
            .Select(i => i.ArgumentList.Arguments[0].Expression)
            .Select(e => (Text: e.ToString(), Direct: ProvenanceAnalysis.TryWithoutFlow(services, model.GetOperation(e)!, CancellationToken.None, out var v), Value: v, Flow: flow.ValueOf(e)))
            .ToArray();

        // Calls alone, and variables the member writes only where they are declared (or never: a parameter, a field),
        // are read from the operation tree; a variable written twice, in place, by assignment, a branch, or a local read
        // in a lambda that captures it (the lambda may also run where nothing is known) need the dataflow; a lambda's own
        // local is read in its own body like any other, and so is a local whose name is written only in another scope.
        Assert.Equal(
            new[]
            {
                ("model.call(x)", true), ("nn.Dropout(0.1).call(x.softmax(1))", true), ("x.view(-1, 3).log_softmax(1)[.., 0]", true), ("x * 2", true),
                ("local", true), ("c ? x.softmax(1) : x", false), ("nn.Dropout(0.1).call(local)", true), ("viewed", true), ("x", true), ("cached", true),
                ("output", true), ("twice", false), ("inPlace", false), ("written", false), ("stored", false), ("later()", false), ("p", true), ("nn.Dropout(0.1).call(batch[\"data\"])", true),
                ("s", true), ("nested", false),
            },
            results.Select(r => (r.Text, r.Direct)));
        Assert.All(results.Where(r => r.Direct), r => Assert.True(r.Value.Equals(r.Flow), $"{r.Text}: direct {r.Value} but dataflow {r.Flow}"));
        Assert.True(results[0].Value.Is(TensorKind.Softmax));
        Assert.True(results[1].Value.Is(TensorKind.Softmax)); // Dropout passes its input through: the input is read too
        Assert.True(results[2].Value.Is(TensorKind.LogSoftmax));
        Assert.True(results[4].Value.Is(TensorKind.Softmax)); // local, through its declaration
        Assert.True(results[7].Value.Is(TensorKind.Softmax)); // viewed, through two declarations
        Assert.True(results[8].Value.Is(TensorKind.Unknown) && results[9].Value.Is(TensorKind.Unknown) && results[10].Value.Is(TensorKind.Unknown));
        Assert.True(results[12].Flow.Is(TensorKind.LogProbabilities)); // inPlace.log_() on a softmax
        Assert.True(results[16].Value.Is(TensorKind.Softmax));
        Assert.True(results[17].Value.Is(TensorKind.Unknown)); // a collection's element is not tracked, however it was filled
        Assert.True(results[18].Value.Is(TensorKind.Softmax)); // a same-named local written in another loop's scope is another variable
    }

    [Fact]
    public void A_summary_whose_returns_need_no_flow_is_read_without_the_graph_and_agrees_with_the_dataflow()
    {
        var compilation = TestCompilation.Create(sources: """
            class Helpers
            {
                private readonly Linear fc = nn.Linear(4, 3);
                Tensor Head(Tensor x) => fc.call(x);
                Tensor Probs(Tensor x) { var h = fc.call(x); return h.softmax(1); }
                Tensor Either(Tensor x, bool c) { if (c) return x.softmax(1); return x.log_softmax(1); }
                Tensor Same(Tensor x) => x;
                (Tensor, Tensor) Pair(Tensor x) => (fc.call(x), x);
                Tensor LambdaInside(Tensor x) { Func<Tensor> f = () => x.sigmoid(); return x.softmax(1); }
                Tensor Reassigned(Tensor x) { var h = fc.call(x); h = h.softmax(1); return h; }
                Tensor ThroughLocalFunction(Tensor x) { Tensor Inner() => x.softmax(1); return Inner(); }
                Tensor Throws(Tensor x) => throw new InvalidOperationException();
                IEnumerable<Tensor> Iterator(Tensor x) { yield return x.softmax(1); }
            }
            """);
        var tree = compilation.SyntaxTrees.Single();
        var model = compilation.GetSemanticModel(tree);
        var results = tree.GetRoot().DescendantNodes().OfType<MethodDeclarationSyntax>().Select(method =>
        {
            var body = model.GetOperation(method)!;
            var services = AnalysisServices.For(compilation)!;
            var direct = ProvenanceAnalysis.TryReturnedWithoutFlow(services, body, CancellationToken.None, out var value);
            var flow = ProvenanceAnalysis.For(services, ControlFlowGraph.Create((IMethodBodyOperation)body), CancellationToken.None).Returned;
            var summary = ProvenanceAnalysis.ReturnedBy(services, (IMethodSymbol)model.GetDeclaredSymbol(method)!, CancellationToken.None);
            return (Name: method.Identifier.ValueText, Direct: direct, Value: value, Flow: flow, Summary: summary);
        }).ToArray();

        // Returns of calls and of locals written once are read off the tree; a reassigned local, a local function, a body
        // with no return value and an iterator go to the dataflow. Either way the summary is what the dataflow says.
        Assert.Equal(
            new[]
            {
                ("Head", true), ("Probs", true), ("Either", true), ("Same", true), ("Pair", true), ("LambdaInside", true),
                ("Reassigned", false), ("ThroughLocalFunction", false), ("Throws", true), ("Iterator", false),
            },
            results.Select(r => (r.Name, r.Direct)));
        Assert.All(results.Where(r => r.Direct), r => Assert.True(r.Value.Equals(r.Flow), $"{r.Name}: direct {r.Value} but dataflow {r.Flow}"));
        Assert.All(results.Where(r => r.Name != "Iterator"), r => Assert.True(r.Summary.Equals(r.Flow), $"{r.Name}: summary {r.Summary} but dataflow {r.Flow}"));
        Assert.True(results[0].Value.Is(TensorKind.Logits));
        Assert.True(results[1].Value.Is(TensorKind.Softmax));
        Assert.True(results[2].Value.MayBe(TensorKind.Softmax) && results[2].Value.MayBe(TensorKind.LogSoftmax));
        Assert.True(results[5].Value.Is(TensorKind.Softmax)); // the lambda's return is not the method's
        Assert.True(results[6].Summary.Is(TensorKind.Softmax));
    }
}
