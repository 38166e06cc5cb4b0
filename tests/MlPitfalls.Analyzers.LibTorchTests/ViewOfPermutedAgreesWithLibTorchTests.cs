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

    // Disagreements between the analyzer and libtorch (ViewCases, Disagreement): one skipped test each, with the check that
    // fails today; remove the Skip when the analyzer is fixed.

    [Fact(Skip = "disagreement: MLP010 reported on x.unsqueeze(1).transpose(0, 1).view(-1), which libtorch takes (the moved dimension has size 1)")]
    public Task unit_dim_unsqueeze_transpose() => CheckAsync(nameof(unit_dim_unsqueeze_transpose));

    [Fact(Skip = "disagreement: MLP010 reported on x.unsqueeze(-1).mT.view(-1), which libtorch takes (the moved dimension has size 1)")]
    public Task unit_dim_unsqueeze_mT() => CheckAsync(nameof(unit_dim_unsqueeze_mT));

    [Fact(Skip = "disagreement: MLP010 reported on x.t().view(-1) for a vector x, which libtorch takes (t() of a vector is the vector)")]
    public Task t_vector_flatten() => CheckAsync(nameof(t_vector_flatten));

    [Fact(Skip = "disagreement: MLP010 reported on x.T.view(-1) for a vector x, which libtorch takes (T of a vector is the vector)")]
    public Task T_vector_flatten() => CheckAsync(nameof(T_vector_flatten));

    [Fact(Skip = "disagreement: MLP010 reported on x.view(b, c).t().narrow(1, 0, 1).view(-1), which libtorch takes (shapes fully known)")]
    public Task narrow_moved_dim_to_unit() => CheckAsync(nameof(narrow_moved_dim_to_unit));

    [Fact(Skip = "disagreement: MLP010 reported on x.view(b, c).t().select(1, 0).view(-1), which libtorch takes (shapes fully known)")]
    public Task select_column_of_transpose() => CheckAsync(nameof(select_column_of_transpose));

    [Fact(Skip = "disagreement: MLP010 reported on x.t()[0].view(-1), which libtorch takes (1-D strided result)")]
    public Task index_row_of_transpose() => CheckAsync(nameof(index_row_of_transpose));

    [Fact(Skip = "disagreement: MLP010 silent on torch.randn(2, 3, 4).permute(0, 2, 1).view(2, 3, 4), which throws in libtorch (shapes fully known)")]
    public Task literal_sizes_regroup_across() => CheckAsync(nameof(literal_sizes_regroup_across));

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
