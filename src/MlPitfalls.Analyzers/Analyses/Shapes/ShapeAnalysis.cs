using System;
using System.Collections.Generic;
using System.Collections.Immutable;
using System.Linq;
using System.Runtime.CompilerServices;
using System.Threading;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.FlowAnalysis;
using Microsoft.CodeAnalysis.Operations;
using MlPitfalls.Analyzers.FlowAnalysis;
using MlPitfalls.Analyzers.Infrastructure;

namespace MlPitfalls.Analyzers.Analyses.Shapes;

/// <summary>
/// Symbolic tensor shapes on the dataflow engine: for each tensor, its dimensions as products of atoms (read from the
/// tensor itself, <c>x.shape[1]</c>, <c>x.size(-1)</c>, or given by the arguments of <c>view</c>, <c>reshape</c> and the
/// factories), carried through permute, transpose, <c>t()</c>, <c>T</c>, <c>mT</c>, unsqueeze, squeeze, flatten and narrow,
/// and whether a permute or transpose left it out of memory order. Integers are tracked too (<c>long b = x.shape[0]</c>,
/// <c>h * w</c>, <c>d / heads</c>), and arrays of sizes (<c>new long[] { b, -1 }</c>, <c>x.shape</c>).
/// What keeps a tensor out of memory order was measured on TorchSharp 0.107.0 (docs/rules/MLP010.md): element-wise
/// operations, clone, detach, conversions, dropout and the view-only steps keep the strides of their input; contiguous(),
/// matmul, layers, softmax and reductions return fresh memory in order.
/// </summary>
internal sealed class ShapeAnalysis : ValueFlowAnalysis<ShapeValue>
{
    private static readonly ConditionalWeakTable<ControlFlowGraph, ValueFlowResult<ShapeValue>> Results = new();

    /// <summary>Tensor methods whose result has the input's shape and strides (measured; docs/rules/MLP010.md).</summary>
    private static readonly ImmutableHashSet<string> KeepsLayout = ImmutableHashSet.Create(
        "detach", "detach_", "clone", "to", "cpu", "cuda", "type", "to_type", "float", "double", "half", "bfloat16",
        "relu", "relu_", "relu6", "gelu", "silu", "tanh", "sigmoid", "exp", "log", "abs", "neg", "sqrt", "rsqrt", "square",
        "dropout", "zeros_like", "ones_like", "empty_like", "rand_like", "randn_like", "contiguous_like");

    /// <summary>Tensor methods whose result has the input's shape in fresh memory (measured).</summary>
    private static readonly ImmutableHashSet<string> KeepsShapeFresh = ImmutableHashSet.Create(
        "contiguous", "softmax", "log_softmax", "masked_fill");

    private static readonly ImmutableHashSet<string> Factories = ImmutableHashSet.Create("zeros", "ones", "empty", "randn", "rand", "full");

    /// <summary>In-place methods (named with a trailing <c>_</c>) that move a tensor's dimensions: followed as their out-of-place twins.</summary>
    private static readonly ImmutableHashSet<string> MovesInPlace = ImmutableHashSet.Create("transpose", "swapaxes", "swapdims", "t", "unsqueeze", "squeeze");

    /// <summary>In-place methods that make a tensor's shape and strides anything.</summary>
    private static readonly ImmutableHashSet<string> ReshapesToAnything = ImmutableHashSet.Create("resize", "resize_as", "set", "as_strided");

    private readonly TorchSymbols _torch;
    private readonly ShapeAtoms _atoms;
    private readonly SyntaxNode _body;
    private bool? _reshapesInPlace;
    private bool? _copiesVariables;

    private ShapeAnalysis(TorchSymbols torch, ControlFlowGraph graph)
        : base(ShapeValue.Lattice)
    {
        _torch = torch;
        _atoms = new ShapeAtoms(new Dominance(graph));
        _body = graph.OriginalOperation.Syntax;
    }

    /// <summary>True when the body calls an in-place method that changes a tensor's shape or strides (transpose_, squeeze_, ...).</summary>
    private bool ReshapesInPlace => _reshapesInPlace ??= MayCallInPlace() && _body.DescendantNodes().Any(
        n => n is Microsoft.CodeAnalysis.CSharp.Syntax.MemberAccessExpressionSyntax { Name.Identifier.ValueText: var name }
             && InPlaceBase(name) is { } moved && (MovesInPlace.Contains(moved) || ReshapesToAnything.Contains(moved)));

    /// <summary><c>transpose</c> for <c>transpose_</c>; null for a name that is not an in-place method's.</summary>
    private static string? InPlaceBase(string name)
        => name.Length > 1 && name.EndsWith("_", StringComparison.Ordinal) ? name.Substring(0, name.Length - 1) : null;

