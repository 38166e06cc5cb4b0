using System;
using System.Collections.Immutable;
using System.IO;
using System.Linq;
using System.Reflection;
using System.Reflection.Metadata;
using System.Reflection.PortableExecutable;
using System.Threading.Tasks;
using Microsoft.CodeAnalysis;
using Xunit;

namespace MlPitfalls.Analyzers.LatestRoslynTests;

/// <summary>
/// The analyzers, built against Roslyn 4.8, under the newest Roslyn: they load, every rule is there, and they report on
/// real programs exactly what they report in the main tests (MlPitfalls.Analyzers.Tests, on Roslyn 4.8), without throwing.
/// </summary>
public class NewestRoslynTests
{
    private static readonly string RepoRoot = typeof(NewestRoslynTests).Assembly
        .GetCustomAttributes<AssemblyMetadataAttribute>().Single(a => a.Key == "RepoRoot").Value!;

    [Fact]
    public void The_analyzers_were_built_against_Roslyn_4_8_and_run_here_under_a_newer_one()
    {
        using var pe = new PEReader(File.OpenRead(ShippedAnalyzers.AssemblyPath));
        var metadata = pe.GetMetadataReader();
        var builtAgainst = metadata.AssemblyReferences.Select(metadata.GetAssemblyReference)
            .Single(r => metadata.GetString(r.Name) == "Microsoft.CodeAnalysis").Version;
        var running = typeof(Compilation).Assembly.GetName().Version!;

        Assert.Equal(new Version(4, 8, 0, 0), builtAgainst);
        Assert.True(running > builtAgainst, $"Roslyn {running} is not newer than {builtAgainst}: raise the version in the project file.");
    }

    [Fact]
    public void Every_rule_loads_with_no_load_failure()
    {
        var (analyzers, failures) = ShippedAnalyzers.Load();

        Assert.Empty(failures);
        var ids = analyzers.SelectMany(a => a.SupportedDiagnostics).Select(d => d.Id).Distinct().Order();
        // Every rule has a page (MlPitfalls.Analyzers.Tests checks that against the descriptors).
        var documented = Directory.GetFiles(Path.Combine(RepoRoot, "docs", "rules"), "MLP*.md").Select(Path.GetFileNameWithoutExtension).Order();
        Assert.Equal(documented, ids);
    }

    [Fact]
    public async Task The_sample_raises_exactly_its_five_bugs()
    {
        var diagnostics = await ShippedAnalyzers.RunAsync(OutputKind.ConsoleApplication, Sample("TrainingLoop", "Program.cs", "DigitClassifier.cs", "Baseline.cs", "SyntheticDigits.cs"));

        // The same positions .ci/check-samples expects from `dotnet build samples/TrainingLoop`.
        Assert.Equal(
            ["Baseline.cs(15,27): MLP007", "DigitClassifier.cs(15,40): MLP005", "DigitClassifier.cs(36,44): MLP009", "Program.cs(28,43): MLP002", "Program.cs(29,17): MLP001"],
            Describe(diagnostics));
    }

    [Fact]
    public async Task The_fixed_sample_raises_nothing()
    {
        var sources = Sample("TrainingLoop.Fixed", "Program.cs", "DigitClassifier.cs", "Baseline.cs")
            .Concat(Sample("TrainingLoop", "SyntheticDigits.cs"))
            .ToArray();

        Assert.Empty(Describe(await ShippedAnalyzers.RunAsync(OutputKind.ConsoleApplication, sources)));
    }

    /// <summary>The rules the samples do not show, on the flagged examples of their rule pages.</summary>
    [Fact]
    public async Task The_other_rules_report_their_rule_pages_examples()
    {
        const string Program = """
            using System.Collections.Generic;
            using TorchSharp;
            using TorchSharp.Modules;
            using static TorchSharp.torch;
            using static TorchSharp.torch.nn;

            static class Examples
            {
                static Tensor LogitsIntoNllLoss(Tensor x, Tensor y)
                {
                    var classifier = nn.Sequential(nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10));
                    return functional.nll_loss(classifier.call(x), y);
                }

                static Tensor ProbabilitiesWithLogTarget(Module<Tensor, Tensor> student, Module<Tensor, Tensor> teacher, Tensor x)
                {
                    var kl = nn.KLDivLoss(reduction: Reduction.Sum);
                    return kl.call(student.call(x).log_softmax(1), teacher.call(x).softmax(1));
                }

                static Tensor HeadWithoutBias(Tensor x, Tensor y)
                {
                    var model = nn.Sequential(nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10, hasBias: false));
                    return functional.cross_entropy(model.call(x), y);
                }

                static void TrainedInEvalMode(Sequential model, IEnumerable<(Tensor x, Tensor y)> train, int epochs)
                {
                    var optimizer = optim.SGD(model.parameters(), 0.01);
                    var criterion = nn.CrossEntropyLoss();
                    model.train();
                    for (int epoch = 0; epoch < epochs; epoch++)
                    {
                        foreach (var (x, y) in train)
                        {
                            optimizer.zero_grad();
                            var loss = criterion.call(model.call(x), y);
                            loss.backward();
                            optimizer.step();
                        }

                        model.eval();
                    }
                }

                static Tensor FlattenChannelsLast(Tensor images)
                {
                    var (n, c, h, w) = (images.shape[0], images.shape[1], images.shape[2], images.shape[3]);
                    var nhwc = images.permute(0, 2, 3, 1);
                    return nhwc.view(n, -1);
                }
            }
            """;

        var diagnostics = await ShippedAnalyzers.RunAsync(OutputKind.DynamicallyLinkedLibrary, ("Examples.cs", Program));

        Assert.Equal(
            [
                "Examples.cs(12,36): MLP003",   // classifier.call(x): a layer's raw output into nll_loss
                "Examples.cs(18,16): MLP004",   // kl.call(...): a probability target while log_target is true by default
                "Examples.cs(23,67): MLP006",   // nn.Linear(128, 10, hasBias: false): the output layer
                "Examples.cs(37,43): MLP008",   // model.call(x): from the second epoch on, in eval mode
                "Examples.cs(50,21): MLP010",   // nhwc.view(n, -1): h, w and c no longer follow each other in memory
            ],
            Describe(diagnostics));
    }

    private static (string Path, string Text)[] Sample(string folder, params string[] files)
        => files.Select(file => (file, File.ReadAllText(Path.Combine(RepoRoot, "samples", folder, file)))).ToArray();

    /// <summary>"File(line,column): id" for each MLP diagnostic and analyzer exception (AD0001, with its message), sorted.</summary>
    private static string[] Describe(ImmutableArray<Diagnostic> diagnostics) => diagnostics
        .Where(d => d.Id.StartsWith("MLP", StringComparison.Ordinal) || d.Id == "AD0001")
        .Select(d =>
        {
            var start = d.Location.GetLineSpan().StartLinePosition;
            var where = $"{d.Location.GetLineSpan().Path}({start.Line + 1},{start.Character + 1})";
            return d.Id == "AD0001" ? $"{where}: AD0001 {d.GetMessage()}" : $"{where}: {d.Id}";
        })
        .Order(StringComparer.Ordinal)
        .ToArray();
}
