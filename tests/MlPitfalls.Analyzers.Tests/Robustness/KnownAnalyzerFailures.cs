using System;
using System.Collections.Immutable;

namespace MlPitfalls.Analyzers.Tests.Robustness;

/// <summary>
/// Analyzer crashes and hangs the sweep found and that are not fixed yet. The sweep skips exactly these cases, so the
/// rest of it stays green; each one also gets a failing test of its own (as CrashSafetyCrossProjectTests began) until the
/// analyzer is fixed; then delete the entry here.
/// </summary>
internal static class KnownAnalyzerFailures
{
    /// <summary>Cases by the name the sweep gives them (<see cref="CrashSafetySweepTests.Case"/>, <see cref="CrashSafetyProjectReferenceTests.Case"/>).</summary>
    /// <remarks>
    /// Empty: the one crash the sweep found (AD0001 "SyntaxTree is not part of the compilation" on a call into another
    /// project as the IDE compiles it) is fixed, and CrashSafetyCrossProjectTests keeps its minimal programs.
    /// </remarks>
    public static readonly ImmutableHashSet<string> Cases = ImmutableHashSet<string>.Empty.WithComparer(StringComparer.Ordinal);

    public static bool Skips(string sweepCase) => Cases.Contains(sweepCase);
}