    /// <summary>
    /// False when the body's text has no <c>_(</c> (spaces allowed between), which no in-place call can lack: a search of
    /// the text first, instead of a walk of every syntax node (the walk was a seventh of the analysis of an attention block).
    /// </summary>
    private bool MayCallInPlace() => InPlaceCallText.IsMatch(_body.SyntaxTree.GetText().ToString(_body.Span));

    private static readonly System.Text.RegularExpressions.Regex InPlaceCallText = new(@"_\s*\(", System.Text.RegularExpressions.RegexOptions.CultureInvariant);

    /// <summary>
    /// True when the body copies a variable into another (<c>var a = x;</c>, <c>a = this.x;</c>): only then may two of its
    /// variables hold the same tensor object, whose in-place transpose changes both.
    /// </summary>
    private bool CopiesVariables => _copiesVariables ??= _body.DescendantNodes().Any(
        n => (n is Microsoft.CodeAnalysis.CSharp.Syntax.EqualsValueClauseSyntax { Value: var value } && IsVariable(value))
             || (n is Microsoft.CodeAnalysis.CSharp.Syntax.AssignmentExpressionSyntax { Right: var right } && IsVariable(right)));

    private static bool IsVariable(SyntaxNode expression)
    {
        while (expression is Microsoft.CodeAnalysis.CSharp.Syntax.ParenthesizedExpressionSyntax parenthesized)
        {
            expression = parenthesized.Expression;
        }

        return expression is Microsoft.CodeAnalysis.CSharp.Syntax.IdentifierNameSyntax or Microsoft.CodeAnalysis.CSharp.Syntax.MemberAccessExpressionSyntax;
    }

    /// <summary>The shapes of every view and reshape call's receiver and arguments in the body <paramref name="graph"/> was built for (once per graph).</summary>
    public static ValueFlowResult<ShapeValue> For(TorchSymbols torch, ControlFlowGraph graph, CancellationToken cancellationToken)
    {
        if (Results.TryGetValue(graph, out var cached))
        {
            return cached;
        }

        var result = new ShapeAnalysis(torch, graph).AnalyzeBody(graph, cancellationToken);
        return Results.GetValue(graph, _ => result);
    }

    /// <summary>True for the calls the layout rules judge: <c>view</c> and <c>reshape</c> with sizes, on a tensor or through <c>torch.reshape</c>.</summary>
    public static bool IsViewOrReshape(IMethodSymbol method)
        => method.Name is "view" or "reshape" && method.Parameters.Length > 0
           && method.Parameters[method.Parameters.Length - 1] is { IsParams: true, Type: IArrayTypeSymbol { ElementType.SpecialType: SpecialType.System_Int64 } };

    protected override bool MayChangeState(IInvocationOperation invocation) => _torch.MayRunUserCode(invocation);

    /// <summary>
    /// Rules ask about the receiver of a view or reshape and its size arguments only, and about the variables a size is
    /// computed from (<c>h</c> and <c>w</c> in <c>h * w</c>), which name the dimensions in messages.
    /// </summary>
    protected override bool IsAskedAbout(IOperation operation)
    {
        var parent = operation.Parent;
        for (var depth = 0; depth < 10 && parent is not null; depth++, parent = parent.Parent)
        {
            switch (parent)
            {
                case IInvocationOperation invocation:
                    return IsViewOrReshape(invocation.TargetMethod);
                case IConversionOperation or IArgumentOperation or IArrayInitializerOperation or IArrayCreationOperation or IBinaryOperation:
                    continue;
                default:
                    return false;
            }
        }

        return false;
    }

    protected override ShapeValue ReadUntracked(IOperation reference, AccessPath path, ref PathState<ShapeValue> state, FlowContext context)
    {
        var name = path.Members.IsEmpty ? path.Root?.Name : path.Members[path.Members.Length - 1].Name;
        // A parameter, or a readonly field: another field may be reassigned by any member the method calls. And not when
        // the body reshapes a tensor in place, which may be this one through an alias (var a = x; a.transpose_(0, 1)).
        var stable = path.Root is IParameterSymbol or IFieldSymbol { IsReadOnly: true } && path.Members.IsEmpty && name is not null
                     && !ReshapesInPlace && MemberWrites.Around(reference.Syntax)?.NeverWrites(name) == true;
        if (_torch.IsTensor(reference.Type))
        {
            // A tensor met for the first time: its dimensions are named once, so that the receiver of x.view(...) and the
            // x.shape[i] in its arguments speak of the same dimensions. A parameter or field the member never writes
            // holds one tensor throughout (its dimensions are the path's); any other variable keeps the dimensions named
            // at this read until it is written or a call that may run user code forgets it.
            if (stable)
            {
                return ShapeValue.OfTensor(default, _atoms.Source(path, reference.Syntax));
            }

            var tensor = ShapeValue.OfTensor(default, _atoms.Source(reference.Syntax, reference.Syntax));
            state = state.Set(path, tensor, Values);
            return tensor;
        }

        if (reference.ConstantValue is { HasValue: true, Value: var constant } && AsLong(constant) is { } value)
        {
            return ShapeValue.OfScalar(Dim.Constant(value));
        }

        if (!IsIntegral(reference.Type))
        {
            return ShapeValue.Unknown;
        }

        // A parameter or readonly field the member never writes holds one value throughout: one atom for every read.
        // Anything else whose value is not known here (another field, a local after a merge) is an atom of its own at each read.
        return ShapeValue.OfScalar(Dim.Of(_atoms.Atom(stable ? path : reference.Syntax, reference.Syntax)));
    }

