using System;
using System.Collections.Immutable;
using System.Linq;
using System.Reflection;
using System.Threading;
using System.Threading.Tasks;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.Diagnostics;
using MlPitfalls.Analyzers.Tests.AllRules;
using Xunit;
using Xunit.Sdk;

namespace MlPitfalls.Analyzers.Tests.Robustness;

/// <summary>The sweep's own machinery: it must see a crash, stop a hang, and run every rule, or a green sweep means nothing.</summary>
public class CrashSafetyHarnessTests
{
    private static readonly CSharpCompilation Program = CrashSafety.Compile(new[] { ("Test.cs", "class C { void M() { } }") });

    [Fact]
    public async Task An_analyzer_exception_under_concurrent_execution_fails_the_check_and_names_the_exception()
    {
        var failure = await Assert.ThrowsAsync<XunitException>(
            () => CrashSafety.AssertAnalyzedAsync(Program, ImmutableArray.Create<DiagnosticAnalyzer>(new ThrowingAnalyzer()), "a test program"));
        Assert.Contains("AD0001", failure.Message, StringComparison.Ordinal);
        Assert.Contains(nameof(ThrowingAnalyzer.Planted), failure.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_analysis_that_does_not_end_fails_the_check_at_the_timeout_instead_of_hanging()
    {
        var failure = await Assert.ThrowsAsync<XunitException>(() => CrashSafety.AssertAnalyzedAsync(
            Program, ImmutableArray.Create<DiagnosticAnalyzer>(new HangingAnalyzer()), "a test program", TimeSpan.FromSeconds(1)));
        Assert.Contains("did not finish within", failure.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void The_sweep_runs_an_analyzer_for_every_rule_in_the_catalogue()
    {
        var catalogue = typeof(Descriptors).GetFields(BindingFlags.Public | BindingFlags.Static)
            .Where(f => f.FieldType == typeof(DiagnosticDescriptor))
            .Select(f => ((DiagnosticDescriptor)f.GetValue(null)!).Id);
        var swept = AllAnalyzers.Create().SelectMany(a => a.SupportedDiagnostics).Select(d => d.Id).ToHashSet();
        Assert.NotEmpty(catalogue);
        Assert.All(catalogue, id => Assert.Contains(id, swept));
    }

#pragma warning disable RS1001, RS2008 // Test doubles, handed to the driver directly: never loaded by a compiler, never shipped.
    private sealed class ThrowingAnalyzer : DiagnosticAnalyzer
    {
        private static readonly DiagnosticDescriptor Rule = new("TEST001", "Test", "Test", "Test", DiagnosticSeverity.Warning, isEnabledByDefault: true);

        public override ImmutableArray<DiagnosticDescriptor> SupportedDiagnostics => ImmutableArray.Create(Rule);

        public override void Initialize(AnalysisContext context)
        {
            context.EnableConcurrentExecution();
            context.ConfigureGeneratedCodeAnalysis(GeneratedCodeAnalysisFlags.None);
            context.RegisterOperationBlockAction(_ => Planted());
        }

        public static void Planted() => throw new InvalidOperationException("planted");
    }

    private sealed class HangingAnalyzer : DiagnosticAnalyzer
    {
        private static readonly DiagnosticDescriptor Rule = new("TEST002", "Test", "Test", "Test", DiagnosticSeverity.Warning, isEnabledByDefault: true);

        public override ImmutableArray<DiagnosticDescriptor> SupportedDiagnostics => ImmutableArray.Create(Rule);

        public override void Initialize(AnalysisContext context)
        {
            context.EnableConcurrentExecution();
            context.ConfigureGeneratedCodeAnalysis(GeneratedCodeAnalysisFlags.None);
            // Ends only when cancelled (at most after a minute), so the test leaves no thread behind.
            context.RegisterOperationBlockAction(c => c.CancellationToken.WaitHandle.WaitOne(TimeSpan.FromMinutes(1)));
        }
    }
#pragma warning restore RS1001, RS2008
}
