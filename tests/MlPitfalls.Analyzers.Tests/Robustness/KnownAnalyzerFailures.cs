using System;
using System.Collections.Immutable;

namespace MlPitfalls.Analyzers.Tests.Robustness;

/// <summary>
/// Analyzer crashes and hangs the sweep found and that are not fixed yet. The sweep skips exactly these cases, so the
/// rest of it stays green, and <see cref="CrashSafetyKnownFailureTests"/> keeps each one as a failing test of its own
/// until the analyzer is fixed; then delete the entry here and the test there.
/// </summary>
internal static class KnownAnalyzerFailures
{
    /// <summary>Cases by the name the sweep gives them (<see cref="CrashSafetySweepTests.Case"/>, <see cref="CrashSafetyProjectReferenceTests.Case"/>).</summary>
    public static readonly ImmutableHashSet<string> Cases = ImmutableHashSet.Create(
        StringComparer.Ordinal,
        // AD0001 "SyntaxTree is not part of the compilation": the rules follow a call into a method of the referenced
        // library's compilation and ask the application's compilation for a semantic model of the library's tree.
        // Minimal programs: CrashSafetyKnownFailureTests.KNOWN_CRASH_a_call_into_another_project_as_the_IDE_compiles_it.
        "samples/TrainingLoop, two projects as the IDE compiles it",
        "samples/TrainingLoop.Fixed, two projects as the IDE compiles it",
        "generated/TrainingCode (modules apart), two projects as the IDE compiles it");

    public static bool Skips(string sweepCase) => Cases.Contains(sweepCase);
}
