using System.Collections.Generic;
using System.Linq;
using System.Runtime.CompilerServices;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;

namespace MlPitfalls.Analyzers.TensorLayout;

/// <summary>
/// What the text of a member says about its tensors' layout, read once per member before any binding: which variables
/// may hold a moved tensor (assigned from code that names permute, transpose, t, T, mT or such a variable), which may
/// hold a size read from a tensor (assigned from code that names shape, size or such a variable), and which may hold a
/// tensor whose sizes the code gave (a view, reshape or factory). The layout rules build
/// a member's graph only for the views these names make possible; names stand for every variable of that name, so the
/// answer errs towards "may".
/// </summary>
internal sealed class LayoutSyntax
{
    private static readonly ConditionalWeakTable<SyntaxNode, LayoutSyntax> Cache = new();

    private readonly HashSet<string> _moved = new();
    private readonly HashSet<string> _sizes = new();
    private readonly HashSet<string> _shaped = new();

    private LayoutSyntax(SyntaxNode member)
    {
        var assignments = new List<(IReadOnlyList<string> Targets, SyntaxNode Value)>();
        foreach (var node in member.DescendantNodes())
        {
            switch (node)
            {
                case VariableDeclaratorSyntax { Initializer.Value: { } value } declarator:
                    assignments.Add((new[] { declarator.Identifier.ValueText }, value));
                    break;
                case AssignmentExpressionSyntax assignment:
                    assignments.Add((Names(assignment.Left), assignment.Right));
                    break;
                case ForEachStatementSyntax loop:
                    assignments.Add((new[] { loop.Identifier.ValueText }, loop.Expression));
                    break;
                case ForEachVariableStatementSyntax loop:
                    assignments.Add((Names(loop.Variable), loop.Expression));
                    break;
                case InvocationExpressionSyntax { Expression: MemberAccessExpressionSyntax { Name.Identifier.ValueText: var name, Expression: var receiver } }
                    when name.EndsWith("_", System.StringComparison.Ordinal):
                    assignments.Add((Names(receiver), node)); // transpose_(1, 2) moves the receiver itself
                    break;
            }
        }

        // To a fixed point: a variable assigned from a moved or size-holding variable holds one too.
        bool changed;
        do
        {
            changed = false;
            foreach (var (targets, value) in assignments)
            {
                var moved = MayBeMoved(value);
                var sizes = NamesSize(value) || Mentions(value, _sizes);
                var shaped = NamesShapeGiver(value) || Mentions(value, _shaped);
                foreach (var target in targets)
                {
                    changed |= moved && _moved.Add(target);
                    changed |= sizes && _sizes.Add(target);
                    changed |= shaped && _shaped.Add(target);
                }
            }
        }
        while (changed);
    }

    public static LayoutSyntax Of(SyntaxNode node)
    {
        var member = node.FirstAncestorOrSelf<SyntaxNode>(n => n is MemberDeclarationSyntax or CompilationUnitSyntax) ?? node.SyntaxTree.GetRoot();
        return Cache.GetValue(member, static m => new LayoutSyntax(m));
    }

    /// <summary>True when <paramref name="expression"/> may hold a tensor a permute or transpose moved.</summary>
    public bool MayBeMoved(SyntaxNode expression)
        => !EndsInFreshMemory(expression) && (NamesMover(expression) || Mentions(expression, _moved));

    /// <summary><c>... .contiguous()</c> or <c>... .reshape(...)</c> last: whatever came before, the result is in memory order.</summary>
    private static bool EndsInFreshMemory(SyntaxNode expression)
    {
        while (expression is ParenthesizedExpressionSyntax parenthesized)
        {
            expression = parenthesized.Expression;
        }

        return expression is InvocationExpressionSyntax { Expression: MemberAccessExpressionSyntax { Name.Identifier.ValueText: "contiguous" or "reshape" } };
    }

    /// <summary>True when <paramref name="expression"/> may compute a size read from a tensor.</summary>
    public bool MayReadSizes(SyntaxNode expression) => NamesSize(expression) || Mentions(expression, _sizes);

    /// <summary>True when <paramref name="expression"/> may hold a tensor whose sizes the code gave (a view, reshape or factory).</summary>
    public bool MayHaveGivenShape(SyntaxNode expression) => NamesShapeGiver(expression) || Mentions(expression, _shaped);

    private static bool NamesMover(SyntaxNode node)
        => node.DescendantTokens().Any(t => t.IsKind(SyntaxKind.IdentifierToken)
                                            && t.ValueText is "permute" or "transpose" or "transpose_" or "swapaxes" or "swapdims" or "t" or "T" or "mT" or "mH" or "H" or "movedim");

    private static bool NamesSize(SyntaxNode node)
        => node.DescendantTokens().Any(t => t.IsKind(SyntaxKind.IdentifierToken) && t.ValueText is "shape" or "size");

    private static bool NamesShapeGiver(SyntaxNode node)
        => node.DescendantTokens().Any(t => t.IsKind(SyntaxKind.IdentifierToken)
                                            && t.ValueText is "view" or "reshape" or "zeros" or "ones" or "empty" or "randn" or "rand" or "full");

    private static bool Mentions(SyntaxNode node, HashSet<string> names)
        => names.Count > 0 && node.DescendantNodesAndSelf().Any(n => n is IdentifierNameSyntax identifier && names.Contains(identifier.Identifier.ValueText));

    private static IReadOnlyList<string> Names(SyntaxNode target)
        => target.DescendantNodesAndSelf()
            .Select(n => n switch
            {
                IdentifierNameSyntax identifier => identifier.Identifier.ValueText,
                SingleVariableDesignationSyntax designation => designation.Identifier.ValueText,
                _ => null,
            })
            .Where(n => n is not null)
            .Select(n => n!)
            .ToList();
}