    protected override ShapeValue VisitOther(IOperation operation, List<ShapeValue> children, ref PathState<ShapeValue> state, FlowContext context)
    {
        if (operation.ConstantValue is { HasValue: true, Value: var constant } && AsLong(constant) is { } value)
        {
            return ShapeValue.OfScalar(Dim.Constant(value));
        }

        switch (operation)
        {
            case IPropertyReferenceOperation { Instance: { } instance, Property: var property } when _torch.IsTensor(instance.Type) && children.Count > 0:
                return TensorProperty(operation, property, instance, children[0], ref state);
            case IArrayElementReferenceOperation { Indices.Length: 1 } element when children.Count == 2:
                return children[0].Kind == ShapeKind.Array && IndexOf(element.Indices[0]) is { } index
                    ? ShapeValue.OfScalar(children[0].ReadDimAt(index, operation.Syntax))
                    : Opaque(operation);
            case IArrayInitializerOperation:
                var elements = ImmutableArray.CreateBuilder<Dim>(children.Count);
                foreach (var child in children)
                {
                    elements.Add(child.Kind == ShapeKind.Scalar ? child.Scalar : Dim.Unknown);
                }

                return ShapeValue.OfArray(elements.MoveToImmutable());
            case IArrayCreationOperation { Initializer: not null } when children.Count > 0:
                return children[children.Count - 1];
            case IBinaryOperation binary when children.Count == 2:
                return Binary(binary, children[0], children[1]);
        }

        return Opaque(operation);
    }

    protected override ShapeValue VisitInvocation(
        IInvocationOperation invocation, ShapeValue instance, ImmutableArray<ShapeValue> arguments, ref PathState<ShapeValue> state, FlowContext context)
    {
        var method = invocation.TargetMethod;
        if (!_torch.IsInTorchSharp(method))
        {
            // A call handed an array of sizes may change its elements (Array.Reverse(sizes), Array.Copy, a helper).
            foreach (var argument in invocation.Arguments)
            {
                if (argument.Value.WithoutConversions() is { Type: IArrayTypeSymbol } array && AccessPath.Of(array) is { } arrayPath)
                {
                    state = state.Set(arrayPath, ShapeValue.Unknown, Values);
                }
            }

            return Opaque(invocation);
        }

        if (_torch.IsModuleInvocation(method))
        {
            return ModuleOutput(invocation, arguments);
        }

        // The tensor operated on, for a Tensor method or its static twin (torch.reshape(x, ...)), and its arguments after it.
        IOperation? receiver;
        ShapeValue tensor;
        int first;
        if (!method.IsStatic && _torch.IsTensor(method.ContainingType))
        {
            (receiver, tensor, first) = (invocation.Instance, instance, 0);
        }
        else if (method.IsStatic && method.Parameters.Length > 0 && _torch.IsTensor(method.Parameters[0].Type) && arguments.Length > 0
                 && invocation.Arguments[0].Parameter?.Ordinal == 0)
        {
            (receiver, tensor, first) = (invocation.Arguments[0].Value, arguments[0], 1);
        }
        else
        {
            return method.IsStatic && Factories.Contains(method.Name) && _torch.IsTensor(method.ReturnType) ? Factory(invocation, arguments) : Opaque(invocation);
        }

        var parameters = new Arguments(invocation, arguments, first);
        var name = method.Name;
        if (first == 0 && InPlaceBase(name) is { } inPlace)
        {
            // In place (TorchSharp's convention): x.transpose_(1, 2) moves x itself, x.mul_(2) keeps its shape and strides,
            // resize_/set_/as_strided_ make it anything.
            name = inPlace;
            var result = MovesInPlace.Contains(name)
                ? TensorCall(invocation, method, name, receiver, tensor, parameters, ref state) ?? ShapeValue.Unknown
                : ReshapesToAnything.Contains(name) || !_torch.IsTensor(method.ReturnType) ? ShapeValue.Unknown
                : tensor;
            if (receiver is not null && AccessPath.Of(receiver) is { } receiverPath)
            {
                if (!ReferenceEquals(result, tensor) && CopiesVariables)
                {
                    // Another variable may hold the same tensor (var a = x; a.transpose_(0, 1)): none keeps its shape.
                    var before = state;
                    state = state.Forget(p => !p.Equals(receiverPath) && before.Get(p, Values).Kind == ShapeKind.Tensor);
                }

                state = state.Set(receiverPath, result, Values);
            }

            return result;
        }

        return TensorCall(invocation, method, name, receiver, tensor, parameters, ref state) ?? Opaque(invocation);
    }

