using System.Linq;
using System.Threading.Tasks;
using MlPitfalls.Analyzers.LibTorchTests.Infrastructure;
using Xunit;

namespace MlPitfalls.Analyzers.LibTorchTests;

/// <summary>
/// MLP010 against libtorch, case by case (<see cref="ViewCases"/>): each snippet is analyzed with the MlPitfalls analyzers
/// and run on <c>torch.randn</c> of the case's sizes. A reported view must throw libtorch's view-size error; where the
/// shapes are fully known, the rule must report exactly the views that throw. MLP009 must stay silent: no case reorders.
/// </summary>
public class ViewOfPermutedAgreesWithLibTorchTests
{
    public static TheoryData<string> Cases { get; } = new(ViewCases.All.Where(c => c.Disagreement is null).Select(c => c.Name));

    [Theory]
    [MemberData(nameof(Cases))]
    public Task MLP010_agrees_with_libtorch(string name) => CheckAsync(name);

    // A disagreement found between the analyzer and libtorch goes in the table (ViewCases, Disagreement) with a skipped
    // test of its own that runs the check failing today, until the analyzer is fixed. Eight were found and fixed this way:
    // size-1 dimensions moved after unsqueeze, t() and T of a vector, narrow and select of a moved dimension, an indexed
    // transpose, and a view of literal sizes that only libtorch's stride test can judge.

    [Fact]
    public void Every_disagreement_in_the_table_has_a_skipped_test_of_its_own()
        => Assert.Empty(ViewCases.All.Where(c => c.Disagreement is not null).Select(c => c.Name).Except(typeof(ViewOfPermutedAgreesWithLibTorchTests)
            .GetMethods().SelectMany(m => m.GetCustomAttributes(typeof(FactAttribute), false).Cast<FactAttribute>().Select(f => (m.Name, f.Skip)))
            .Where(m => m.Skip is not null).Select(m => m.Name)));

    internal static async Task CheckAsync(string name)
    {
        var observed = await Table.ObserveAsync(name);
        var @case = observed.Case;

        // The table says what libtorch does; check that it still does.
        Assert.True(observed.Run.Threw == @case.Throws, $"libtorch no longer does what the table says: {observed}");
        if (observed.Run.Threw)
        {
            Assert.True(observed.Run.ThrewViewSizeError, $"libtorch threw something else than the view-size error: {observed}");
        }

        Assert.False(observed.Mlp009, $"MLP009 reported on a view that does not reorder: {observed}");
        if (observed.Mlp010)
        {
            Assert.True(observed.Run.ThrewViewSizeError, $"MLP010 reported on a view libtorch takes: {observed}");
        }

        if (@case.FullyKnown)
        {
            Assert.True(observed.Mlp010 == observed.Run.ThrewViewSizeError, $"MLP010 {(observed.Mlp010 ? "reported" : "silent")} on a fully known case: {observed}");
        }
    }
}
