using System.Collections.Generic;
using System.Collections.Immutable;
using System.Linq;
using System.Threading;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using Microsoft.CodeAnalysis.FlowAnalysis;
using Microsoft.CodeAnalysis.Operations;
using MlPitfalls.Analyzers.FlowAnalysis;
using MlPitfalls.Analyzers.Tests.Infrastructure;
using Xunit;

namespace MlPitfalls.Analyzers.Tests.FlowAnalysis;

/// <summary>
/// The dataflow engine on a small lattice: the set of integer constants a variable may hold (null set = unknown).
/// Each test reads the value of the argument of <c>Use(...)</c>.
/// </summary>
public class ValueFlowAnalysisTests
{
    private static ImmutableSortedSet<int>? ValueAtUse(string body, string use = "Use(a)")
    {
        var compilation = TestCompilation.Create(referenceTorchSharp: false, $$"""
            using System;
            class C
            {
                static void Use(int value) { }
                void M(bool c, bool d)
                {
            {{body}}
                }
            }
            """);
        var tree = compilation.SyntaxTrees.Single();
        var model = compilation.GetSemanticModel(tree);
        var method = tree.GetRoot().DescendantNodes().OfType<MethodDeclarationSyntax>().Single(m => m.Identifier.ValueText == "M");
        var graph = ControlFlowGraph.Create((IMethodBodyOperation)model.GetOperation(method)!);
        var result = new Constants().AnalyzeBody(graph, CancellationToken.None);
        var argument = tree.GetRoot().DescendantNodes().OfType<InvocationExpressionSyntax>().Last(i => i.ToString() == use).ArgumentList.Arguments[0].Expression;
        return result.ValueOf(argument).Values;
    }

    [Fact]
    public void Straight_line_assignments_replace_the_value()
        => Assert.Equal(new[] { 2 }, ValueAtUse("int a = 1; a = 2; Use(a);"));

    [Fact]
    public void Branches_join_at_the_merge()
        => Assert.Equal(new[] { 1, 2 }, ValueAtUse("int a; if (c) a = 1; else a = 2; Use(a);"));

    [Fact]
    public void A_loop_reaches_a_fixed_point_that_carries_the_back_edge()
    {
        Assert.Equal(new[] { 1, 2, 3 }, ValueAtUse("int a = 1; while (c) { Use(a); if (d) a = 2; else a = 3; }"));
        Assert.Equal(new[] { 1, 2 }, ValueAtUse("int a = 1; for (int i = 0; i < 10; i++) { a = 2; } Use(a);"));
    }

    [Fact]
    public void Flow_captures_of_conditional_expressions_and_coalescing_join_their_branches()
    {
        Assert.Equal(new[] { 4, 5 }, ValueAtUse("int a = c ? 4 : 5; Use(a);"));
        Assert.Equal(new[] { 4, 5, 6 }, ValueAtUse("int a = d ? (c ? 4 : 5) : 6; Use(a);"));
        // n ?? 6 reads n.GetValueOrDefault() on one branch, which this lattice does not know: the join is unknown.
        Assert.Null(ValueAtUse("int? n = null; int a = n ?? 6; Use(a);"));
    }

    [Fact]
    public void A_lambda_runs_where_it_is_invoked_not_where_it_is_written()
    {
        Assert.Equal(new[] { 1 }, ValueAtUse("int a = 1; Action set = () => a = 5; Use(a);"));
        Assert.Equal(new[] { 5 }, ValueAtUse("int a = 1; Action set = () => a = 5; set(); Use(a);"));
        Assert.Equal(new[] { 7 }, ValueAtUse("int a = 1; void Set() { a = 7; } Set(); Use(a);"));
    }

    [Fact]
    public void A_lambda_body_is_analysed_with_the_state_at_its_invocation_and_on_its_own()
    {
        // Invoked after a = 3, and also analysable anywhere it is passed: the body's read joins both (3 and unknown).
        Assert.Null(ValueAtUse("int a = 1; Action show = () => Use(a); a = 3; show();"));
        Assert.Equal(new[] { 8 }, ValueAtUse("Action show = () => { int a = 8; Use(a); };"));
    }

    [Fact]
    public void A_call_that_may_run_a_lambda_forgets_the_locals_it_assigns()
        => Assert.Null(ValueAtUse("int a = 1; Action set = () => a = 5; Run(set); Use(a); } static void Run(Action action) { action();"));

    [Fact]
    public void A_finally_handler_forgets_what_it_assigns_and_catch_starts_unknown()
    {
        Assert.Null(ValueAtUse("int a = 1; try { a = 2; } finally { if (c) a = 3; } Use(a);"));
        Assert.Equal(new[] { 2 }, ValueAtUse("int a = 1; try { a = 2; } finally { Console.WriteLine(); } Use(a);"));
        Assert.Null(ValueAtUse("int a = 1; try { a = 2; } catch { Use(a); }"));
    }

    /// <summary>Integer constants; <see cref="IntSet.Values"/> null means "any value".</summary>
    private readonly struct IntSet
    {
        public IntSet(ImmutableSortedSet<int>? values) => Values = values;

        public ImmutableSortedSet<int>? Values { get; }
    }

    private sealed class IntSetLattice : IValueLattice<IntSet>
    {
        public IntSet Bottom => new(ImmutableSortedSet<int>.Empty);

        public IntSet Unknown => new(null);

        public IntSet Join(IntSet left, IntSet right)
            => left.Values is null || right.Values is null ? Unknown : new IntSet(left.Values.Union(right.Values));

        public bool Equals(IntSet left, IntSet right)
            => left.Values is null ? right.Values is null : right.Values is not null && left.Values.SetEquals(right.Values);
    }

    private sealed class Constants : ValueFlowAnalysis<IntSet>
    {
        public Constants()
            : base(new IntSetLattice())
        {
        }

        protected override IntSet VisitInvocation(
            IInvocationOperation invocation, IntSet instance, ImmutableArray<IntSet> arguments, ref PathState<IntSet> state, FlowContext context)
            => Values.Unknown;

        protected override bool MayChangeState(IInvocationOperation invocation) => invocation.TargetMethod.Name != "WriteLine";

        protected override IntSet VisitOther(IOperation operation, List<IntSet> children, FlowContext context)
            => operation is ILiteralOperation { ConstantValue: { HasValue: true, Value: int value } }
                ? new IntSet(ImmutableSortedSet.Create(value))
                : Values.Unknown;
    }
}