    /// <summary>The value of the TorchSharp call <paramref name="name"/> on a tensor; null when it is none the analysis knows.</summary>
    private ShapeValue? TensorCall(
        IInvocationOperation invocation, IMethodSymbol method, string name, IOperation? receiver, ShapeValue tensor, Arguments parameters, ref PathState<ShapeValue> state)
    {
        switch (name)
        {
            case "size" when parameters.Count == 0:
                return ShapeArray(invocation, receiver, tensor, ref state);
            case "size" when parameters.Constant(0) is { } index:
                var dims = ShapeArray(invocation, receiver, tensor, ref state);
                return ShapeValue.OfScalar(dims.ReadDimAt(index, invocation.Syntax));
            case "dim":
                return tensor.HasRank ? ShapeValue.OfScalar(Dim.Constant(tensor.Rank)) : Opaque(invocation);
            case "view" or "reshape" when IsViewOrReshape(method):
                return ViewOrReshape(invocation, name == "view", tensor, parameters);
            case "view_as" or "reshape_as" when parameters.Count == 1 && parameters.Value(0).Kind == ShapeKind.Tensor:
                var other = parameters.Value(0);
                return !tensor.IsPermuted ? ShapeValue.OfTensor(other.Dims, other.Source) : tensor.WithoutShape();
            case "permute" when parameters.Count == 1 && parameters.Value(0) is { Kind: ShapeKind.Array, HasRank: true } permutation:
                return Permute(invocation, tensor, permutation.Dims);
            case "transpose" or "swapaxes" or "swapdims" when parameters.Constant(0) is { } a && parameters.Constant(1) is { } b:
                return Transpose(invocation, tensor, a, b);
            case "t" when parameters.Count == 0:
                return TransposeMatrix(invocation, tensor);
            case var fresh when KeepsShapeFresh.Contains(fresh):
                return ShapeValue.OfTensor(tensor.Dims, tensor.Source);
            case "unsqueeze" when parameters.Constant(0) is { } dim:
                return Unsqueeze(tensor, dim);
            case "squeeze" when parameters.Count == 1 && parameters.Constant(0) is { } dim:
                return Squeeze(tensor, dim);
            case "flatten" when parameters.Constant(0) is { } start && parameters.Constant(1) is { } end:
                return Flatten(invocation, tensor, start, end);
            case "narrow" when parameters.Constant(0) is { } dim && parameters.Count == 3:
                return Narrow(invocation, tensor, dim, parameters.Value(2));
            case "squeeze" or "select" or "index" or "narrow":
                return tensor.WithoutShape();
            case "matmul" or "bmm" when parameters.Count == 1:
                return MatrixProduct(tensor, parameters.Value(0));
            case "scaled_dot_product_attention" when parameters.Count >= 2 && parameters.Value(1) is { HasRank: true, Rank: > 0 } value && tensor is { HasRank: true, Rank: > 0 }:
                // The output has the query's shape but the value's last dimension, and (measured) the query's strides.
                return tensor.WithDims(tensor.Dims.SetItem(tensor.Rank - 1, value.Dims[value.Rank - 1]), tensor.Order);
        }

        return KeepsLayout.Contains(name) && _torch.IsTensor(method.ReturnType) ? tensor : null;
    }

    /// <summary>
    /// A module call: a Linear layer keeps the leading dimensions and gives the last a size of its own; dropout and the
    /// element-wise activations keep the input as it is, strides included, normalizations and softmax its shape in fresh
    /// memory (measured). Other modules: unknown.
    /// </summary>
    private ShapeValue ModuleOutput(IInvocationOperation invocation, ImmutableArray<ShapeValue> arguments)
    {
        if (arguments.Length != 1 || invocation.Instance?.Type is not INamedTypeSymbol type || !_torch.IsInTorchSharp(type)
            || arguments[0] is not { Kind: ShapeKind.Tensor } input)
        {
            return ShapeValue.Unknown;
        }

        switch (type.Name)
        {
            case "Linear" when input.HasRank && input.Rank > 0:
                var features = Dim.Of(_atoms.Atom(invocation.Syntax, invocation.Instance.Syntax, ".out_features"));
                return ShapeValue.OfTensor(input.Dims.SetItem(input.Rank - 1, features));
            case "Dropout" or "Identity" or "ReLU" or "GELU" or "SiLU" or "Tanh":
                return input; // element-wise: the kernels of Tensor.relu() and gelu(), which keep the input's strides (measured)
            case "LayerNorm" or "RMSNorm" or "Softmax":
                return ShapeValue.OfTensor(input.Dims, input.Source);
        }

        return ShapeValue.Unknown;
    }

