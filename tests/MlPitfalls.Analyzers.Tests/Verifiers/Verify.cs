using System.Threading;
using System.Threading.Tasks;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CodeFixes;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Testing;
using Microsoft.CodeAnalysis.Diagnostics;
using Microsoft.CodeAnalysis.Testing;

namespace MlPitfalls.Analyzers.Tests.Verifiers;

/// <summary>
/// Runs an analyzer (and its code fix) over test sources the way users compile them: against .NET 8 reference
/// assemblies and the real TorchSharp 0.107.0 assembly, with TorchSharp's usual usings already in place.
/// Everything is resolved from what restore brought (no download at test time).
/// </summary>
public static class Verify<TAnalyzer, TCodeFix>
    where TAnalyzer : DiagnosticAnalyzer, new()
    where TCodeFix : CodeFixProvider, new()
{
    /// <summary>The usings TorchSharp code starts with, prepended to every test source so tests show only what matters.</summary>
    public const string Usings = TorchSharpSources.Usings;

    /// <summary>
    /// An expected diagnostic. Additional locations are how analyzers hand spans to their fixers, not what users see,
    /// so they are left to the code-fix tests.
    /// </summary>
    public static DiagnosticResult Diagnostic(DiagnosticDescriptor descriptor)
        => new DiagnosticResult(descriptor).WithOptions(DiagnosticOptions.IgnoreAdditionalLocations);

    /// <summary>An expected diagnostic whose message is not compared (tests about where, not what it says).</summary>
    public static DiagnosticResult DiagnosticAnyMessage(DiagnosticDescriptor descriptor)
        => new DiagnosticResult(descriptor.Id, descriptor.DefaultSeverity).WithOptions(DiagnosticOptions.IgnoreAdditionalLocations);

    /// <summary>Expects exactly <paramref name="expected"/> on <paramref name="source"/>.</summary>
    public static Task AnalyzerAsync(string source, params DiagnosticResult[] expected)
        => AnalyzerAsync(source, LanguageVersion.Latest, expected);

    public static Task AnalyzerAsync(string source, LanguageVersion languageVersion, params DiagnosticResult[] expected)
    {
        var test = new Test(referenceTorchSharp: true, languageVersion) { TestCode = Usings + source };
        test.ExpectedDiagnostics.AddRange(expected);
        return test.RunAsync(CancellationToken.None);
    }

    /// <summary>Compiles <paramref name="source"/> without TorchSharp (with no TorchSharp usings added).</summary>
    public static Task AnalyzerWithoutTorchSharpAsync(string source, params DiagnosticResult[] expected)
    {
        var test = new Test(referenceTorchSharp: false, LanguageVersion.Latest) { TestCode = source };
        test.ExpectedDiagnostics.AddRange(expected);
        return test.RunAsync(CancellationToken.None);
    }

    /// <summary>Checks the diagnostics on <paramref name="source"/>, applies the fix (and fix-all), and compares with <paramref name="fixedSource"/>.</summary>
    public static Task CodeFixAsync(string source, string fixedSource, params DiagnosticResult[] expected)
        => CodeFixAsync(source, fixedSource, codeActionEquivalenceKey: null, expected);

    public static Task CodeFixAsync(string source, string fixedSource, string? codeActionEquivalenceKey, params DiagnosticResult[] expected)
    {
        var test = new Test(referenceTorchSharp: true, LanguageVersion.Latest)
        {
            TestCode = Usings + source,
            FixedCode = Usings + fixedSource,
            CodeActionEquivalenceKey = codeActionEquivalenceKey,
        };
        test.ExpectedDiagnostics.AddRange(expected);
        return test.RunAsync(CancellationToken.None);
    }

    /// <summary>Expects exactly <paramref name="expected"/> on <paramref name="source"/> and no code fix that changes it.</summary>
    public static Task NoCodeFixAsync(string source, params DiagnosticResult[] expected)
        => CodeFixAsync(source, source, expected);

    /// <summary>A test whose caller configures everything (several files, exact fix-all iterations, ...).</summary>
    public static Test Create(bool referenceTorchSharp = true) => new(referenceTorchSharp, LanguageVersion.Latest);

    public sealed class Test : CSharpCodeFixTest<TAnalyzer, TCodeFix, DefaultVerifier>
    {
        private static readonly MetadataReference TorchSharpReference =
            MetadataReference.CreateFromFile(typeof(TorchSharp.torch).Assembly.Location);

        public Test(bool referenceTorchSharp, LanguageVersion languageVersion)
        {
            ReferenceAssemblies = ReferenceAssemblies.Net.Net80;
            if (referenceTorchSharp)
            {
                TestState.AdditionalReferences.Add(TorchSharpReference);
                FixedState.AdditionalReferences.Add(TorchSharpReference);
            }

            SolutionTransforms.Add((solution, projectId) =>
            {
                var project = solution.GetProject(projectId)!;
                var parseOptions = ((CSharpParseOptions)project.ParseOptions!).WithLanguageVersion(languageVersion);
                return solution.WithProjectParseOptions(projectId, parseOptions);
            });
        }
    }
}
