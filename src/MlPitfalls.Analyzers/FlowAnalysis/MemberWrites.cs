using System.Collections.Generic;
using System.Runtime.CompilerServices;
using System.Threading;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using Microsoft.CodeAnalysis.Operations;
using Microsoft.CodeAnalysis.Text;

namespace MlPitfalls.Analyzers.FlowAnalysis;

/// <summary>
/// The names a member writes anywhere in its body, lambdas and local functions included: every name on the left of an
/// assignment (<c>x = ...</c>, <c>this.f += ...</c>, <c>(a, b) = ...</c>), the operand of <c>++</c>/<c>--</c>, every
/// <c>ref</c>/<c>out</c>/<c>in</c> argument, <c>ref</c> expression and address-of, and the receiver and arguments of an
/// in-place call (a name ending in <c>_</c>, TorchSharp's convention: <c>p.log_()</c>). Read from syntax once per member
/// and matched by name and position only, so it over-approximates (a same-named variable in the same scope counts as
/// written). It is used only to prove that something is <em>not</em> written, which is what lets an analysis read a
/// variable's value without the member's control-flow graph: a local with no write inside its scope but its declaration
/// holds that value wherever it is read in the same function, and a parameter or field the member never writes holds
/// whatever the caller gave.
/// </summary>
internal sealed class MemberWrites
{
    private static readonly ConditionalWeakTable<SyntaxNode, MemberWrites> Cache = new();

    // Where each name is written (the start of the written name): a local's writes are those inside its scope, so that
    // `output += r` in one loop does not count against another loop's own `output`.
    private readonly Dictionary<string, List<int>> _written = new();

    private MemberWrites(SyntaxNode member)
    {
        foreach (var node in member.DescendantNodes())
        {
            switch (node)
            {
                case AssignmentExpressionSyntax assignment:
                    AddNames(assignment.Left);
                    break;
                case PrefixUnaryExpressionSyntax prefix when prefix.IsKind(SyntaxKind.PreIncrementExpression) || prefix.IsKind(SyntaxKind.PreDecrementExpression)
                                                               || prefix.IsKind(SyntaxKind.AddressOfExpression):
                    AddNames(prefix.Operand);
                    break;
                case PostfixUnaryExpressionSyntax postfix when postfix.IsKind(SyntaxKind.PostIncrementExpression) || postfix.IsKind(SyntaxKind.PostDecrementExpression):
                    AddNames(postfix.Operand);
                    break;
                case ArgumentSyntax { RefKindKeyword.RawKind: not (int)SyntaxKind.None } argument:
                    AddNames(argument.Expression);
                    break;
                case RefExpressionSyntax reference:
                    AddNames(reference.Expression);
                    break;
                case InvocationExpressionSyntax { Expression: MemberAccessExpressionSyntax { Name.Identifier.ValueText: var method } access } call
                    when method.EndsWith("_", System.StringComparison.Ordinal):
                    // TorchSharp's in-place operations (p.log_(), init.zeros_(w)) change the tensor a variable holds.
                    AddNames(access.Expression);
                    AddNames(call.ArgumentList);
                    break;
            }
        }
    }

    /// <summary>True when no write in the member (as above) names <paramref name="name"/>.</summary>
    public bool NeverWrites(string name) => !_written.ContainsKey(name);