    /// <summary>matmul and bmm of tensors of known rank (at least 2): the batch dimensions, then the rows of one and the columns of the other, in fresh memory.</summary>
    private static ShapeValue MatrixProduct(ShapeValue left, ShapeValue right)
    {
        if (!left.HasRank || !right.HasRank || left.Rank < 2 || right.Rank < 2)
        {
            return ShapeValue.Unknown;
        }

        var rank = System.Math.Max(left.Rank, right.Rank);
        var dims = ImmutableArray.CreateBuilder<Dim>(rank);
        for (var i = 0; i < rank - 2; i++)
        {
            var l = left.DimAt(i - rank);
            var r = right.DimAt(i - rank);
            var leftHas = i - rank >= -left.Rank;
            var rightHas = i - rank >= -right.Rank;
            dims.Add(!rightHas || (leftHas && l.Equals(r)) || r.IsOne ? l : !leftHas || l.IsOne ? r : Dim.Unknown);
        }

        dims.Add(left.DimAt(-2));
        dims.Add(right.DimAt(-1));
        return ShapeValue.OfTensor(dims.MoveToImmutable());
    }

    private ShapeValue TensorProperty(IOperation operation, IPropertySymbol property, IOperation instance, ShapeValue tensor, ref PathState<ShapeValue> state)
    {
        switch (property.Name)
        {
            case "shape":
                return ShapeArray(operation, instance, tensor, ref state);
            case "ndim" or "Dimensions":
                return tensor.HasRank ? ShapeValue.OfScalar(Dim.Constant(tensor.Rank)) : Opaque(operation);
            case "T":
                return tensor.HasRank ? Permute(operation, tensor, Reversed(tensor.Rank)) : ShapeValue.Unknown; // of a vector: the vector
            case "mT" or "mH":
                return tensor.HasRank ? Transpose(operation, tensor, -2, -1) : Moved(operation, tensor); // matrices only
            case "H":
                return TransposeMatrix(operation, tensor);
        }

        return property.IsIndexer ? tensor.WithoutShape() : Opaque(operation);
    }

    /// <summary>
    /// The sizes of a tensor (<c>x.shape</c>, <c>x.size()</c>). A tensor read this way that the analysis knew nothing
    /// about gets a <see cref="DimSource"/>, stored back in the variable it was read from, so that every later read of the
    /// same variable names the same dimensions.
    /// </summary>
    private ShapeValue ShapeArray(IOperation read, IOperation? receiver, ShapeValue tensor, ref PathState<ShapeValue> state)
    {
        if (tensor.Kind == ShapeKind.Tensor && (tensor.HasRank || tensor.Source is not null))
        {
            return tensor.HasRank ? ShapeValue.OfArray(tensor.Dims) : ShapeValue.OfArray(tensor.Source!);
        }

        if (tensor.Kind != ShapeKind.Unknown)
        {
            return ShapeValue.Unknown;
        }

        var source = _atoms.Source(read.Syntax, receiver?.Syntax ?? read.Syntax);
        if (receiver is not null && AccessPath.Of(receiver) is { } path)
        {
            state = state.Set(path, ShapeValue.OfTensor(default, source), Values);
        }

        return ShapeValue.OfArray(source);
    }

    private ShapeValue ViewOrReshape(IInvocationOperation invocation, bool isView, ShapeValue tensor, Arguments parameters)
    {
        if (parameters.Count != 1 || parameters.Value(0) is not { Kind: ShapeKind.Array } sizes)
        {
            return ShapeValue.Unknown;
        }

        if (!sizes.HasRank)
        {
            return tensor.IsPermuted ? ShapeValue.Unknown : ShapeValue.OfTensor(default, sizes.Source); // y.view(x.shape)
        }

        // Unknown sizes become atoms of their own, named by their code, and -1 the quotient when the sizes allow.
        var elements = parameters.Elements(0);
        var dims = ImmutableArray.CreateBuilder<Dim>(sizes.Dims.Length);
        for (var i = 0; i < sizes.Dims.Length; i++)
        {
            var size = sizes.Dims[i];
            if (size.IsMinusOne)
            {
                size = ViewJudgement.Inferred(tensor, sizes.Dims);
            }

            if (!size.IsKnown)
            {
                var syntax = i < elements.Length ? elements[i].Syntax : null;
                size = Dim.Of(syntax is null ? _atoms.Atom((invocation.Syntax, i), invocation.Syntax, "[" + i + "]") : _atoms.Atom(syntax, syntax));
            }

            dims.Add(size);
        }

        // What view makes of a permuted tensor (when it does not throw), and what reshape makes of one, depends on the
        // strides: not tracked. Of a tensor in memory order both make one in memory order.
        return tensor.IsPermuted ? ShapeValue.Unknown : ShapeValue.OfTensor(dims.MoveToImmutable());
    }

