using System.Collections.Immutable;
using System.Linq;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Diagnostics;
using Microsoft.CodeAnalysis.Operations;
using MlPitfalls.Analyzers.Analyses.Shapes;
using MlPitfalls.Analyzers.Infrastructure;

namespace MlPitfalls.Analyzers.TensorLayout;

/// <summary>
/// MLP009. <c>view</c> and <c>reshape</c> keep the element order and only regroup it: sizes that name the tensor's own
/// dimensions in another order (<c>x.view(b, h, w, c)</c> on <c>(b, c, h, w)</c>) scramble the data instead of moving
/// an axis. Reported when the symbolic shapes prove the order changed; the fix writes the permute that was meant.
/// </summary>
[DiagnosticAnalyzer(LanguageNames.CSharp)]
public sealed class ViewReordersDimensionsAnalyzer : ViewCallAnalyzer
{
    public override ImmutableArray<DiagnosticDescriptor> SupportedDiagnostics { get; } =
        ImmutableArray.Create(Descriptors.MLP009_ViewReordersDimensions);

    /// <summary>
    /// Sizes that are all numbers say nothing about which of the tensor's dimensions is which; nor do sizes that nothing in
    /// the member reads from a tensor, given to a tensor whose sizes nothing in the member gave.
    /// </summary>
    private protected override bool MayApply(ViewCall call)
    {
        // Sizes of 1 move nothing: a reordering needs two other sizes, one of them not a number.
        if (!call.Elements.IsDefault
            && (call.Elements.Count(e => !IsOne(e)) < 2 || call.Elements.All(e => e.ConstantValue.HasValue)))
        {
            return false;
        }

        var layout = LayoutSyntax.Of(call.Invocation.Syntax);
        return layout.MayHaveGivenShape(call.Tensor.Syntax)
               || (call.Elements.IsDefault ? layout.MayReadSizes(call.SizesArgument.Syntax) : call.Elements.Any(e => layout.MayReadSizes(e.Syntax)));
    }

    private static bool IsOne(IOperation size) => size.ConstantValue is { HasValue: true, Value: 1 or 1L };

    private protected override Diagnostic? Judge(ViewCall call, ShapeValue tensor, ImmutableArray<Dim> sizes, System.Func<SyntaxNode, ShapeValue> valueOf)
    {
        if (ViewJudgement.FindReordering(tensor, sizes, call.Invocation.Syntax) is not { } reordering || OnlyNumbersMove(call, sizes, reordering))
        {
            return null;
        }

        var written = call.Elements.IsDefault ? sizes.Select(s => s.ToString()).ToList() : call.Elements.Select(e => Shorten(e.Syntax)).ToList();
        var names = AtomNames(call, valueOf);
        // Of a tensor of unknown rank the code reads some dimensions; a -1 among the sizes may take more of them than the
        // code names, so the message cannot say what the tensor is, nor a permute list every dimension. Without a -1 the
        // sizes pin the element count to the dimensions read.
        var openEnded = !reordering.RankKnown && sizes.Any(s => s.IsMinusOne);
        var source = "(" + string.Join(", ", reordering.SourceDims.Select(dim => NameOf(dim, sizes, written, names))) + (openEnded ? ", ..." : "") + ")";
        var requested = "(" + string.Join(", ", written) + ")";
        var permutation = openEnded ? default : InWrittenOrder(call, sizes, reordering, valueOf).Permutation;
        var receiver = Shorten(call.Tensor.Syntax);
        string advice;
        var properties = ImmutableDictionary<string, string?>.Empty;
        if (permutation.IsDefault)
        {
            advice = "permute (or transpose) to move dimensions, then " + call.Invocation.TargetMethod.Name + " to regroup them";
        }
        else
        {
            var permuteOnly = reordering.IsPureReordering(sizes.Length);
            var permute = $"permute({string.Join(", ", permutation)})";
            advice = permuteOnly ? $"{receiver}.{permute}" : $"{receiver}.{permute}.reshape{requested}";
            if (call.IsMemberCall)
            {
                properties = properties.Add(PermutationProperty, string.Join(",", permutation)).Add(PermuteOnlyProperty, permuteOnly ? "true" : "false");
            }
        }

        return Diagnostic.Create(
            Descriptors.MLP009_ViewReordersDimensions,
            LocationOf(call),
            properties,
            Shorten(call.Invocation.Syntax), source, requested, call.Invocation.TargetMethod.Name, advice);
    }

