using System.Linq;
using System.Threading;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using MlPitfalls.Analyzers.Infrastructure;
using Xunit;

namespace MlPitfalls.Analyzers.Tests.Infrastructure;

/// <summary>
/// The name gate's answers where names call each other: a cycle of names reaches the marker only when some member on it
/// does, whichever method is asked about first (the answers are kept per compilation, so the order of the questions must
/// not change them).
/// </summary>
public class SyntacticReachTests
{
    /// <summary>Marker: a call of <c>Mark()</c>. Overridable methods are read by their bodies, as the optimizer-step gate reads them.</summary>
    private static SyntacticReach NewReach()
        => new(text => text.Called.Contains("Mark"), unseenCodeReaches: false, sourceCreationsReach: false, overridablesAreReadByBody: true);

    private static bool MayReach(SyntacticReach reach, Compilation compilation, string methodName)
    {
        var services = AnalysisServices.For(compilation)!;
        var tree = compilation.SyntaxTrees.Single();
        var declaration = tree.GetRoot().DescendantNodes().OfType<MethodDeclarationSyntax>().Single(m => m.Identifier.ValueText == methodName);
        var method = (IMethodSymbol)compilation.GetSemanticModel(tree).GetDeclaredSymbol(declaration)!;
        return reach.MayReach(services, method, CancellationToken.None);
    }

    // Every module's forward calls forward: the cycle of the name alone reaches nothing. (Before the names were decided
    // as cycles, a name met again while being decided answered "may", so every forward may have reached anything.)
    private const string ForwardCallingForward = """
        public sealed class Block : Module<Tensor, Tensor>
        {
            private readonly Module<Tensor, Tensor> inner = nn.Linear(4, 4);
            public Block() : base(nameof(Block)) => RegisterComponents();
            public override Tensor forward(Tensor x) => inner.forward(x).relu();
        }

        public sealed class Net : Module<Tensor, Tensor>
        {
            private readonly Block block = new();
            public Net() : base(nameof(Net)) => RegisterComponents();
            public override Tensor forward(Tensor x) => block.forward(block.forward(x));
            public void Mark() { }
            public void Train(Tensor x) { forward(x); Mark(); }
            public Tensor Evaluate(Tensor x) => forward(x);
        }
        """;

    [Fact]
    public void A_cycle_of_names_without_the_marker_does_not_reach_it()
    {
        var compilation = TestCompilation.Create(true, ForwardCallingForward);
        var reach = NewReach();

        Assert.False(MayReach(reach, compilation, "Evaluate"));
        Assert.True(MayReach(reach, compilation, "Train"));
        Assert.False(MayReach(reach, compilation, "Evaluate")); // kept
    }

    // Start calls A; A calls B, then C, which marks; B calls back into A. Asked about B while A is being decided, the
    // search meets A again before it knows A's answer: B's "no" at that point must not be kept, neither for the name
    // nor for B's declaration, which D reaches under another use of the name (Cycle.B, not B).
    private const string MarkFoundAfterTheCycleCloses = """
        public static class Cycle
        {
            public static void Mark() { }
            public static void Start() => A(0);
            public static void A(int n) { B(n); C(); }
            public static void B(int n) { if (n > 0) A(n - 1); }
            public static void C() => Mark();
            public static void D() => Cycle.B(1);
        }
        """;

    [Theory]
    [InlineData("Start")]
    [InlineData("A")]
    [InlineData("B")]
    [InlineData("D")]
    public void Every_method_on_a_cycle_that_marks_reaches_the_mark_whichever_is_asked_first(string first)
    {
        var compilation = TestCompilation.Create(true, MarkFoundAfterTheCycleCloses);
        var reach = NewReach();

        Assert.True(MayReach(reach, compilation, first));
        foreach (var method in new[] { "Start", "A", "B", "C", "D" })
        {
            Assert.True(MayReach(reach, compilation, method), method);
        }
    }

    // Two cycles: P and Q call each other and reach nothing; R and S call each other, and S marks.
    private const string TwoCycles = """
        public static class Cycles
        {
            public static void Mark() { }
            public static void P(int n) { if (n > 0) Q(n - 1); }
            public static void Q(int n) { if (n > 0) P(n - 1); }
            public static void R(int n) { if (n > 0) S(n - 1); }
            public static void S(int n) { if (n > 0) R(n - 1); Mark(); }
            public static void Both() { P(1); R(1); }
        }
        """;

    [Theory]
    [InlineData("P")]
    [InlineData("R")]
    [InlineData("Both")]
    public void A_cycle_that_reaches_nothing_stays_apart_from_one_that_marks(string first)
    {
        var compilation = TestCompilation.Create(true, TwoCycles);
        var reach = NewReach();

        MayReach(reach, compilation, first);
        Assert.False(MayReach(reach, compilation, "P"));
        Assert.False(MayReach(reach, compilation, "Q"));
        Assert.True(MayReach(reach, compilation, "R"));
        Assert.True(MayReach(reach, compilation, "S"));
        Assert.True(MayReach(reach, compilation, "Both"));
    }

    // Loops calling local functions of their method: a local function is read by its body, and local functions calling
    // each other are a cycle like names are. A delegate parameter may run anything. (Before, a call of any local function
    // declared outside the loop counted as "may".)
    private const string LocalFunctions = """
        public static class Program
        {
            public static void Mark() { }
            public static void Run(int epochs, System.Action<int> callback)
            {
                void Log(int e) => System.Console.WriteLine(e);
                void Step() { Mark(); }
                void Ping(int n) { if (n > 0) Pong(n - 1); }
                void Pong(int n) { if (n > 0) Ping(n - 1); }
                void Tick(int n) { if (n > 0) Tock(n - 1); }
                void Tock(int n) { if (n > 0) Tick(n - 1); Step(); }
                for (var e = 0; e < epochs; e++) { Log(e); }
                for (var e = 0; e < epochs; e++) { Step(); }
                for (var e = 0; e < epochs; e++) { Ping(e); }
                for (var e = 0; e < epochs; e++) { Tick(e); }
                for (var e = 0; e < epochs; e++) { callback(e); }
            }
        }
        """;