    private ShapeValue Permute(IOperation mover, ShapeValue tensor, ImmutableArray<Dim> permutation)
    {
        var rank = permutation.Length;
        if (tensor.Kind is not (ShapeKind.Tensor or ShapeKind.Unknown) || (tensor.HasRank && tensor.Rank != rank))
        {
            return ShapeValue.Unknown;
        }

        var indices = new int[rank];
        var seen = new bool[rank];
        for (var i = 0; i < rank; i++)
        {
            if (!permutation[i].IsConstant || permutation[i].Denominator != 1)
            {
                return tensor.IsPermuted ? ShapeValue.Unknown : Moved(mover, tensor, maybeIdentity: true);
            }

            var index = permutation[i].Numerator < 0 ? permutation[i].Numerator + rank : permutation[i].Numerator;
            if (index < 0 || index >= rank || seen[index])
            {
                return ShapeValue.Unknown; // throws at run time: not this analysis' business
            }

            seen[index] = true;
            indices[i] = (int)index;
        }

        return Reordered(mover, tensor, rank, indices);
    }

    private static ImmutableArray<Dim> Reversed(int rank)
    {
        var builder = ImmutableArray.CreateBuilder<Dim>(rank);
        for (var i = rank - 1; i >= 0; i--)
        {
            builder.Add(Dim.Constant(i));
        }

        return builder.MoveToImmutable();
    }

    /// <summary>
    /// <c>t()</c>: the transpose of a matrix, and a vector unchanged. Of a tensor of unknown rank whose second dimension the
    /// code reads, a matrix (t() takes at most two dimensions); otherwise unknown.
    /// </summary>
    private ShapeValue TransposeMatrix(IOperation mover, ShapeValue tensor)
    {
        if (tensor.HasRank)
        {
            return tensor.Rank <= 1 ? tensor : Transpose(mover, tensor, 0, 1);
        }

        return tensor.Source is { } source && source.HighestReadBefore(mover.Syntax) >= 1 ? Transpose(mover, tensor, 0, 1, rankIfUnknown: 2) : ShapeValue.Unknown;
    }

    private ShapeValue Transpose(IOperation mover, ShapeValue tensor, long a, long b, int rankIfUnknown = -1)
    {
        var rank = tensor.HasRank ? tensor.Rank : rankIfUnknown;
        if (rank < 0)
        {
            // Rank unknown: two indices from the same end name two different dimensions; 1 and -1 may be one.
            if (a == b)
            {
                return tensor;
            }

            return (a >= 0) == (b >= 0) && !tensor.IsPermuted && tensor.Kind is ShapeKind.Tensor or ShapeKind.Unknown
                ? Moved(mover, tensor)
                : ShapeValue.Unknown;
        }

        a = a < 0 ? a + rank : a;
        b = b < 0 ? b + rank : b;
        if (a < 0 || b < 0 || a >= rank || b >= rank)
        {
            return ShapeValue.Unknown;
        }

        var indices = new int[rank];
        for (var i = 0; i < rank; i++)
        {
            indices[i] = i;
        }

        (indices[a], indices[b]) = (indices[b], indices[a]);
        return Reordered(mover, tensor, rank, indices);
    }

    /// <summary>The tensor with dimension <c>i</c> taken from its dimension <c>indices[i]</c>, and its memory order updated.</summary>
    private static ShapeValue Reordered(IOperation mover, ShapeValue tensor, int rank, int[] indices)
    {
        if (tensor.Kind is not (ShapeKind.Tensor or ShapeKind.Unknown) || (tensor.IsPermuted && tensor.Order.IsDefault))
        {
            return ShapeValue.Unknown; // reordering an unknown order may restore memory order
        }

        var dims = ImmutableArray.CreateBuilder<Dim>(rank);
        var order = ImmutableArray.CreateBuilder<int>(rank);
        for (var i = 0; i < rank; i++)
        {
            dims.Add(tensor.DimAt(indices[i]));
            order.Add(tensor.IsPermuted ? tensor.Order[indices[i]] : indices[i]);
        }

        var newDims = dims.MoveToImmutable();
        var newOrder = order.MoveToImmutable();
        if (ViewJudgement.IsInMemoryOrder(newDims, newOrder))
        {
            return ShapeValue.OfTensor(newDims);
        }

        return ShapeValue.Permuted(newDims, newOrder, tensor.IsPermuted ? tensor.Mover! : mover.Syntax);
    }

    /// <summary>A tensor of unknown rank reordered: out of memory order, dimensions unknown (unless the move may be the identity).</summary>
    private static ShapeValue Moved(IOperation mover, ShapeValue tensor, bool maybeIdentity = false)
        => maybeIdentity || tensor.IsPermuted || tensor.Kind is not (ShapeKind.Tensor or ShapeKind.Unknown)
            ? ShapeValue.Unknown
            : ShapeValue.Permuted(default, default, mover.Syntax);

