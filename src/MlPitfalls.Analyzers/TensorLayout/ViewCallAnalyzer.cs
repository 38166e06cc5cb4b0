using System.Collections.Immutable;
using System.Linq;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using Microsoft.CodeAnalysis.Diagnostics;
using Microsoft.CodeAnalysis.Operations;
using MlPitfalls.Analyzers.Analyses.Shapes;
using MlPitfalls.Analyzers.Infrastructure;

namespace MlPitfalls.Analyzers.TensorLayout;

/// <summary>
/// The shared shape of the layout rules: find each <c>view</c>/<c>reshape</c> call with sizes, let the rule rule it out
/// from its code alone, and otherwise ask the shape analysis (built once per method, however many rules ask) what the
/// tensor and the sizes are on every path.
/// </summary>
public abstract class ViewCallAnalyzer : TorchSharpAnalyzer
{
    /// <summary>Diagnostic property (MLP009): the permutation to use, comma-separated source dimensions.</summary>
    public const string PermutationProperty = "Permutation";

    /// <summary>Diagnostic property (MLP009): "true" when permute alone gives the requested shape, "false" when a reshape must follow.</summary>
    public const string PermuteOnlyProperty = "PermuteOnly";

    private static readonly ImmutableArray<OperationKind> InvocationKind = ImmutableArray.Create(OperationKind.Invocation);

    private protected sealed override void OnTorchSharpCompilationStart(CompilationStartAnalysisContext context, TorchSymbols torch)
    {
        context.RegisterOperationAction(
            operationContext =>
            {
                var invocation = (IInvocationOperation)operationContext.Operation;
                if (!ShapeAnalysis.IsViewOrReshape(invocation.TargetMethod) || !torch.IsInTorchSharp(invocation.TargetMethod)
                    || ViewCall.From(invocation) is not { } call || !MayApply(call))
                {
                    return;
                }

                var shapes = ShapeAnalysis.For(torch, operationContext.GetControlFlowGraph(), operationContext.CancellationToken);
                if (!shapes.Converged)
                {
                    return;
                }

                var sizes = call.Elements.IsDefault
                    ? shapes.ValueOf(call.SizesArgument.Value.WithoutConversions()!.Syntax) is { Kind: ShapeKind.Array, HasRank: true } array ? array.Dims : default
                    : call.Elements.Select(e => shapes.ValueOf(e.Syntax) is { Kind: ShapeKind.Scalar } size ? size.Scalar : Dim.Unknown).ToImmutableArray();
                if (sizes.IsDefault)
                {
                    return;
                }

                if (Judge(call, shapes.ValueOf(call.Tensor.Syntax), sizes, shapes.ValueOf) is { } diagnostic)
                {
                    operationContext.ReportDiagnostic(diagnostic);
                }
            },
            InvocationKind);
    }

    /// <summary>False when the call's code alone rules the rule out (no graph is built for it).</summary>
    private protected abstract bool MayApply(ViewCall call);

    /// <summary>
    /// The diagnostic for a call whose tensor and sizes are <paramref name="tensor"/> and <paramref name="sizes"/> on every
    /// path, or null; <paramref name="valueOf"/> answers for the expressions the sizes are computed from.
    /// </summary>
    private protected abstract Diagnostic? Judge(ViewCall call, ShapeValue tensor, ImmutableArray<Dim> sizes, System.Func<SyntaxNode, ShapeValue> valueOf);

    /// <summary>Where a layout diagnostic goes: from the method name to the end of the call (<c>view(b, h, w, c)</c>).</summary>
    private protected static Location LocationOf(ViewCall call)
        => call.Invocation.Syntax is InvocationExpressionSyntax { Expression: MemberAccessExpressionSyntax access } syntax
            ? Location.Create(syntax.SyntaxTree, Microsoft.CodeAnalysis.Text.TextSpan.FromBounds(access.Name.SpanStart, syntax.Span.End))
            : call.Invocation.Syntax.GetLocation();

    /// <summary>How a message shows code: on one line, shortened.</summary>
    private protected static string Shorten(SyntaxNode node) => MessageText.OneLine(node);
}

/// <summary>A <c>view</c> or <c>reshape</c> call with sizes: the tensor it applies to and the size expressions written.</summary>
internal sealed class ViewCall
{
    private ViewCall(IInvocationOperation invocation, IOperation tensor, IArgumentOperation sizes, ImmutableArray<IOperation> elements)
    {
        Invocation = invocation;
        Tensor = tensor;
        SizesArgument = sizes;
        Elements = elements;
    }

    public IInvocationOperation Invocation { get; }

    /// <summary>The tensor viewed: the receiver, or the first argument of <c>torch.reshape</c>.</summary>
    public IOperation Tensor { get; }

    public IArgumentOperation SizesArgument { get; }

    /// <summary>The sizes as written (<c>b, -1</c> or <c>new long[] { b, -1 }</c>); default when passed as an array variable.</summary>
    public ImmutableArray<IOperation> Elements { get; }

    public bool IsView => Invocation.TargetMethod.Name == "view";

    /// <summary>True for <c>x.view(...)</c> written as a member call (what the fixes rewrite).</summary>
    public bool IsMemberCall => !Invocation.TargetMethod.IsStatic && Invocation.Syntax is InvocationExpressionSyntax { Expression: MemberAccessExpressionSyntax };

    public static ViewCall? From(IInvocationOperation invocation)
    {
        var method = invocation.TargetMethod;
        var tensor = method.IsStatic
            ? invocation.Arguments.FirstOrDefault(a => a.Parameter?.Ordinal == 0)?.Value
            : invocation.Instance;
        var sizes = invocation.Arguments.FirstOrDefault(a => a.Parameter?.Ordinal == method.Parameters.Length - 1);
        if (tensor is null || sizes is null)
        {
            return null;
        }

        var elements = sizes.Value.WithoutConversions() is IArrayCreationOperation { Initializer: { } initializer } ? initializer.ElementValues : default;
        return new ViewCall(invocation, tensor, sizes, elements);
    }
}
