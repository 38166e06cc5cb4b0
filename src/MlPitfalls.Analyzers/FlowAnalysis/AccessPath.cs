using System;
using System.Collections.Immutable;
using System.Linq;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.FlowAnalysis;
using Microsoft.CodeAnalysis.Operations;
using MlPitfalls.Analyzers.Infrastructure;

namespace MlPitfalls.Analyzers.FlowAnalysis;

/// <summary>
/// A place a value can be stored and read back: a local or parameter (<c>logits</c>), a field or property of the
/// current object (<c>this.head</c>, written <c>head</c>), a member of another variable (<c>model.head</c>), or a
/// flow capture of the control-flow graph (the temporary that holds <c>a ?? b</c> or <c>c ? x : y</c> while the
/// branches run). Paths compare by symbol, never by name.
/// </summary>
internal readonly struct AccessPath : IEquatable<AccessPath>
{
    private readonly object _root; // ISymbol, CaptureId or SyntaxNode (a creation)

    private AccessPath(object root, ImmutableArray<ISymbol> members)
    {
        _root = root;
        Members = members.IsDefault ? ImmutableArray<ISymbol>.Empty : members;
    }

    /// <summary>The variable, member of <c>this</c> or static member the path starts at; null for a flow capture.</summary>
    public ISymbol? Root => _root as ISymbol;

    /// <summary>The fields and properties read from <see cref="Root"/>, outermost first (<c>model.head</c>: head).</summary>
    public ImmutableArray<ISymbol> Members { get; }

    /// <summary>True for a path that only this method's code can change: a local or a flow capture without members.</summary>
    public bool IsLocalToMethod => Members.IsEmpty && _root is ILocalSymbol or CaptureId;

    /// <summary>True for a local or parameter with no members.</summary>
    public bool IsVariable => Members.IsEmpty && _root is ILocalSymbol or IParameterSymbol;

    public static AccessPath ForCapture(CaptureId id) => new(id, ImmutableArray<ISymbol>.Empty);

    /// <summary>
    /// A place that stands for every object one creation expression makes (<c>optim.SGD(model.parameters())</c>), for an
    /// analysis whose facts hold for all of them alike: no variable is rooted there, so nothing the body writes forgets it.
    /// </summary>
    public static AccessPath ForCreation(SyntaxNode creation) => new(creation, ImmutableArray<ISymbol>.Empty);

    /// <summary>True for the path <see cref="ForCreation"/> makes.</summary>
    public bool IsCreation => _root is SyntaxNode;

    /// <summary>The creation expression of a <see cref="ForCreation"/> path; null otherwise.</summary>
    public SyntaxNode? Creation => _root as SyntaxNode;

    public static AccessPath ForSymbol(ISymbol symbol) => new(symbol, ImmutableArray<ISymbol>.Empty);

    /// <summary>
    /// The object a body runs on (<c>this</c>), for analyses that track the object itself (a module's own
    /// <c>eval()</c>); rooted at its type, which no reference path is. Its fields stay paths rooted at the field.
    /// </summary>
    public static AccessPath ForThis(INamedTypeSymbol type) => new(type, ImmutableArray<ISymbol>.Empty);

    /// <summary>True for the path <see cref="ForThis"/> makes.</summary>
    public bool IsThis => Members.IsEmpty && _root is INamedTypeSymbol;

    /// <summary>This path followed by <paramref name="members"/> (<c>trainer</c> and <c>model.head</c>: <c>trainer.model.head</c>).</summary>
    public AccessPath Append(System.Collections.Generic.IEnumerable<ISymbol> members) => new(_root, Members.AddRange(members));

    /// <summary>
    /// The path an operation reads or writes, when it is a plain reference: a local, parameter, flow capture, or a chain
    /// of fields and parameterless properties on one of them or on <c>this</c>. Null for anything computed.
    /// </summary>
    public static AccessPath? Of(IOperation? operation)
    {
        operation = operation.WithoutConversions();
        switch (operation)
        {
            case IFlowCaptureReferenceOperation capture:
                return ForCapture(capture.Id);
            case ILocalReferenceOperation { Local: { IsRef: false } local }:
                return ForSymbol(local); // the engine asks for every variable read: no chain to build
            case IParameterReferenceOperation { Parameter: var parameter }:
                return ForSymbol(parameter);
        }

        var chain = operation.ReferencedSymbols(); // innermost first: model.head gives head, model
        if (chain.IsDefault || chain.Any(symbol => symbol is IPropertySymbol property && !IsStorage(property)) || chain.Any(symbol => symbol is ILocalSymbol { IsRef: true }))
        {
            return null; // a property with accessor bodies computes or stores elsewhere; a ref local aliases another variable
        }

        var root = chain[chain.Length - 1];
        var members = ImmutableArray.CreateBuilder<ISymbol>(chain.Length - 1);
        for (var i = chain.Length - 2; i >= 0; i--)
        {
            members.Add(chain[i]);
        }

        return new AccessPath(root, members.MoveToImmutable());
    }

    /// <summary>True when the path starts at a local or flow capture that lives only in <paramref name="region"/>.</summary>
    public bool IsScopedTo(ControlFlowRegion region)
        => _root switch
        {
            ILocalSymbol local => region.Locals.Contains(local, SymbolEqualityComparer.Default),
            CaptureId capture => region.CaptureIds.Contains(capture),
            _ => false,
        };

    /// <summary>True when the path goes through <paramref name="member"/> (compared by symbol).</summary>
    public bool Contains(ISymbol member)
    {
        foreach (var m in Members)
        {
            if (SymbolEqualityComparer.Default.Equals(m, member))
            {
                return true;
            }
        }

        return Members.Length == 0 && SymbolEqualityComparer.Default.Equals(Root, member);
    }

    /// <summary>
    /// True for a property that behaves as storage: an auto-property declared in source (what is written is what is read).
    /// A property with accessor bodies, or one from a library, may compute its value.
    /// </summary>
    public static bool IsStorage(IPropertySymbol property)
        => StorageProperties.GetValue(property.OriginalDefinition, static p => ComputeIsStorage((IPropertySymbol)p) ? Yes : No) == Yes;

    // Asked for every property read the engine evaluates: answered once per property symbol.
    private static readonly System.Runtime.CompilerServices.ConditionalWeakTable<ISymbol, object> StorageProperties = new();
    private static readonly object Yes = new(), No = new();

    private static bool ComputeIsStorage(IPropertySymbol property)
    {
        if (property.DeclaringSyntaxReferences.Length == 0)
        {
            return false;
        }

        foreach (var reference in property.DeclaringSyntaxReferences)
        {
            if (reference.GetSyntax() is not Microsoft.CodeAnalysis.CSharp.Syntax.PropertyDeclarationSyntax { ExpressionBody: null, AccessorList: { } accessors }
                || accessors.Accessors.Any(a => a.Body is not null || a.ExpressionBody is not null))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>True when <paramref name="other"/> is this path or a path through it (<c>model</c> prefixes <c>model.head</c>).</summary>
    public bool IsPrefixOf(AccessPath other)
    {
        if (!RootEquals(other) || other.Members.Length < Members.Length)
        {
            return false;
        }

        for (var i = 0; i < Members.Length; i++)
        {
            if (!SymbolEqualityComparer.Default.Equals(Members[i], other.Members[i]))
            {
                return false;
            }
        }

        return true;
    }

    public bool Equals(AccessPath other) => Members.Length == other.Members.Length && IsPrefixOf(other);

    public override bool Equals(object? obj) => obj is AccessPath other && Equals(other);

    public override int GetHashCode()
    {
        var hash = _root is ISymbol symbol ? SymbolEqualityComparer.Default.GetHashCode(symbol) : _root?.GetHashCode() ?? 0;
        foreach (var member in Members)
        {
            hash = unchecked((hash * 31) + SymbolEqualityComparer.Default.GetHashCode(member));
        }

        return hash;
    }

    public override string ToString()
    {
        var root = _root switch { ISymbol symbol => symbol.Name, SyntaxNode creation => creation.ToString(), _ => "capture" };
        return Members.IsEmpty ? root : root + "." + string.Join(".", Members.Select(m => m.Name));
    }

    private bool RootEquals(AccessPath other)
        => _root is ISymbol symbol ? SymbolEqualityComparer.Default.Equals(symbol, other._root as ISymbol) : Equals(_root, other._root);
}
