using System;
using System.Collections.Generic;
using System.Collections.Immutable;
using System.IO;
using System.Linq;
using System.Text.RegularExpressions;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using MlPitfalls.Analyzers.Benchmarks;
using MlPitfalls.Analyzers.Tests.Repository;
using MlPitfalls.Analyzers.Tests.Verifiers;

namespace MlPitfalls.Analyzers.Tests.Robustness;

/// <summary>
/// The programs the crash-safety sweep analyses: the samples, the benchmarks' generated training code, and every C#
/// source the analyzer tests are written with (their raw string literals, read from the test files themselves, so a new
/// test's source joins the sweep without being listed).
/// </summary>
internal static class SweepCorpus
{
    /// <summary>The samples and the generated code: realistic TorchSharp programs, cut densely.</summary>
    public static readonly Lazy<ImmutableArray<SweepProgram>> Realistic = new(() => ImmutableArray.Create(
        Sample("TrainingLoop"),
        Sample("TrainingLoop.Fixed"),
        // Uses MlPitfalls.Runtime, which is not referenced here: its types are error types throughout.
        Sample("RuntimeChecks"),
        Generated("generated/TrainingCode", TrainingCodeGenerator.Generate(1)),
        Generated("generated/LongMethod", LongMethodGenerator.Generate(200)),
        Generated("generated/PlainCode", PlainCodeGenerator.Generate(1))));

    /// <summary>
    /// Programs written as a model library and a training application (<c>Program.cs</c>): the two-file samples, and the
    /// generated training code with its modules moved to a file of their own.
    /// </summary>
    public static readonly Lazy<ImmutableArray<SweepProgram>> TwoProjects = new(() => ImmutableArray.Create(
        Realistic.Value.Single(p => p.Name == "samples/TrainingLoop"),
        Realistic.Value.Single(p => p.Name == "samples/TrainingLoop.Fixed"),
        SplitModules("generated/TrainingCode (modules apart)", TrainingCodeGenerator.Generate(1).Source)));

    /// <summary>Every distinct C# source written in the analyzer tests, named by its test file and line.</summary>
    public static readonly Lazy<ImmutableArray<SweepProgram>> TestSourceList = new(() => ReadTestSources().ToImmutableArray());

    private static readonly Lazy<ImmutableDictionary<string, SweepProgram>> Programs = new(() =>
        Realistic.Value.Concat(TwoProjects.Value).Concat(TestSourceList.Value).Distinct().ToImmutableDictionary(p => p.Name));

    public static SweepProgram Get(string name) => Programs.Value[name];

    /// <summary>A sample project: its own .cs files and those its project file links in (<c>&lt;Compile Include="..\x.cs"/&gt;</c>).</summary>
    private static SweepProgram Sample(string project)
    {
        var directory = RepositoryFiles.Path("samples", project);
        var linked = Regex.Matches(File.ReadAllText(Path.Combine(directory, project + ".csproj")), @"<Compile\s+Include=""([^""]+\.cs)""")
            .Select(m => Path.GetFullPath(Path.Combine(directory, m.Groups[1].Value.Replace('\\', '/'))));
        var files = Directory.GetFiles(directory, "*.cs")
            .Concat(linked)
            .OrderBy(f => Path.GetFileName(f), StringComparer.Ordinal)
            .Select(f => (Path.GetFileName(f), File.ReadAllText(f)))
            .ToList();
        return new SweepProgram("samples/" + project, files, OutputKind.ConsoleApplication);
    }

    private static SweepProgram Generated(string name, GeneratedCode code) => new(name, new[] { (name.Substring(name.IndexOf('/') + 1) + ".cs", code.Source) });

