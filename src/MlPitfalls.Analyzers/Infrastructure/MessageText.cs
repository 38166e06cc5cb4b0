using System.Text;
using Microsoft.CodeAnalysis;

namespace MlPitfalls.Analyzers.Infrastructure;

/// <summary>How messages quote code: on one line, however it is laid out, and cut when long.</summary>
internal static class MessageText
{
    /// <summary>The node's text on one line, cut at <paramref name="maxLength"/> characters.</summary>
    public static string OneLine(SyntaxNode node, int maxLength = 60) => OneLine(node.ToString(), maxLength);

    /// <summary><paramref name="text"/> with every run of white space made one space, trimmed, cut at <paramref name="maxLength"/> characters.</summary>
    public static string OneLine(string text, int maxLength = 60)
    {
        var line = new StringBuilder(text.Length);
        var space = false;
        foreach (var character in text)
        {
            if (char.IsWhiteSpace(character))
            {
                space = line.Length > 0;
                continue;
            }

            if (space)
            {
                line.Append(' ');
                space = false;
            }

            line.Append(character);
        }

        return line.Length > maxLength ? line.ToString(0, maxLength - 3) + "..." : line.ToString();
    }
}
