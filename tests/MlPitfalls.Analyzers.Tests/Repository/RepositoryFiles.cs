using System;
using System.IO;
using System.Linq;
using System.Reflection;

namespace MlPitfalls.Analyzers.Tests.Repository;

/// <summary>Files of the repository the tests were built from (rule pages, README, samples).</summary>
internal static class RepositoryFiles
{
    public static string Root { get; } = typeof(RepositoryFiles).Assembly
        .GetCustomAttributes<AssemblyMetadataAttribute>()
        .Single(a => a.Key == "RepoRoot").Value
        ?? throw new InvalidOperationException("The test assembly does not record the repository root.");

    public static string Path(params string[] parts) => System.IO.Path.Combine(new[] { Root }.Concat(parts).ToArray());

    public static string Read(params string[] parts) => File.ReadAllText(Path(parts));
}