    /// <summary>The classes that derive from a module in <c>Models.cs</c>, the rest in <c>Program.cs</c>, each with the usings.</summary>
    private static SweepProgram SplitModules(string name, string source)
    {
        var root = (CompilationUnitSyntax)CSharpSyntaxTree.ParseText(source).GetRoot();
        var usings = string.Concat(root.Usings.Select(u => u.ToFullString()));
        bool IsModule(MemberDeclarationSyntax member) => member is ClassDeclarationSyntax { BaseList: { } bases } && bases.ToString().Contains("Module<", StringComparison.Ordinal);
        string Of(bool modules) => usings + string.Concat(root.Members.Where(m => IsModule(m) == modules).Select(m => m.ToFullString()));
        return new SweepProgram(name, new[] { ("Models.cs", Of(modules: true)), ("Program.cs", Of(modules: false)) });
    }

    // Markup of Microsoft.CodeAnalysis.Testing ({|#0:...|}, {|MLP001:...|}, [|...|]), not C#: removed before compiling.
    private static readonly Regex Markup = new(@"\{\|[^:{}|\s]+:|\|\}|\[\||\|\]", RegexOptions.Compiled);

    private static IEnumerable<SweepProgram> ReadTestSources()
    {
        var testsRoot = RepositoryFiles.Path("tests", "MlPitfalls.Analyzers.Tests");
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var names = new HashSet<string>(StringComparer.Ordinal);
        var files = Directory.GetFiles(testsRoot, "*.cs", SearchOption.AllDirectories)
            .Select(f => Path.GetRelativePath(testsRoot, f).Replace('\\', '/'))
            // Build output, and this sweep's own stress programs (analysed on their own, by the stress tests).
            .Where(f => !f.StartsWith("bin/", StringComparison.Ordinal) && !f.StartsWith("obj/", StringComparison.Ordinal) && !f.StartsWith("Robustness/", StringComparison.Ordinal))
            .OrderBy(f => f, StringComparer.Ordinal);
        foreach (var file in files)
        {
            var tree = CSharpSyntaxTree.ParseText(File.ReadAllText(Path.Combine(testsRoot, file)));
            foreach (var literal in tree.GetRoot().DescendantNodes().OfType<LiteralExpressionSyntax>())
            {
                if (!literal.IsKind(SyntaxKind.StringLiteralExpression) || !LooksLikeCSharp(literal.Token.ValueText))
                {
                    continue;
                }

                var text = Markup.Replace(literal.Token.ValueText, "");
                if (!HasUsings(text))
                {
                    // Test sources leave out the usings every TorchSharp file starts with; the verifiers add them.
                    text = TorchSharpSources.Usings + text;
                }

                if (seen.Add(text))
                {
                    // Named by line, and by column too when one line starts two sources.
                    var start = literal.GetLocation().GetLineSpan().StartLinePosition;
                    var name = $"tests/{file}:{start.Line + 1}";
                    if (!names.Add(name))
                    {
                        name += $":{start.Character + 1}";
                        names.Add(name);
                    }

                    var kind = HasTopLevelStatements(text) ? OutputKind.ConsoleApplication : OutputKind.DynamicallyLinkedLibrary;
                    yield return new SweepProgram(name, new[] { ("Test.cs", text) }, kind);
                }
            }
        }
    }

    /// <summary>A program or a member, not a message, a rule id or a fragment of an argument list.</summary>
    private static bool LooksLikeCSharp(string text)
        => text.Length >= 40 && (text.Contains(';') || text.Contains('{')) && (text.Contains("class ") || text.Contains("void ") || text.Contains("Tensor") || text.Contains("var "));

    /// <summary>True when the source starts (after comments) with a using directive: a whole file, compiled as written.</summary>
    private static bool HasUsings(string text) => Regex.IsMatch(text, @"\A\s*(//[^\n]*\n\s*)*(global\s+)?using\s+(static\s+)?[A-Za-z_][\w.]*\s*(=\s*[\w.<>]+\s*)?;");

    private static bool HasTopLevelStatements(string text)
        => CSharpSyntaxTree.ParseText(text).GetRoot().ChildNodes().OfType<GlobalStatementSyntax>().Any();
}
