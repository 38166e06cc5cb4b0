using System;
using System.Collections.Generic;
using System.Collections.Immutable;
using System.Diagnostics;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.Diagnostics;
using MlPitfalls.Analyzers.Tests.AllRules;
using MlPitfalls.Analyzers.Tests.Infrastructure;
using Xunit.Sdk;

namespace MlPitfalls.Analyzers.Tests.Robustness;

/// <summary>
/// Runs every MlPitfalls analyzer over a compilation the way a build does (concurrent execution on) and fails when one
/// throws (the driver turns the exception into AD0001) or when the analysis does not end within a time bound: a hang must
/// fail the test, not stall CI.
/// </summary>
internal static class CrashSafety
{
    /// <summary>
    /// The bound on one compilation's analysis. Generous on purpose: tests run in parallel on a shared two-core machine,
    /// and the point is to catch a hang or a runaway analysis, not to time the fast path.
    /// </summary>
    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);

    /// <summary>A compilation of <paramref name="files"/> (path, text), errors allowed, as a build would make it.</summary>
    public static CSharpCompilation Compile(
        IEnumerable<(string Path, string Text)> files, LanguageVersion version = LanguageVersion.Latest, bool referenceTorchSharp = true,
        OutputKind outputKind = OutputKind.DynamicallyLinkedLibrary, IEnumerable<MetadataReference>? extraReferences = null)
    {
        var options = new CSharpParseOptions(version);
        var trees = files.Select(f => CSharpSyntaxTree.ParseText(f.Text, options, path: f.Path));
        IEnumerable<MetadataReference> references = referenceTorchSharp ? TestCompilation.Platform.Append(TestCompilation.TorchSharp) : TestCompilation.Platform;
        if (extraReferences is not null)
        {
            references = references.Concat(extraReferences);
        }

        return CSharpCompilation.Create(
            "Sweep", trees, references, new CSharpCompilationOptions(outputKind, nullableContextOptions: NullableContextOptions.Enable));
    }

    /// <summary>
    /// <paramref name="compilation"/> emitted and read back as a metadata reference: how a command-line build sees a
    /// referenced project or package (the IDE hands a project's compilation itself, <see cref="Compilation.ToMetadataReference"/>).
    /// </summary>
    public static MetadataReference EmitToImage(Compilation compilation)
    {
        using var image = new System.IO.MemoryStream();
        var emitted = compilation.Emit(image);
        if (!emitted.Success)
        {
            throw new InvalidOperationException($"{compilation.AssemblyName} does not emit: " + string.Join(Environment.NewLine, emitted.Diagnostics));
        }

        return MetadataReference.CreateFromImage(image.ToArray());
    }

    /// <summary>
    /// Analyses <paramref name="compilation"/> with every analyzer and fails, saying <paramref name="what"/> was analysed,
    /// on an analyzer exception or when the analysis takes longer than <paramref name="timeout"/> (default <see cref="Timeout"/>).
    /// </summary>
    /// <param name="withCompilerDiagnostics">Also return the compiler's diagnostics, computed in the same pass as a build does.</param>
    public static async Task<ImmutableArray<Diagnostic>> AssertAnalyzedAsync(
        Compilation compilation, string what, TimeSpan? timeout = null, bool withCompilerDiagnostics = false)
        => await AssertAnalyzedAsync(compilation, AllAnalyzers.Create(), what, timeout, withCompilerDiagnostics).ConfigureAwait(false);

    public static async Task<ImmutableArray<Diagnostic>> AssertAnalyzedAsync(
        Compilation compilation, ImmutableArray<DiagnosticAnalyzer> analyzers, string what, TimeSpan? timeout = null, bool withCompilerDiagnostics = false)
    {
        var bound = timeout ?? Timeout;
        var (diagnostics, elapsed) = await RunAsync(compilation, analyzers, bound, withCompilerDiagnostics).ConfigureAwait(false);
        if (diagnostics is not { } finished)
        {
            throw new XunitException($"The analysis of {what} did not finish within {bound.TotalSeconds:0} s (an analyzer hangs or runs away).");
        }

        var failures = finished.Where(d => d.Id == "AD0001").ToList();
        if (failures.Count > 0)
        {
            throw new XunitException(
                $"An analyzer threw (AD0001) on {what} after {elapsed.TotalSeconds:0.0} s:{Environment.NewLine}"
                + string.Join(Environment.NewLine + Environment.NewLine, failures.Select(Describe)));
        }

        return finished;
    }

    /// <summary>
    /// The diagnostics of every analyzer with concurrent execution on, or null when the analysis did not end within
    /// <paramref name="timeout"/> (it is then cancelled; an analyzer that ignores cancellation keeps its thread).
    /// </summary>
    public static async Task<(ImmutableArray<Diagnostic>? Diagnostics, TimeSpan Elapsed)> RunAsync(
        Compilation compilation, ImmutableArray<DiagnosticAnalyzer> analyzers, TimeSpan timeout, bool withCompilerDiagnostics = false)
    {
        var options = new CompilationWithAnalyzersOptions(
            new AnalyzerOptions(ImmutableArray<AdditionalText>.Empty), onAnalyzerException: null, concurrentAnalysis: true, logAnalyzerExecutionTime: false);
        using var cancellation = new CancellationTokenSource();
        var stopwatch = Stopwatch.StartNew();
        // Task.Run: the driver does synchronous work before its first await, which must not run past the bound either.
        var analysis = Task.Run(() => withCompilerDiagnostics
            ? compilation.WithAnalyzers(analyzers, options).GetAllDiagnosticsAsync(cancellation.Token)
            : compilation.WithAnalyzers(analyzers, options).GetAnalyzerDiagnosticsAsync(cancellation.Token));
        var first = await Task.WhenAny(analysis, Task.Delay(timeout)).ConfigureAwait(false);
        if (first != analysis)
        {
            cancellation.Cancel();
            // Observe the cancelled (or still running) task's outcome so it is never an unobserved exception.
            _ = analysis.ContinueWith(t => t.Exception, TaskScheduler.Default);
            return (null, stopwatch.Elapsed);
        }

        return (await analysis.ConfigureAwait(false), stopwatch.Elapsed);
    }

    /// <summary>An AD0001 diagnostic with the whole exception (its message holds the stack trace).</summary>
    private static string Describe(Diagnostic diagnostic)
    {
        var text = diagnostic.GetMessage();
        return text.Length > 4000 ? text.Substring(0, 4000) + " ..." : text;
    }
}
