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
        var assignments = new List<Assignment>();
        foreach (var node in member.DescendantNodes())
        {
            switch (node)
            {
                case VariableDeclaratorSyntax { Initializer.Value: { } value } declarator:
                    assignments.Add(new Assignment(new[] { declarator.Identifier.ValueText }, value));
                    break;
                case AssignmentExpressionSyntax assignment:
                    assignments.Add(new Assignment(Names(assignment.Left), assignment.Right));
                    break;
                case ForEachStatementSyntax loop:
                    assignments.Add(new Assignment(new[] { loop.Identifier.ValueText }, loop.Expression));
                    break;
                case ForEachVariableStatementSyntax loop:
                    assignments.Add(new Assignment(Names(loop.Variable), loop.Expression));
                    break;
                case InvocationExpressionSyntax { Expression: MemberAccessExpressionSyntax { Name.Identifier.ValueText: var name, Expression: var receiver } }
                    when name.EndsWith("_", System.StringComparison.Ordinal):
                    assignments.Add(new Assignment(Names(receiver), node)); // transpose_(1, 2) moves the receiver itself
                    break;
            }
        }

        // To a fixed point: a variable assigned from a moved or size-holding variable holds one too. Each value's
        // identifiers are read once; the rounds only look names up.
        bool changed;
        do
        {
            changed = false;
            foreach (var assignment in assignments)
            {
                var moved = !assignment.EndsInFreshMemory && (assignment.NamesMover || assignment.Mentions(_moved));
                var sizes = assignment.NamesSize || assignment.Mentions(_sizes);
                var shaped = assignment.NamesShapeGiver || assignment.Mentions(_shaped);
                foreach (var target in assignment.Targets)
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
        // Top-level statements are one body: a global statement is not a member of its own.
        var member = node.FirstAncestorOrSelf<SyntaxNode>(n => n is MemberDeclarationSyntax and not GlobalStatementSyntax or CompilationUnitSyntax) ?? node.SyntaxTree.GetRoot();
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

    private static bool NamesMover(SyntaxNode node) => Identifiers(node).Any(IsMover);

    private static bool NamesSize(SyntaxNode node) => Identifiers(node).Any(IsSize);

    private static bool NamesShapeGiver(SyntaxNode node) => Identifiers(node).Any(IsShapeGiver);

    private static bool IsMover(string name)
        => name is "permute" or "transpose" or "transpose_" or "swapaxes" or "swapdims" or "t" or "T" or "mT" or "mH" or "H" or "movedim";

    private static bool IsSize(string name) => name is "shape" or "size";

    private static bool IsShapeGiver(string name) => name is "view" or "reshape" or "zeros" or "ones" or "empty" or "randn" or "rand" or "full";

    private static IEnumerable<string> Identifiers(SyntaxNode node)
        => node.DescendantTokens().Where(t => t.IsKind(SyntaxKind.IdentifierToken)).Select(t => t.ValueText);

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

    /// <summary>One assignment of the member: the names it writes and what its value's text says, read once.</summary>
    private sealed class Assignment
    {
        private readonly string[] _identifiers;

        public Assignment(IReadOnlyList<string> targets, SyntaxNode value)
        {
            Targets = targets;
            _identifiers = Identifiers(value).ToArray();
            EndsInFreshMemory = LayoutSyntax.EndsInFreshMemory(value);
            NamesMover = _identifiers.Any(IsMover);
            NamesSize = _identifiers.Any(IsSize);
            NamesShapeGiver = _identifiers.Any(IsShapeGiver);
        }

        public IReadOnlyList<string> Targets { get; }

        public bool EndsInFreshMemory { get; }

        public bool NamesMover { get; }

        public bool NamesSize { get; }

        public bool NamesShapeGiver { get; }

        public bool Mentions(HashSet<string> names)
        {
            if (names.Count == 0)
            {
                return false;
            }

            foreach (var identifier in _identifiers)
            {
                if (names.Contains(identifier))
                {
                    return true;
                }
            }

            return false;
        }
    }
}