    [Theory]
    [InlineData(new[] { 0, 1, 2, 3, 4 })]
    [InlineData(new[] { 4, 3, 2, 1, 0 })]
    [InlineData(new[] { 3, 2, 0, 4, 1 })]
    public void A_local_function_is_read_by_its_body(int[] order)
    {
        var compilation = TestCompilation.Create(true, LocalFunctions);
        var services = AnalysisServices.For(compilation)!;
        var reach = NewReach();
        var loops = compilation.SyntaxTrees.Single().GetRoot().DescendantNodes().OfType<ForStatementSyntax>().ToList();
        var expected = new[] { false, true, false, true, true }; // Log, Step, Ping (a cycle without the mark), Tick (its cycle calls Step), a delegate

        foreach (var index in order)
        {
            Assert.Equal(expected[index], reach.MayReach(services, loops[index], CancellationToken.None));
        }
    }

    // Found by review: a local function asked about by its symbol (the mode and gradient analyses ask so at its calls) sees
    // the parameters of its member, here a delegate its nested local function calls; a local function handed over as a
    // method group runs where it is handed over.
    private const string LocalFunctionsInTheirMember = """
        public static class Program
        {
            public static void Mark() { }
            public static void Evaluate(System.Action<int> prepare)
            {
                void Run() { Setup(); void Setup() { prepare(1); } }
                Run();
            }
            public static void Train(System.Collections.Generic.List<int> batches, int epochs)
            {
                void Update(int batch) { Mark(); }
                void Epoch() { batches.ForEach(Update); }
                for (var e = 0; e < epochs; e++) { Epoch(); }
                for (var e = 0; e < epochs; e++) { batches.ForEach(Update); }
            }
        }
        """;

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void A_local_function_sees_its_members_variables_and_runs_where_it_is_handed_over(bool symbolFirst)
    {
        var compilation = TestCompilation.Create(true, LocalFunctionsInTheirMember);
        var services = AnalysisServices.For(compilation)!;
        var reach = NewReach();
        var tree = compilation.SyntaxTrees.Single();
        var run = tree.GetRoot().DescendantNodes().OfType<LocalFunctionStatementSyntax>().Single(f => f.Identifier.ValueText == "Run");
        var runSymbol = (IMethodSymbol)compilation.GetSemanticModel(tree).GetDeclaredSymbol(run)!;
        var runCall = tree.GetRoot().DescendantNodes().OfType<ExpressionStatementSyntax>().Single(s => s.ToString() == "Run();");

        if (symbolFirst)
        {
            Assert.True(reach.MayReach(services, runSymbol, CancellationToken.None));
            Assert.True(reach.MayReach(services, runCall, CancellationToken.None));
        }
        else
        {
            Assert.True(reach.MayReach(services, runCall, CancellationToken.None));
            Assert.True(reach.MayReach(services, runSymbol, CancellationToken.None));
        }

        foreach (var loop in tree.GetRoot().DescendantNodes().OfType<ForStatementSyntax>())
        {
            Assert.True(reach.MayReach(services, loop, CancellationToken.None), loop.ToString());
        }
    }

    // Two local functions of one name in different methods are two: one marks, the other does not.
    private const string SameNamedLocalFunctions = """
        public static class Program
        {
            public static void Mark() { }
            public static void Train(int epochs)
            {
                void Step() { Mark(); }
                for (var e = 0; e < epochs; e++) { Step(); }
            }
            public static void Evaluate(int epochs)
            {
                void Step() { System.Console.WriteLine(); }
                for (var e = 0; e < epochs; e++) { Step(); }
            }
        }
        """;

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    public void Local_functions_of_one_name_in_different_members_are_decided_apart(int first)
    {
        var compilation = TestCompilation.Create(true, SameNamedLocalFunctions);
        var services = AnalysisServices.For(compilation)!;
        var reach = NewReach();
        var loops = compilation.SyntaxTrees.Single().GetRoot().DescendantNodes().OfType<ForStatementSyntax>().ToList();

        Assert.Equal(first == 0, reach.MayReach(services, loops[first], CancellationToken.None));
        Assert.Equal(first != 0, reach.MayReach(services, loops[1 - first], CancellationToken.None));
    }

    // Analyzers run concurrently and share the answers kept per compilation: questions asked from several threads at once,
    // in different orders, get the answers one thread gets alone.
    [Fact]
    public void Questions_asked_at_once_from_several_threads_get_the_answers_asked_alone()
    {
        var methods = new[] { "P", "Q", "R", "S", "Both" };
        var alone = methods.Select(m => MayReach(NewReach(), TestCompilation.Create(true, TwoCycles), m)).ToArray();
        for (var attempt = 0; attempt < 20; attempt++)
        {
            var compilation = TestCompilation.Create(true, TwoCycles);
            var reach = NewReach();
            var answers = new bool[8][];
            System.Threading.Tasks.Parallel.For(0, answers.Length, thread =>
            {
                var order = thread % 2 == 0 ? methods : methods.Reverse().ToArray();
                var found = order.Select(m => (m, MayReach(reach, compilation, m))).ToDictionary(p => p.m, p => p.Item2);
                answers[thread] = methods.Select(m => found[m]).ToArray();
            });

            Assert.All(answers, answer => Assert.Equal(alone, answer));
        }
    }
}
