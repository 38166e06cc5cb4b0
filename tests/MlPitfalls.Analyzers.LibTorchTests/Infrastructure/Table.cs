using System;
using System.Collections.Generic;
using System.Collections.Immutable;
using System.Linq;
using System.Threading.Tasks;
using Microsoft.CodeAnalysis;

namespace MlPitfalls.Analyzers.LibTorchTests.Infrastructure;

/// <summary>What the analyzers said about one case and what libtorch did with it.</summary>
internal sealed record Observation(ViewCase Case, ImmutableArray<Diagnostic> Diagnostics, Run Run)
{
    public bool Mlp009 => Diagnostics.Any(d => d.Id == "MLP009");

    public bool Mlp010 => Diagnostics.Any(d => d.Id == "MLP010");

    public override string ToString()
        => $"{Case.Name}: analyzers {(Diagnostics.IsEmpty ? "report nothing" : string.Join("; ", Diagnostics.Select(d => d.Id + " " + d.GetMessage())))}; libtorch {Run}\n{Case.Body}";
}

/// <summary>The whole table, compiled once (one class, a method per case), analyzed once and run once per case.</summary>
internal static class Table
{
    private static readonly Lazy<Task<IReadOnlyDictionary<string, Observation>>> Observed = new(ObserveAsync);

    public static string Source { get; } = Snippets.Source(ViewCases.All.Select(c => (c.Name, c.Body)));

    public static async Task<Observation> ObserveAsync(string name) => (await Observed.Value.ConfigureAwait(false))[name];

    private static async Task<IReadOnlyDictionary<string, Observation>> ObserveAsync()
    {
        var compilation = Snippets.Compile(Source, "ViewTable");
        var diagnostics = (await Snippets.AnalyzeAsync(compilation).ConfigureAwait(false))
            .Where(d => d.Id is "MLP009" or "MLP010")
            .ToLookup(d => Snippets.MethodOf(d) ?? "");
        var type = Snippets.Load(compilation);
        return ViewCases.All.ToDictionary(
            c => c.Name,
            c => new Observation(c, diagnostics[c.Name].ToImmutableArray(), Run.Of(type.GetMethod(c.Name)!, Run.Randn(c.Sizes), c.Heads)));
    }
}
