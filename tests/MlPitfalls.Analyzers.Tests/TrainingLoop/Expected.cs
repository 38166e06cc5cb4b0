using Microsoft.CodeAnalysis.Testing;
using Verifier = MlPitfalls.Analyzers.Tests.Verifiers.Verify<
    MlPitfalls.Analyzers.TrainingLoop.GradientsNotClearedAnalyzer,
    MlPitfalls.CodeFixes.TrainingLoop.GradientsNotClearedCodeFix>;

namespace MlPitfalls.Analyzers.Tests.TrainingLoop;

/// <summary>The MLP001 diagnostics the TrainingLoop tests expect.</summary>
internal static class Expected
{
    /// <summary>MLP001 at markup location <paramref name="location"/>, message not compared.</summary>
    public static DiagnosticResult MLP001(int location = 0)
        => Verifier.DiagnosticAnyMessage(Descriptors.MLP001_GradientsNotCleared).WithLocation(location);

    /// <summary>MLP001 at markup location 0 with exactly this message.</summary>
    public static DiagnosticResult MLP001(string optimizer, string explanation)
        => Verifier.Diagnostic(Descriptors.MLP001_GradientsNotCleared).WithLocation(0).WithArguments(optimizer, explanation);
}
