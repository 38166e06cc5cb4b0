using System;
using System.Collections.Generic;
using System.Collections.Immutable;
using System.Linq;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;

namespace MlPitfalls.Analyzers.Tests.Robustness;

/// <summary>One program of the crash-safety corpus: its files (path, text) and how a project would compile them.</summary>
internal sealed class SweepProgram
{
    public SweepProgram(string name, IEnumerable<(string Path, string Text)> files, OutputKind outputKind = OutputKind.DynamicallyLinkedLibrary)
    {
        Name = name;
        Files = files.ToImmutableArray();
        OutputKind = outputKind;
    }

    /// <summary>Where it comes from: <c>samples/TrainingLoop</c>, <c>generated/TrainingCode</c>, <c>tests/Losses/X.cs:120</c>.</summary>
    public string Name { get; }

    public ImmutableArray<(string Path, string Text)> Files { get; }

    public OutputKind OutputKind { get; }

    public CSharpCompilation Compile(LanguageVersion version = LanguageVersion.Latest, bool referenceTorchSharp = true)
        => CrashSafety.Compile(Files, version, referenceTorchSharp, OutputKind);

    /// <summary>The program with file <paramref name="path"/> replaced by <paramref name="text"/> (the other files intact, as while editing one file of a project).</summary>
    public CSharpCompilation CompileWith(string path, string text, LanguageVersion version = LanguageVersion.Latest)
        => CrashSafety.Compile(Files.Select(f => f.Path == path ? (f.Path, text) : f), version, referenceTorchSharp: true, OutputKind);

    /// <summary>The program with <paramref name="edit"/> applied to the text of every file.</summary>
    public CSharpCompilation CompileEdited(Func<string, string> edit)
        => CrashSafety.Compile(Files.Select(f => (f.Path, edit(f.Text))), LanguageVersion.Latest, referenceTorchSharp: true, OutputKind);

    /// <summary>The program compiled against <paramref name="torchSharp"/> instead of the real TorchSharp.</summary>
    public CSharpCompilation CompileAgainst(MetadataReference torchSharp)
        => CrashSafety.Compile(Files, LanguageVersion.Latest, referenceTorchSharp: false, OutputKind, new[] { torchSharp });

    /// <summary>
    /// The program split into two projects: an application of <paramref name="applicationFile"/> referencing a library of
    /// the other files, the way the IDE compiles it (a reference to the library's compilation, whose symbols have syntax in
    /// the library's trees) or the way a command-line build does (the library's emitted assembly).
    /// </summary>
    public CSharpCompilation CompileAsTwoProjects(string applicationFile, bool asTheIdeDoes)
    {
        var library = CrashSafety.Compile(Files.Where(f => f.Path != applicationFile)).WithAssemblyName("Library");
        var reference = asTheIdeDoes ? library.ToMetadataReference() : CrashSafety.EmitToImage(library);
        return CrashSafety.Compile(Files.Where(f => f.Path == applicationFile), LanguageVersion.Latest, referenceTorchSharp: true, OutputKind, new[] { reference });
    }

    public string Text(string path) => Files.Single(f => f.Path == path).Text;

    public override string ToString() => Name;
}

/// <summary>
/// Where a file is cut: token boundaries inside members (method, constructor, accessor and operator bodies, field
/// initializers, top-level statements), where an editor leaves code half-written. Big files are sampled, not cut at
/// every token: <c>count</c> cut points spread evenly over the member tokens, the same ones on every run.
/// </summary>
internal static class CutPoints
{
    public static ImmutableArray<SyntaxToken> Sample(string text, int count)
    {
        var tokens = MemberTokens(text);
        if (tokens.Count <= count)
        {
            return tokens.ToImmutableArray();
        }

        // Evenly spaced, starting half a stride in, so neither the first nor the last member is favoured.
        var stride = (double)tokens.Count / count;
        return Enumerable.Range(0, count).Select(i => tokens[(int)((i + 0.5) * stride)]).ToImmutableArray();
    }

    /// <summary>The member token at <paramref name="fraction"/> (0 to 1) of the way through the file.</summary>
    public static SyntaxToken At(string text, double fraction)
    {
        var tokens = MemberTokens(text);
        return tokens[Math.Min(tokens.Count - 1, (int)(fraction * tokens.Count))];
    }

