using System;
using System.Collections.Generic;
using System.Linq;
using System.Threading.Tasks;
using Microsoft.CodeAnalysis;
using Xunit;

namespace MlPitfalls.Analyzers.Tests.Robustness;

/// <summary>
/// Crash safety on programs of extreme shape (<see cref="StressPrograms"/>): thousands of lines in one method, 200 nested
/// blocks, a 2,000-layer Sequential, recursion, generics, partial classes, iterators, local functions and async code.
/// Each must be analysed within <see cref="Bound"/>, enforced by a timeout rather than a timed assertion.
/// </summary>
public class CrashSafetyStressTests
{
    /// <summary>Generous: a bound on runaway analysis, not a performance target (docs/performance.md has those).</summary>
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(60);

    public static IEnumerable<object[]> Programs() => StressPrograms.Names.Select(n => new object[] { n });

    [Theory]
    [MemberData(nameof(Programs))]
    public async Task A_program_of_extreme_shape_is_analysed_without_an_analyzer_exception_within_the_bound(string name)
    {
        var diagnostics = await CrashSafety.AssertAnalyzedAsync(StressPrograms.Get(name).Compile(), name, Bound, withCompilerDiagnostics: true);
        // Broken code would only exercise the rules' error paths: a stress program must compile, so the rules do their full work on it.
        var errors = diagnostics.Where(d => d.Severity == DiagnosticSeverity.Error).Take(5).ToList();
        Assert.True(errors.Count == 0, $"{name} does not compile:{Environment.NewLine}{string.Join(Environment.NewLine, errors)}");
    }
}