    private static ShapeValue Unsqueeze(ShapeValue tensor, long dim)
    {
        if (!tensor.HasRank || tensor.Kind != ShapeKind.Tensor)
        {
            return tensor.WithoutShape();
        }

        var at = dim < 0 ? dim + tensor.Rank + 1 : dim;
        if (at < 0 || at > tensor.Rank)
        {
            return ShapeValue.Unknown;
        }

        var dims = tensor.Dims.Insert((int)at, Dim.One);
        if (!tensor.IsPermuted || tensor.Order.IsDefault)
        {
            return tensor.WithDims(dims, default);
        }

        // A size-1 dimension has no place in memory order that matters: it takes the place of the dimension after it.
        var place = at < tensor.Rank ? tensor.Order[(int)at] : tensor.Rank;
        var order = ImmutableArray.CreateBuilder<int>(tensor.Rank + 1);
        foreach (var o in tensor.Order)
        {
            order.Add(o >= place ? o + 1 : o);
        }

        order.Insert((int)at, place);
        return tensor.WithDims(dims, order.MoveToImmutable());
    }

    private static ShapeValue Squeeze(ShapeValue tensor, long dim)
    {
        if (!tensor.HasRank || tensor.Kind != ShapeKind.Tensor)
        {
            return tensor.WithoutShape();
        }

        var at = dim < 0 ? dim + tensor.Rank : dim;
        if (at < 0 || at >= tensor.Rank)
        {
            return ShapeValue.Unknown;
        }

        if (!tensor.Dims[(int)at].IsOne)
        {
            return tensor.Dims[(int)at].IsConstant ? tensor : tensor.WithoutShape(); // a size that may be 1 at run time
        }

        var dims = tensor.Dims.RemoveAt((int)at);
        if (!tensor.IsPermuted || tensor.Order.IsDefault)
        {
            return tensor.WithDims(dims, default);
        }

        var removed = tensor.Order[(int)at];
        var order = ImmutableArray.CreateBuilder<int>(dims.Length);
        for (var i = 0; i < tensor.Rank; i++)
        {
            if (i != at)
            {
                order.Add(tensor.Order[i] > removed ? tensor.Order[i] - 1 : tensor.Order[i]);
            }
        }

        return tensor.WithDims(dims, order.MoveToImmutable());
    }

    private static ShapeValue Flatten(IOperation call, ShapeValue tensor, long start, long end)
    {
        if (!tensor.HasRank || tensor.Kind != ShapeKind.Tensor)
        {
            // Flattening everything copies a tensor out of memory order: the result is in order, its shape unknown.
            return ShapeValue.Unknown;
        }

        var rank = tensor.Rank;
        start = start < 0 ? start + rank : start;
        end = end < 0 ? end + rank : end;
        if (rank == 0 || start < 0 || end >= rank || start > end)
        {
            return ShapeValue.Unknown;
        }

        var merged = Dim.One;
        for (var i = start; i <= end; i++)
        {
            merged = merged.Times(tensor.Dims[(int)i]);
        }

        var dims = ImmutableArray.CreateBuilder<Dim>(rank - (int)(end - start));
        for (var i = 0; i < rank; i++)
        {
            if (i < start || i > end)
            {
                dims.Add(tensor.Dims[i]);
            }
            else if (i == start)
            {
                dims.Add(merged.IsKnown ? merged : Dim.Unknown);
            }
        }

        if (!tensor.IsPermuted)
        {
            return ShapeValue.OfTensor(dims.MoveToImmutable());
        }

        // Measured: flatten returns a view when the merged dimensions follow each other in memory (the result is still
        // out of order), and a copy in memory order otherwise.
        return tensor.Order.IsDefault ? ShapeValue.Unknown
            : ViewJudgement.FollowEachOtherInMemory(tensor.Dims, tensor.Order, (int)start, (int)end) ? ShapeValue.Unknown
            : ShapeValue.OfTensor(dims.MoveToImmutable());
    }

    private static ShapeValue Narrow(IOperation call, ShapeValue tensor, long dim, ShapeValue length)
    {
        if (!tensor.HasRank || tensor.Kind != ShapeKind.Tensor)
        {
            return tensor.WithoutShape();
        }

        var at = dim < 0 ? dim + tensor.Rank : dim;
        if (at < 0 || at >= tensor.Rank)
        {
            return ShapeValue.Unknown;
        }

        var dims = tensor.Dims.SetItem((int)at, length.Kind == ShapeKind.Scalar ? length.Scalar : Dim.Unknown);

        // A narrowed tensor's dimensions no longer pack in memory: which views it takes is not tracked.
        return tensor.IsPermuted ? ShapeValue.Permuted(dims, default, tensor.Mover!) : ShapeValue.OfTensor(dims);
    }