    private static List<SyntaxToken> MemberTokens(string text)
    {
        var root = CSharpSyntaxTree.ParseText(text).GetRoot();
        var tokens = root.DescendantTokens().Where(InsideMember).ToList();
        return tokens.Count > 0 ? tokens : root.DescendantTokens().ToList();
    }

    /// <summary>The text cut right after <paramref name="token"/> (everything after it lost).</summary>
    public static string Truncate(string text, SyntaxToken token) => text.Substring(0, token.Span.End);

    /// <summary>The text with the sampled token removed (a typo, a half-deleted line).</summary>
    public static string DeleteToken(string text, SyntaxToken token) => text.Remove(token.SpanStart, token.Span.Length);

    /// <summary>Where the token is, for failure messages: line, column and text.</summary>
    public static string Describe(SyntaxToken token)
    {
        var position = token.GetLocation().GetLineSpan().StartLinePosition;
        var shown = token.Text.Length > 40 ? token.Text.Substring(0, 40) + "..." : token.Text;
        return $"line {position.Line + 1}, column {position.Character + 1}, token '{shown}'";
    }

    private static bool InsideMember(SyntaxToken token)
    {
        if (token.IsKind(SyntaxKind.EndOfFileToken))
        {
            return false;
        }

        for (var node = token.Parent; node is not null; node = node.Parent)
        {
            switch (node)
            {
                case GlobalStatementSyntax:
                case BaseMethodDeclarationSyntax:
                case AccessorDeclarationSyntax:
                case ArrowExpressionClauseSyntax:
                case EqualsValueClauseSyntax:
                    return true;
                case BaseTypeDeclarationSyntax:
                case BaseNamespaceDeclarationSyntax:
                    return false;
            }
        }

        return false;
    }
}

/// <summary>Ways to make a correct program refer to what does not exist, as code does while it is being written or after an upgrade.</summary>
internal static class BrokenReferences
{
    /// <summary>Name and edit of each way; the edits rewrite text, so they reach every file alike.</summary>
    public static readonly ImmutableArray<(string Name, Func<string, string> Edit)> All = ImmutableArray.Create<(string, Func<string, string>)>(
        // An undefined type used as a module: fields, locals, parameters and base classes typed with it.
        ("undefined module type", text => Replace(
            Replace(text, @"\b(?:nn\.)?Module<Tensor, Tensor>", "UndefinedModule"),
            @"\b(Linear|Conv[123]d|BatchNorm[123]d|Sequential|Dropout|ReLU|Softmax|LogSoftmax|CrossEntropyLoss|NLLLoss|KLDivLoss|BCELoss)\b(?=\s+[A-Za-z_]\w*\s*[=;,)])",
            "Undefined$1")),
        // Nonexistent methods called on modules and optimizers.
        ("missing module members", text => Replace(text, @"\.(call|forward|train|eval|parameters|zero_grad|step|append|RegisterComponents)\(", ".$1_missing(")),
        // Nonexistent tensor methods, torch functions and layer factories.
        ("missing tensor members", text => Replace(
            Replace(text, @"\.(softmax|log_softmax|sigmoid|backward|argmax|view|permute|detach|item|log|sum|mean)\b", ".$1_missing"),
            @"\b(functional|nn|optim|torch)\.(\w+)\(", "$1.$2_missing(")),
        // TorchSharp's Tensor itself undefined (an older using set, a missing reference in one file).
        ("undefined tensor type", text => Replace(text, @"\bTensor\b", "UndefinedTensor")),
        // Locals declared dynamic: calls on them are bound at run time, with no method for the rules to look at.
        ("dynamic locals", text => Replace(text, @"\bvar\b", "dynamic")),
        // A using removed: the static imports of torch and nn.
        ("static usings removed", text => Replace(text, @"using static TorchSharp\.torch(\.nn)?;", "")));

    public static Func<string, string> Named(string name) => All.Single(m => m.Name == name).Edit;

    private static string Replace(string text, string pattern, string replacement)
        => System.Text.RegularExpressions.Regex.Replace(text, pattern, replacement);
}
