using System;
using System.Collections.Immutable;
using System.IO;
using System.Linq;
using System.Reflection;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Diagnostics;

namespace MlPitfalls.Analyzers.Benchmarks;

/// <summary>Analyzer packages other than MlPitfalls, measured on the same code for context.</summary>
internal static class OtherAnalyzers
{
    /// <summary>
    /// Every C# analyzer of Meziantou.Analyzer (the build for this process's Roslyn, copied next to the benchmarks by the
    /// project file), new instances.
    /// </summary>
    public static ImmutableArray<DiagnosticAnalyzer> Meziantou()
    {
        var path = Path.Combine(AppContext.BaseDirectory, "Meziantou", "Meziantou.Analyzer.dll");
        if (!File.Exists(path))
        {
            throw new InvalidOperationException($"Meziantou.Analyzer is not at {path}: build the benchmarks project (it copies the analyzer there).");
        }

        return Assembly.LoadFrom(path).GetTypes()
            .Where(t => !t.IsAbstract && typeof(DiagnosticAnalyzer).IsAssignableFrom(t)
                        && t.GetCustomAttributes<DiagnosticAnalyzerAttribute>().Any(a => a.Languages.Contains(LanguageNames.CSharp)))
            .OrderBy(t => t.FullName, StringComparer.Ordinal)
            .Select(t => (DiagnosticAnalyzer)Activator.CreateInstance(t)!)
            .ToImmutableArray();
    }
}
