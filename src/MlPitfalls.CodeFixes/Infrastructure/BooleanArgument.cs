using System.Linq;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;

namespace MlPitfalls.CodeFixes.Infrastructure;

/// <summary>Sets a call's <c>bool</c> argument to <c>false</c>, in the style the call already uses.</summary>
internal static class BooleanArgument
{
    /// <summary>
    /// <paramref name="call"/> with the argument for <paramref name="parameterName"/> set to <c>false</c>: an argument
    /// already given (named or positional) keeps its place and only its value changes; an omitted one is added, named, at
    /// the end (valid after any positional or named arguments), so every other argument stays as written.
    /// </summary>
    public static InvocationExpressionSyntax SetFalse(InvocationExpressionSyntax call, IMethodSymbol method, string parameterName)
    {
        var falseLiteral = SyntaxFactory.LiteralExpression(SyntaxKind.FalseLiteralExpression);
        var arguments = call.ArgumentList.Arguments;
        for (var i = 0; i < arguments.Count; i++)
        {
            var argument = arguments[i];
            if (ParameterOf(argument, i, method)?.Name == parameterName)
            {
                return call.ReplaceNode(argument.Expression, falseLiteral.WithTriviaFrom(argument.Expression));
            }
        }

        var added = SyntaxFactory.Argument(SyntaxFactory.NameColon(parameterName), default, falseLiteral);
        var last = arguments.Count > 0 ? arguments[arguments.Count - 1] : null;
        if (last is null || !last.GetTrailingTrivia().Any(t => t.IsKind(SyntaxKind.EndOfLineTrivia)))
        {
            return call.WithArgumentList(call.ArgumentList.AddArguments(added));
        }

        // A ')' on a line of its own: the new argument goes right after the last one, before the comment and line break
        // that trail it, so the ')' keeps its place.
        var moved = arguments.Replace(last, last.WithoutTrailingTrivia()).Add(added.WithTrailingTrivia(last.GetTrailingTrivia()));
        return call.WithArgumentList(call.ArgumentList.WithArguments(moved));
    }

    /// <summary>
    /// <paramref name="call"/> back on the default of the argument for <paramref name="parameterName"/>: the argument is
    /// removed with its comma, unless a positional argument follows it (whose place it holds): then it is set to
    /// <c>true</c> instead. Unchanged when the argument is not written.
    /// </summary>
    public static InvocationExpressionSyntax Remove(InvocationExpressionSyntax call, IMethodSymbol method, string parameterName)
    {
        var arguments = call.ArgumentList.Arguments;
        for (var i = 0; i < arguments.Count; i++)
        {
            var argument = arguments[i];
            if (ParameterOf(argument, i, method)?.Name != parameterName)
            {
                continue;
            }

            // A positional argument after it (after a named one too, C# 7.2's non-trailing named arguments) would take its place.
            if (arguments.Skip(i + 1).Any(a => a.NameColon is null))
            {
                var trueLiteral = SyntaxFactory.LiteralExpression(SyntaxKind.TrueLiteralExpression);
                return call.ReplaceNode(argument.Expression, trueLiteral.WithTriviaFrom(argument.Expression));
            }

            // Removing the separator before the argument (or after it, for the first) keeps the remaining list well formed;
            // trivia that ended the removed argument's line (a ')' on a line of its own) moves to the argument before it.
            var remaining = arguments.RemoveAt(i);
            if (i > 0 && i == arguments.Count - 1 && argument.GetTrailingTrivia().Any(t => t.IsKind(SyntaxKind.EndOfLineTrivia)))
            {
                var before = remaining[i - 1];
                remaining = remaining.Replace(before, before.WithTrailingTrivia(argument.GetTrailingTrivia()));
            }

            return call.WithArgumentList(call.ArgumentList.WithArguments(remaining));
        }

        return call;
    }

    /// <summary>The parameter the argument at <paramref name="index"/> binds to: by its name, or by its place.</summary>
    private static IParameterSymbol? ParameterOf(ArgumentSyntax argument, int index, IMethodSymbol method)
        => argument.NameColon is { } named
            ? method.Parameters.FirstOrDefault(p => p.Name == named.Name.Identifier.ValueText)
            : index < method.Parameters.Length ? method.Parameters[index] : null;
}
