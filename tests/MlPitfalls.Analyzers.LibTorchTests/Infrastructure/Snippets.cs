using System;
using System.Collections.Generic;
using System.Collections.Immutable;
using System.IO;
using System.Linq;
using System.Reflection;
using System.Runtime.Loader;
using System.Threading.Tasks;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using Microsoft.CodeAnalysis.Diagnostics;
using MlPitfalls.Analyzers.Infrastructure;

namespace MlPitfalls.Analyzers.LibTorchTests.Infrastructure;

/// <summary>
/// Snippets of TorchSharp code, each the body of <c>public static Tensor Name(Tensor x, long heads)</c> in one class: the
/// same source is analyzed (every MlPitfalls analyzer, as a build runs them) and compiled into an assembly that runs here.
/// </summary>
internal static class Snippets
{
    public const string ClassName = "Snippets";

    public const string Usings = """
        using System;
        using System.Linq;
        using TorchSharp;
        using static TorchSharp.torch;

        """;

    /// <summary>The running framework and the TorchSharp assembly this process loaded: what the snippets are analyzed and run against.</summary>
    public static readonly ImmutableArray<MetadataReference> References = ((string)AppContext.GetData("TRUSTED_PLATFORM_ASSEMBLIES")!)
        .Split(Path.PathSeparator)
        .Where(path => Path.GetDirectoryName(path) == Path.GetDirectoryName(typeof(object).Assembly.Location))
        .Select(path => (MetadataReference)MetadataReference.CreateFromFile(path))
        .Append(MetadataReference.CreateFromFile(typeof(TorchSharp.torch).Assembly.Location))
        .ToImmutableArray();

    public static readonly CSharpCompilationOptions Options = new(OutputKind.DynamicallyLinkedLibrary, optimizationLevel: OptimizationLevel.Release);

    /// <summary>One class with a method per (name, body).</summary>
    public static string Source(IEnumerable<(string Name, string Body)> methods)
        => Usings + "public static class " + ClassName + "\n{\n"
           + string.Join("\n", methods.Select(m => $"    public static Tensor {m.Name}(Tensor x, long heads)\n    {{\n{Indent(m.Body)}\n    }}\n"))
           + "}\n";

    private static string Indent(string body)
        => string.Join("\n", body.Replace("\r\n", "\n").Trim('\n').Split('\n').Select(line => "        " + line.Trim()));

    /// <summary>A compilation of <paramref name="source"/>; it must compile without errors.</summary>
    public static CSharpCompilation Compile(string source, string assemblyName)
    {
        var tree = CSharpSyntaxTree.ParseText(source, new CSharpParseOptions(LanguageVersion.Latest), path: assemblyName + ".cs");
        var compilation = CSharpCompilation.Create(assemblyName, new[] { tree }, References, Options);
        ThrowOnErrors(compilation);
        return compilation;
    }

    public static void ThrowOnErrors(Compilation compilation)
    {
        var errors = compilation.GetDiagnostics().Where(d => d.Severity == DiagnosticSeverity.Error).ToList();
        if (errors.Count > 0)
        {
            throw new InvalidOperationException("Snippet source does not compile:\n" + string.Join("\n", errors) + "\n" + compilation.SyntaxTrees.First());
        }
    }

    /// <summary>Every MlPitfalls analyzer (the analyzer assembly's concrete analyzers), as <c>AllAnalyzers</c> in the analyzer tests.</summary>
    public static readonly ImmutableArray<DiagnosticAnalyzer> Analyzers = typeof(TorchSharpAnalyzer).Assembly.GetTypes()
        .Where(t => typeof(DiagnosticAnalyzer).IsAssignableFrom(t) && !t.IsAbstract)
        .Select(t => (DiagnosticAnalyzer)Activator.CreateInstance(t)!)
        .ToImmutableArray();

    /// <summary>What the analyzers report; an analyzer exception (AD0001) fails the test.</summary>
    public static async Task<ImmutableArray<Diagnostic>> AnalyzeAsync(Compilation compilation)
    {
        var options = new CompilationWithAnalyzersOptions(
            new AnalyzerOptions(ImmutableArray<AdditionalText>.Empty), onAnalyzerException: null, concurrentAnalysis: true, logAnalyzerExecutionTime: false);
        var diagnostics = await compilation.WithAnalyzers(Analyzers, options).GetAnalyzerDiagnosticsAsync().ConfigureAwait(false);
        var crashes = diagnostics.Where(d => d.Id == "AD0001").ToList();
        if (crashes.Count > 0)
        {
            throw new InvalidOperationException("An analyzer threw:\n" + string.Join("\n", crashes));
        }

        return diagnostics;
    }

    /// <summary>The snippet method a diagnostic is in.</summary>
    public static string? MethodOf(Diagnostic diagnostic)
        => diagnostic.Location.SourceTree?.GetRoot().FindNode(diagnostic.Location.SourceSpan).FirstAncestorOrSelf<MethodDeclarationSyntax>()?.Identifier.ValueText;

    /// <summary>Emits the compilation and loads it into this process, where it binds to the TorchSharp already loaded.</summary>
    public static Type Load(Compilation compilation)
    {
        using var image = new MemoryStream();
        var result = compilation.Emit(image);
        if (!result.Success)
        {
            throw new InvalidOperationException("Emit failed:\n" + string.Join("\n", result.Diagnostics.Where(d => d.Severity == DiagnosticSeverity.Error)));
        }

        image.Position = 0;
        var assembly = AssemblyLoadContext.Default.LoadFromStream(image);
        return assembly.GetType(ClassName, throwOnError: true)!;
    }
}