    /// <summary>
    /// True when every pair of dimensions the reordering swaps is two numbers (<c>(n, 2, 3)</c> viewed as <c>(n, 3, 2)</c>):
    /// a number says nothing about which dimension it is, and regrouping 2 x 3 elements as 3 x 2 may be meant. A number
    /// moved past a symbol (<c>(b, 3, h, w)</c> viewed as <c>(b, h, w, 3)</c>) is still a reordering.
    /// </summary>
    private static bool OnlyNumbersMove(ViewCall call, ImmutableArray<Dim> sizes, Reordering reordering)
    {
        // Sizes the code reads from a tensor (b = x.shape[0] of a tensor made with numbers) name its dimensions; only
        // numbers written as numbers say nothing.
        var permutation = reordering.Permutation;
        if (permutation.IsDefault || call.Elements.IsDefault
            || Enumerable.Range(0, call.Elements.Length).Any(i => !call.Elements[i].ConstantValue.HasValue && sizes[i].IsConstant))
        {
            return false;
        }

        for (var i = 0; i < permutation.Length; i++)
        {
            for (var j = i + 1; j < permutation.Length; j++)
            {
                if (permutation[i] > permutation[j]
                    && !(reordering.SourceDims[permutation[i]].IsConstant && reordering.SourceDims[permutation[j]].IsConstant))
                {
                    return false;
                }
            }
        }

        return true;
    }

    /// <summary>
    /// The reordering with each merged size's dimensions in the order its factors are written (<c>w * c</c> merges w then
    /// c, so the permute must put w first); a size written as one expression keeps the dimensions' own order.
    /// </summary>
    private static Reordering InWrittenOrder(ViewCall call, ImmutableArray<Dim> sizes, Reordering reordering, System.Func<SyntaxNode, ShapeValue> valueOf)
    {
        if (reordering.Groups.IsDefault || call.Elements.IsDefault)
        {
            return reordering;
        }

        var groups = reordering.Groups.ToBuilder();
        var group = 0;
        for (var i = 0; i < sizes.Length && group < groups.Count; i++)
        {
            if (sizes[i].IsOne)
            {
                continue;
            }

            if (groups[group].Length > 1)
            {
                var factors = Factors(call.Elements[i]).Select(f => valueOf(f.Syntax)).ToList();
                var places = groups[group].Select(k => factors.FindIndex(f => f.Kind == ShapeKind.Scalar && f.Scalar.Equals(reordering.SourceDims[k]))).ToList();
                if (places.All(p => p >= 0) && places.Distinct().Count() == places.Count)
                {
                    groups[group] = groups[group].Zip(places, (k, p) => (k, p)).OrderBy(t => t.p).Select(t => t.k).ToImmutableArray();
                }
            }

            group++;
        }

        return new Reordering(reordering.SourceDims, reordering.RankKnown, groups.ToImmutable());
    }

    /// <summary>The factors of a product as written, left to right (<c>w * c</c>: w, c).</summary>
    private static System.Collections.Generic.IEnumerable<IOperation> Factors(IOperation size)
    {
        var operation = size.WithoutConversions()!;
        if (operation is IBinaryOperation { OperatorKind: BinaryOperatorKind.Multiply } product)
        {
            return Factors(product.LeftOperand).Concat(Factors(product.RightOperand));
        }

        return new[] { operation };
    }

    /// <summary>A source dimension as the code names it: the size written for exactly that dimension, else its symbols.</summary>
    private static string NameOf(Dim dim, ImmutableArray<Dim> sizes, System.Collections.Generic.List<string> written, System.Collections.Generic.Dictionary<DimAtom, string> names)
    {
        for (var i = 0; i < sizes.Length && i < written.Count; i++)
        {
            if (sizes[i].Equals(dim) && dim.IsKnown)
            {
                return written[i];
            }
        }

        return dim.ToString(atom => names.TryGetValue(atom, out var name) ? name : atom.Name);
    }

    /// <summary>The variables the sizes are computed from, by the atom each holds (<c>h</c> and <c>w</c> in <c>h * w</c>).</summary>
    private static System.Collections.Generic.Dictionary<DimAtom, string> AtomNames(ViewCall call, System.Func<SyntaxNode, ShapeValue> valueOf)
    {
        var names = new System.Collections.Generic.Dictionary<DimAtom, string>();
        if (call.Elements.IsDefault)
        {
            return names;
        }

        foreach (var element in call.Elements)
        {
            foreach (var operation in element.DescendantsAndSelf())
            {
                if (operation is Microsoft.CodeAnalysis.Operations.ILocalReferenceOperation or Microsoft.CodeAnalysis.Operations.IParameterReferenceOperation
                        or Microsoft.CodeAnalysis.Operations.IFieldReferenceOperation or Microsoft.CodeAnalysis.Operations.IPropertyReferenceOperation
                    && valueOf(operation.Syntax) is { Kind: ShapeKind.Scalar, Scalar: { Numerator: 1, Denominator: 1, Factors: { Length: 1 } factors } }
                    && factors[0].Power == 1 && !names.ContainsKey(factors[0].Atom))
                {
                    names[factors[0].Atom] = Shorten(operation.Syntax);
                }
            }
        }

        return names;
    }
}