    private ShapeValue Factory(IInvocationOperation invocation, ImmutableArray<ShapeValue> arguments)
    {
        // zeros(long[] size, ...), zeros(long size, ...), zeros(long rows, long columns, ...), up to four dimensions.
        var dims = ImmutableArray.CreateBuilder<Dim>();
        for (var i = 0; i < invocation.Arguments.Length; i++)
        {
            var argument = invocation.Arguments[i];
            if (argument.Parameter is not { } parameter || parameter.Ordinal != dims.Count)
            {
                break;
            }

            if (parameter.Type is IArrayTypeSymbol { ElementType.SpecialType: SpecialType.System_Int64 } && parameter.Ordinal == 0)
            {
                return arguments[i] is { Kind: ShapeKind.Array, HasRank: true } sizes ? ShapeValue.OfTensor(sizes.Dims) : ShapeValue.Unknown;
            }

            if (!IsIntegral(parameter.Type) || parameter.Name is "value")
            {
                break;
            }

            dims.Add(arguments[i].Kind == ShapeKind.Scalar ? arguments[i].Scalar : Dim.Of(_atoms.Atom(argument.Value.Syntax, argument.Value.Syntax)));
        }

        return dims.Count == 0 ? ShapeValue.Unknown : ShapeValue.OfTensor(dims.ToImmutable());
    }

    private ShapeValue Binary(IBinaryOperation binary, ShapeValue left, ShapeValue right)
    {
        if (binary.OperatorMethod is { } method && _torch.IsInTorchSharp(method))
        {
            // Tensor arithmetic with a number keeps the tensor's shape and strides (measured); two tensors broadcast.
            var leftIsTensor = _torch.IsTensor(binary.LeftOperand.Type);
            var rightIsTensor = _torch.IsTensor(binary.RightOperand.Type);
            return leftIsTensor && !rightIsTensor ? left : rightIsTensor && !leftIsTensor ? right : ShapeValue.Unknown;
        }

        if (left.Kind == ShapeKind.Scalar && right.Kind == ShapeKind.Scalar)
        {
            var result = binary.OperatorKind switch
            {
                BinaryOperatorKind.Multiply => left.Scalar.Times(right.Scalar),
                BinaryOperatorKind.Divide when !left.Scalar.IsConstant || !right.Scalar.IsConstant => left.Scalar.DividedBy(right.Scalar),
                _ => Dim.Unknown,
            };
            if (result.IsKnown)
            {
                return ShapeValue.OfScalar(result);
            }
        }

        return Opaque(binary);
    }

    /// <summary>An integer the analysis cannot compute is an atom of its own, named by its code; anything else is unknown.</summary>
    private ShapeValue Opaque(IOperation operation)
        => IsIntegral(operation.Type) ? ShapeValue.OfScalar(Dim.Of(_atoms.Atom(operation.Syntax, operation.Syntax))) : ShapeValue.Unknown;

    private static long? IndexOf(IOperation index)
    {
        index = index.WithoutConversions()!;
        if (index.ConstantValue is { HasValue: true, Value: var value } && AsLong(value) is { } constant)
        {
            return constant;
        }

        // shape[^1]: from the end.
        return index is IUnaryOperation { OperatorKind: UnaryOperatorKind.Hat, Operand.ConstantValue: { HasValue: true, Value: var fromEnd } } && AsLong(fromEnd) is > 0 and var k
            ? -k
            : null;
    }

    private static bool IsIntegral(ITypeSymbol? type)
        => type?.SpecialType is SpecialType.System_Int64 or SpecialType.System_Int32 or SpecialType.System_Int16 or SpecialType.System_UInt32;

    private static long? AsLong(object? value)
        => value switch
        {
            long l => l,
            int i => i,
            short s => s,
            uint u => u,
            _ => null,
        };

    /// <summary>The arguments of a call after the tensor it operates on, by parameter position.</summary>
    private readonly struct Arguments
    {
        private readonly IInvocationOperation _invocation;
        private readonly ImmutableArray<ShapeValue> _values;
        private readonly int _first;

        public Arguments(IInvocationOperation invocation, ImmutableArray<ShapeValue> values, int first)
        {
            _invocation = invocation;
            _values = values;
            _first = first;
        }

        public int Count => _invocation.TargetMethod.Parameters.Length - _first;

        public ShapeValue Value(int index)
        {
            for (var i = 0; i < _invocation.Arguments.Length; i++)
            {
                if (_invocation.Arguments[i].Parameter?.Ordinal == index + _first)
                {
                    return _values[i];
                }
            }

            return ShapeValue.Unknown;
        }

        public long? Constant(int index)
            => Value(index) is { Kind: ShapeKind.Scalar, Scalar: { IsConstant: true, Denominator: 1 } scalar } ? scalar.Numerator : null;

        /// <summary>The size expressions written for a params or array argument (<c>view(b, -1)</c>, <c>view(new long[] { b, -1 })</c>).</summary>
        public ImmutableArray<IOperation> Elements(int index)
        {
            foreach (var argument in _invocation.Arguments)
            {
                if (argument.Parameter?.Ordinal == index + _first
                    && argument.Value.WithoutConversions() is IArrayCreationOperation { Initializer: { } initializer })
                {
                    return initializer.ElementValues;
                }
            }

            return ImmutableArray<IOperation>.Empty;
        }
    }
}