    /// <summary>True when no write inside <paramref name="scope"/> names <paramref name="name"/>.</summary>
    public bool NeverWritesWithin(string name, TextSpan scope)
    {
        if (!_written.TryGetValue(name, out var positions))
        {
            return true;
        }

        foreach (var position in positions)
        {
            if (scope.Contains(position))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>The writes of the member (or, for top-level statements, the whole program) that <paramref name="node"/> lies in.</summary>
    public static MemberWrites? Around(SyntaxNode node)
        => MemberOf(node) is { } member ? Cache.GetValue(member, static m => new MemberWrites(m)) : null;

    /// <summary>
    /// The value <paramref name="reference"/> reads when the local is written only by its declaration and is read in the
    /// same function that declares it (a lambda that captures it may also run standalone, where the engine knows
    /// nothing): the initializer's operation, or <see cref="SingleDefinition.Untracked"/> for a local declared by a
    /// deconstruction (<c>(var output, hidden) = rnn.call(x, h)</c>), whose value no analysis tracks. Null otherwise.
    /// </summary>
    public static SingleDefinition? DefinitionOf(ILocalReferenceOperation reference, CancellationToken cancellationToken)
    {
        var local = reference.Local;
        if (local.IsRef || local.DeclaringSyntaxReferences.Length != 1 || reference.SemanticModel is not { } model)
        {
            return null;
        }

        var declaration = local.DeclaringSyntaxReferences[0].GetSyntax(cancellationToken);
        if (declaration.SyntaxTree != reference.Syntax.SyntaxTree || FunctionOf(declaration) != FunctionOf(reference.Syntax)
            || Around(declaration) is not { } writes || !writes.NeverWritesWithin(local.Name, ScopeAround(declaration).Span))
        {
            return null;
        }

        switch (declaration)
        {
            case VariableDeclaratorSyntax { Initializer: not null } declarator
                when model.GetOperation(declarator, cancellationToken) is IVariableDeclaratorOperation { Initializer.Value: { } value }:
                return new SingleDefinition(value);
            case SingleVariableDesignationSyntax designation when IsDeconstructed(designation):
                return SingleDefinition.Untracked;
            default:
                return null;
        }
    }

    /// <summary>The member whose writes decide what <paramref name="node"/> can read: top-level statements share one.</summary>
    private static SyntaxNode? MemberOf(SyntaxNode node)
    {
        for (var current = node; current is not null; current = current.Parent)
        {
            switch (current)
            {
                case GlobalStatementSyntax { Parent: { } unit }:
                    return unit;
                case MemberDeclarationSyntax member:
                    return member;
            }
        }

        return null;
    }

    /// <summary>
    /// A node that contains the whole scope of a local declared at <paramref name="declaration"/>: its innermost block or
    /// switch statement (a switch section's locals are in scope in every section), or the function around it. Every
    /// local's scope (a block, a switch, a <c>for</c>, <c>foreach</c>, <c>using</c> or <c>catch</c>, an expression-bodied
    /// lambda) lies inside it, and C# forbids a nested local of the same name there, so any write of the name outside
    /// it is to another variable.
    /// </summary>
    private static SyntaxNode ScopeAround(SyntaxNode declaration)
    {
        for (var current = declaration.Parent; current is not null; current = current.Parent)
        {
            switch (current)
            {
                case GlobalStatementSyntax { Parent: { } unit }:
                    return unit; // a top-level local is in scope in every later top-level statement
                case BlockSyntax or SwitchStatementSyntax or AnonymousFunctionExpressionSyntax or LocalFunctionStatementSyntax
                    or MemberDeclarationSyntax or CompilationUnitSyntax:
                    return current;
            }
        }

        return declaration.SyntaxTree.GetRoot();
    }

    /// <summary>The innermost lambda, local function or member around <paramref name="node"/>.</summary>
    private static SyntaxNode? FunctionOf(SyntaxNode node)
    {
        for (var current = node; current is not null; current = current.Parent)
        {
            switch (current)
            {
                case AnonymousFunctionExpressionSyntax or LocalFunctionStatementSyntax:
                    return current;
                case GlobalStatementSyntax { Parent: { } unit }:
                    return unit;
                case MemberDeclarationSyntax:
                    return current;
            }
        }

        return null;
    }

    /// <summary>True for <c>var (a, b) = ...</c> and <c>(var a, b) = ...</c>: a designation on the left of a deconstruction.</summary>
    private static bool IsDeconstructed(SingleVariableDesignationSyntax designation)
    {
        SyntaxNode node = designation;
        while (node.Parent is ParenthesizedVariableDesignationSyntax or DeclarationExpressionSyntax or ArgumentSyntax { RefKindKeyword.RawKind: (int)SyntaxKind.None } or TupleExpressionSyntax)
        {
            node = node.Parent;
        }

        return node.Parent is AssignmentExpressionSyntax assignment && assignment.IsKind(SyntaxKind.SimpleAssignmentExpression) && assignment.Left == node;
    }

    private void AddNames(SyntaxNode target)
    {
        if (target is IdentifierNameSyntax identifier)
        {
            Add(identifier);
            return;
        }

        foreach (var node in target.DescendantNodes())
        {
            if (node is IdentifierNameSyntax name)
            {
                Add(name);
            }
        }
    }

    private void Add(IdentifierNameSyntax name)
    {
        var text = name.Identifier.ValueText;
        if (!_written.TryGetValue(text, out var positions))
        {
            _written[text] = positions = new List<int>(1);
        }

        positions.Add(name.SpanStart);
    }
}

/// <summary>The one value a local is assigned (see <see cref="MemberWrites.DefinitionOf"/>).</summary>
internal sealed class SingleDefinition
{
    public static readonly SingleDefinition Untracked = new(null);

    public SingleDefinition(IOperation? value) => Value = value;

    /// <summary>The initializer's value; null when the local is declared by a deconstruction.</summary>
    public IOperation? Value { get; }
}
