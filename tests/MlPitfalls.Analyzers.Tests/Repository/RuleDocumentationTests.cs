using System.Collections.Generic;
using System.Linq;
using System.Reflection;
using System.Text.RegularExpressions;
using Microsoft.CodeAnalysis;
using Xunit;

namespace MlPitfalls.Analyzers.Tests.Repository;

/// <summary>Every rule in the catalogue is documented the same way everywhere users meet it.</summary>
public class RuleDocumentationTests
{
    public static IEnumerable<object[]> Rules() => typeof(Descriptors)
        .GetFields(BindingFlags.Public | BindingFlags.Static)
        .Where(f => f.FieldType == typeof(DiagnosticDescriptor))
        .Select(f => new object[] { ((DiagnosticDescriptor)f.GetValue(null)!).Id });

    private static DiagnosticDescriptor Descriptor(string id) => typeof(Descriptors)
        .GetFields(BindingFlags.Public | BindingFlags.Static)
        .Select(f => f.GetValue(null)).OfType<DiagnosticDescriptor>()
        .Single(d => d.Id == id);

    [Fact]
    public void The_catalogue_is_not_empty_and_ids_are_unique_and_well_formed()
    {
        var ids = Rules().Select(r => (string)r[0]).ToList();
        Assert.NotEmpty(ids);
        Assert.Equal(ids.Count, ids.Distinct().Count());
        Assert.All(ids, id => Assert.Matches("^MLP[0-9]{3}$", id));
    }

    [Theory]
    [MemberData(nameof(Rules))]
    public void Help_link_points_to_the_rule_page_of_the_installed_release(string id)
    {
        // The page of the version the user has (its tag), not main's, which may already describe a changed rule.
        var version = typeof(Descriptors).Assembly.GetName().Version!;
        Assert.Equal($"https://github.com/mlpitfalls/mlpitfalls/blob/v{version.Major}.{version.Minor}.{version.Build}/docs/rules/{id}.md", Descriptor(id).HelpLinkUri);
        Assert.Equal($"{Descriptors.HelpLinkBase}{id}.md", Descriptor(id).HelpLinkUri);
    }

    [Theory]
    [MemberData(nameof(Rules))]
    public void Rule_page_exists_with_the_catalogue_title_severity_and_every_section(string id)
    {
        var descriptor = Descriptor(id);
        var page = RepositoryFiles.Read("docs", "rules", id + ".md");
        Assert.StartsWith($"# {id}: {descriptor.Title}", page);
        Assert.Contains($"| **Severity** | {descriptor.DefaultSeverity} |", page);
        Assert.Contains($"| **Category** | {descriptor.Category} |", page);
        foreach (var section in new[] { "## What it finds", "## Why it matters", "## Flagged", "## Correct (not flagged)", "## Code fix", "## Options", "## How to suppress" })
        {
            Assert.Contains(section, page);
        }
    }

    [Theory]
    [MemberData(nameof(Rules))]
    public void Readme_and_rules_index_list_the_rule_with_the_same_title_and_severity(string id)
    {
        var descriptor = Descriptor(id);
        var readmeRow = $"| [{id}](docs/rules/{id}.md) | {descriptor.Title} | {descriptor.DefaultSeverity} |";
        Assert.Contains(readmeRow, RepositoryFiles.Read("README.md"));
        var indexRow = $"| [{id}]({id}.md) | {descriptor.Title} | {descriptor.Category} | {descriptor.DefaultSeverity} |";
        Assert.Contains(indexRow, RepositoryFiles.Read("docs", "rules", "README.md"));
    }

    [Theory]
    [MemberData(nameof(Rules))]
    public void Release_tracking_lists_the_rule_with_its_category_and_severity(string id)
    {
        var descriptor = Descriptor(id);
        var tracked = RepositoryFiles.Read("src", "MlPitfalls.Analyzers", "AnalyzerReleases.Unshipped.md")
                      + RepositoryFiles.Read("src", "MlPitfalls.Analyzers", "AnalyzerReleases.Shipped.md");
        Assert.Matches(new Regex($@"^{id}\s*\|\s*{descriptor.Category}\s*\|\s*{descriptor.DefaultSeverity}\s*\|", RegexOptions.Multiline), tracked);
    }
}
