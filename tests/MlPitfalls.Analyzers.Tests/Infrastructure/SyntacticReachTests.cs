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
}
