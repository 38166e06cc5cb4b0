using System.Collections.Immutable;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Diagnostics;
using MlPitfalls.Analyzers.Analyses.Shapes;

namespace MlPitfalls.Analyzers.TensorLayout;

/// <summary>
/// MLP010. After permute, transpose, <c>t()</c>, <c>T</c> or <c>mT</c> a tensor's memory is out of order, and <c>view</c>
/// cannot merge the dimensions that were moved: it throws, or works only for the sizes a test happened to use. Reported
/// when the tensor is permuted on every path and its symbolic shape proves the view merges dimensions that no longer
/// follow each other in memory. A view the shapes cannot judge is not reported: in real code most views of a transposed
/// tensor split a moved dimension, which succeeds (field survey: docs/rules/MLP010.md). The fixes insert
/// <c>contiguous()</c> or use <c>reshape</c>.
/// </summary>
[DiagnosticAnalyzer(LanguageNames.CSharp)]
public sealed class ViewOfPermutedTensorAnalyzer : ViewCallAnalyzer
{
    public override ImmutableArray<DiagnosticDescriptor> SupportedDiagnostics { get; } =
        ImmutableArray.Create(Descriptors.MLP010_ViewOfPermutedTensor);

    /// <summary>Only view (reshape copies when it must), and only of a tensor whose code may have moved it.</summary>
    private protected override bool MayApply(ViewCall call) => call.IsView && LayoutSyntax.Of(call.Invocation.Syntax).MayBeMoved(call.Tensor.Syntax);

    private protected override Diagnostic? Judge(ViewCall call, ShapeValue tensor, ImmutableArray<Dim> sizes, System.Func<SyntaxNode, ShapeValue> valueOf)
    {
        if (ViewJudgement.ViewOfPermuted(tensor, sizes) != ViewOutcome.Throws)
        {
            return null;
        }

        return Diagnostic.Create(
            Descriptors.MLP010_ViewOfPermutedTensor,
            LocationOf(call),
            Shorten(call.Tensor.Syntax),
            Shorten(tensor.Mover!));
    }
}
