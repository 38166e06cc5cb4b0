using System.Linq;
using MlPitfalls.Analyzers.FlowAnalysis;
using MlPitfalls.Analyzers.Infrastructure;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Operations;

namespace MlPitfalls.Analyzers.TrainingLoop;

/// <summary>
/// What the MLP001 fixes may write for one loop: the optimizer's name as the first statement of the body, and whether a
/// misplaced clear can move up to backward(). Every doubt means no fix: a fix that does not compile, or that clears
/// another object, is worse than none (the diagnostic still says what to do).
/// </summary>
internal sealed class FixSafety
{
    private readonly ILoopOperation _loop;

    public FixSafety(ILoopOperation loop) => _loop = loop;

    /// <summary>
    /// An expression naming the optimizer <paramref name="path"/> (as the loop's code names it) that can be written as the
    /// first statement of the loop body, or null when there is none: a name that does not reach the same symbol there,
    /// or a variable declared or assigned in the body.
    /// </summary>
    /// <remarks><paramref name="writtenAs"/>: the receiver as the loop body writes it at a direct step, which is used as written.</remarks>
    public string? OptimizerExpression(AccessPath path, SyntaxNode? writtenAs)
    {
        var body = _loop.Body;
        if (path.Root is not { } root || _loop.SemanticModel is not { } model || root is INamedTypeSymbol or IMethodSymbol)
        {
            return null;
        }

        var symbols = new[] { root }.Concat(path.Members).ToList();
        if (!symbols.All(IsSameAtStartOfBody))
        {
            return null;
        }

        if (writtenAs is not null && writtenAs.SyntaxTree == body.Syntax.SyntaxTree && body.Syntax.Span.Contains(writtenAs.Span))
        {
            return writtenAs.ToString();
        }

        var visible = model.LookupSymbols(body.Syntax.SpanStart, name: root.Name);
        if (!visible.Any(s => SymbolEqualityComparer.Default.Equals(s, root)))
        {
            return null; // a private field of a base class, or a helper's field the loop's class does not have
        }

        return string.Join(".", symbols.Select(s => s.Name));
    }

    /// <summary>
    /// True when <paramref name="symbol"/>, written as the first statement of the loop body, is the object the loop
    /// steps: not declared inside the body (a local, an inner loop's variable, a lambda parameter: the inserted line
    /// would not compile) and not assigned there (it would clear the previous optimizer, or null on the first pass).
    /// </summary>
    private bool IsSameAtStartOfBody(ISymbol symbol)
    {
        var body = _loop.Body;
        if (symbol is ILocalSymbol or IParameterSymbol
            && symbol.DeclaringSyntaxReferences.Any(r => r.SyntaxTree == body.Syntax.SyntaxTree && body.Syntax.Span.Contains(r.Span)))
        {
            return false;
        }

        return !body.Descendants().Any(operation => Assigns(operation, symbol));
    }

    /// <summary>
    /// True when the clear at <paramref name="clear"/>, moved up to <paramref name="backward"/>, still names the same
    /// optimizer or module: nothing its receiver reads is declared or assigned from the backward() statement on.
    /// </summary>
    public bool NamesTheSameBefore(SyntaxNode clear, SyntaxNode backward)
    {
        var operation = _loop.SemanticModel?.GetOperation(clear);
        var names = operation is IInvocationOperation invocation ? invocation.ResolvedReceiver().ReferencedSymbols() : default;
        if (names.IsDefault)
        {
            return false;
        }

        var from = backward.SpanStart;
        var to = clear.SpanStart;
        return !names.Any(name => name is ILocalSymbol && name.DeclaringSyntaxReferences.Any(r => r.Span.Start >= from))
               && !_loop.Body.Descendants().Any(o => o.Syntax.SpanStart >= from && o.Syntax.SpanStart < to && names.Any(name => Assigns(o, name)));
    }

    /// <summary>True when <paramref name="operation"/> assigns <paramref name="symbol"/> (=, ??=, +=, deconstruction, out or ref).</summary>
    private static bool Assigns(IOperation operation, ISymbol symbol)
    {
        var assigned = operation switch
        {
            IAssignmentOperation assignment => assignment.Target,
            IArgumentOperation { Parameter.RefKind: RefKind.Out or RefKind.Ref } argument => argument.Value,
            _ => null,
        };
        return assigned is ITupleOperation tuple
            ? tuple.Elements.Any(e => SymbolEqualityComparer.Default.Equals(e.ReferencedSymbol(), symbol))
            : SymbolEqualityComparer.Default.Equals(assigned.ReferencedSymbol(), symbol);
    }
}
