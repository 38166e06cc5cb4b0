using System.Linq;
using System.Threading.Tasks;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using MlPitfalls.Analyzers.Tests.Repository;
using Xunit;

namespace MlPitfalls.Analyzers.Tests.AllRules;

/// <summary>Correct training programs, including every look-alike real code uses: no MlPitfalls analyzer may say anything.</summary>
public class CorrectProgramsTests
{
    private const string Classifier = """
        sealed class Classifier : Module<Tensor, Tensor>
        {
            private readonly Sequential body = nn.Sequential(("fc1", nn.Linear(784, 128)), ("relu", nn.ReLU()), ("drop", nn.Dropout(0.2)), ("fc2", nn.Linear(128, 10)));
            public Classifier() : base(nameof(Classifier)) { RegisterComponents(); }
            public override Tensor forward(Tensor x) => body.call(x);
            public Tensor Probabilities(Tensor x) => forward(x).softmax(1);
        }

        static class Program
        {
            static void Train(IEnumerable<(Tensor x, Tensor y)> batches, IEnumerable<(Tensor x, Tensor y)> validation)
            {
                var model = new Classifier();
                var teacher = new Classifier();
                var optimizer = optim.Adam(model.parameters());
                var criterion = nn.CrossEntropyLoss();
                var nll = nn.NLLLoss();
                for (int epoch = 0; epoch < 3; epoch++)
                {
                    model.train();
                    foreach (var (x, y) in batches)
                    {
                        using var scope = NewDisposeScope();
                        optimizer.zero_grad();
                        var logits = model.call(x);
                        var soft = teacher.call(x).softmax(1).detach();
                        var loss = criterion.call(logits, y)
                                 + nll.call(logits.log_softmax(1), y)
                                 + functional.cross_entropy(logits, soft)
                                 + functional.kl_div(logits.log_softmax(1), soft, log_target: false)
                                 + functional.kl_div(logits.log_softmax(1), soft.log())
                                 + functional.binary_cross_entropy(logits.sigmoid(), soft)
                                 + functional.binary_cross_entropy_with_logits(logits, soft);
                        var p = logits.sigmoid();
                        var dice = 1 - (2 * (p * soft).sum() + 1) / (p.sum() + soft.sum() + 1);
                        (loss + dice).backward();
                        optimizer.step();
                    }

                    model.eval();
                    using (torch.no_grad())
                    {
                        foreach (var (x, y) in validation)
                        {
                            var probs = model.Probabilities(x);
                            var accuracy = probs.argmax(1).eq(y).to_type(ScalarType.Float32).mean().item<float>();
                            var sampled = torch.multinomial(probs, 1);
                            var validationLoss = criterion.call(model.call(x), y).item<float>();
                        }
                    }
                }
            }
        }
        """;

    [Fact]
    public async Task The_fixed_sample_and_a_correct_training_program_raise_nothing()
    {
        var compilation = AllAnalyzers.Compile(
            LanguageVersion.Latest,
            addUsings: false,
            RepositoryFiles.Read("samples", "TrainingLoop.Fixed", "Program.cs"),
            RepositoryFiles.Read("samples", "TrainingLoop.Fixed", "DigitClassifier.cs"),
            RepositoryFiles.Read("samples", "TrainingLoop", "SyntheticDigits.cs"));
        Assert.Empty(compilation.GetDiagnostics().Where(d => d.Severity == DiagnosticSeverity.Error));
        Assert.Empty(await AllAnalyzers.RunAsync(compilation));

        var program = AllAnalyzers.Compile(LanguageVersion.Latest, addUsings: true, Classifier);
        Assert.Empty(program.GetDiagnostics().Where(d => d.Severity == DiagnosticSeverity.Error));
        Assert.Empty(await AllAnalyzers.RunAsync(program));
    }

    [Fact]
    public async Task The_sample_raises_exactly_its_two_bugs()
    {
        var compilation = AllAnalyzers.Compile(
            LanguageVersion.Latest,
            addUsings: false,
            RepositoryFiles.Read("samples", "TrainingLoop", "Program.cs"),
            RepositoryFiles.Read("samples", "TrainingLoop", "DigitClassifier.cs"),
            RepositoryFiles.Read("samples", "TrainingLoop", "SyntheticDigits.cs"));
        var reported = (await AllAnalyzers.RunAsync(compilation))
            .Select(d => $"{d.Id} {d.Location.GetLineSpan().StartLinePosition.Line + 1}")
            .OrderBy(d => d)
            .ToArray();
        Assert.Equal(new[] { "MLP001 29", "MLP002 28" }, reported);
    }
}
