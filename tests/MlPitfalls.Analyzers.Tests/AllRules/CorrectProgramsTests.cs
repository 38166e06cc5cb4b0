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

    /// <summary>Correct architectures: biases off before BatchNorm, normalization first, LayerNorm after biased layers, bias-free heads by design.</summary>
    private const string Architectures = """
        sealed class ResidualBlock : Module<Tensor, Tensor>
        {
            private readonly Conv2d conv1 = nn.Conv2d(64, 64, 3, padding: 1, bias: false);
            private readonly BatchNorm2d bn1 = nn.BatchNorm2d(64);
            private readonly Conv2d conv2 = nn.Conv2d(64, 64, 3, padding: 1, bias: false);
            private readonly BatchNorm2d bn2 = nn.BatchNorm2d(64);
            public ResidualBlock() : base(nameof(ResidualBlock)) { RegisterComponents(); }
            public override Tensor forward(Tensor x)
            {
                var h = functional.relu(bn1.call(conv1.call(x)));
                h = bn2.call(conv2.call(h));
                return functional.relu(h + x);
            }
        }

        sealed class PreActivationBlock : Module<Tensor, Tensor>
        {
            private readonly BatchNorm2d bn = nn.BatchNorm2d(64);
            private readonly Conv2d conv = nn.Conv2d(64, 64, 3, padding: 1);
            public PreActivationBlock() : base(nameof(PreActivationBlock)) { RegisterComponents(); }
            public override Tensor forward(Tensor x) => x + conv.call(functional.relu(bn.call(x)));
        }

        sealed class TransformerBlock : Module<Tensor, Tensor>
        {
            private readonly LayerNorm norm1 = nn.LayerNorm(256);
            private readonly Linear up = nn.Linear(256, 1024);
            private readonly Linear down = nn.Linear(1024, 256);
            private readonly LayerNorm norm2 = nn.LayerNorm(256);
            public TransformerBlock() : base(nameof(TransformerBlock)) { RegisterComponents(); }
            public override Tensor forward(Tensor x)
            {
                var h = x + down.call(functional.gelu(up.call(norm1.call(x))));
                return norm2.call(h);
            }
        }

        static class Backbones
        {
            public static Module<Tensor, Tensor> Stem(bool useBatchNorm) => nn.Sequential(
                ("conv", nn.Conv2d(3, 64, 7, stride: 2, padding: 3, bias: !useBatchNorm)), ("bn", nn.BatchNorm2d(64)), ("relu", nn.ReLU()));
            public static Module<Tensor, Tensor> Mlp() => nn.Sequential(
                nn.Linear(784, 256, hasBias: false), nn.BatchNorm1d(256), nn.ReLU(), nn.Linear(256, 128), nn.LayerNorm(128), nn.ReLU(),
                nn.Conv1d(1, 8, 3), nn.ReLU(), nn.BatchNorm1d(8), nn.Conv2d(3, 8, 3), nn.GroupNorm(2, 8), nn.Linear(128, 10));
        }

        // Bias-free output layers by design: a language-model head, and a head right after a normalization.
        sealed class TinyLanguageModel : Module<Tensor, Tensor>
        {
            private readonly Embedding embed = nn.Embedding(1000, 64);
            private readonly LayerNorm norm = nn.LayerNorm(64);
            private readonly Linear head = nn.Linear(64, 1000, hasBias: false);
            public TinyLanguageModel() : base(nameof(TinyLanguageModel)) { RegisterComponents(); }
            public override Tensor forward(Tensor tokens) => head.call(norm.call(embed.call(tokens)));
        }

        static class HeadLosses
        {
            public static Tensor LanguageModelLoss(TinyLanguageModel model, Tensor tokens, Tensor targets)
                => functional.cross_entropy(model.call(tokens).view(-1, 1000), targets.view(-1));

            public static Tensor NormalizedHeadLoss(Tensor x, Tensor y)
            {
                var model = nn.Sequential(nn.Linear(784, 128), nn.LayerNorm(128), nn.Linear(128, 10, hasBias: false));
                return functional.cross_entropy(model.call(x), y);
            }
        }
        """;

    /// <summary>Correct mode switching, including the look-alikes of MLP007 and MLP008.</summary>
    /// <summary>Layout code real models write: attention split and merge, CNN flattens, image conversions, buffers.</summary>
    private const string Layouts = """
        sealed class CausalSelfAttention : Module<Tensor, Tensor>
        {
            private readonly Linear qkv = nn.Linear(64, 192);
            private readonly Linear proj = nn.Linear(64, 64);
            private readonly long heads = 4;
            public CausalSelfAttention() : base(nameof(CausalSelfAttention)) { RegisterComponents(); }
            public override Tensor forward(Tensor x)
            {
                var (B, T, C) = (x.shape[0], x.shape[1], x.shape[2]);
                var parts = qkv.call(x).split(C, 2);
                var q = parts[0].view(B, T, heads, C / heads).transpose(1, 2);
                var k = parts[1].view(B, T, heads, C / heads).transpose(1, 2);
                var v = parts[2].view(B, T, heads, C / heads).transpose(1, 2);
                var att = torch.matmul(q, k.transpose(-2, -1)) * (1.0 / System.Math.Sqrt(C / heads));
                var y = torch.matmul(att.softmax(-1), v);
                var merged = y.transpose(1, 2).contiguous().view(B, T, C);
                var viaReshape = y.transpose(1, 2).reshape(B, T, C);
                var fused = functional.scaled_dot_product_attention(q, k, v).transpose(1, 2).view(B, T, C);
                return proj.call(merged + viaReshape + fused);
            }
        }

        static class Images
        {
            public static Tensor ToChannelsLast(Tensor images) => images.permute(0, 2, 3, 1);
            public static Tensor ToTokens(Tensor maps)
            {
                var (n, c, h, w) = (maps.shape[0], maps.shape[1], maps.shape[2], maps.shape[3]);
                var tokens = maps.flatten(2).transpose(1, 2);
                var back = tokens.transpose(1, 2).view(n, c, h, w);
                var split = tokens.view(n, h, w, c);
                return maps.view(n, -1) + maps.view(n, c, h * w).sum() + maps.reshape(n * c, h, w).sum() + back.sum() + split.sum();
            }
            public static Tensor FromPixels(byte[] rgb, long height, long width)
                => torch.tensor(rgb).view(height, width, 3).permute(2, 0, 1).to_type(ScalarType.Float32) / 255;
            public static Tensor Square(Tensor x) => x.view(x.size(0), 1, x.size(2), x.size(2));
        }
        """;

    private const string EpochLoops = """
        sealed class RegularizedNet : Module<Tensor, Tensor>
        {
            private readonly Linear fc1 = nn.Linear(784, 128, hasBias: false);
            private readonly BatchNorm1d norm = nn.BatchNorm1d(128);
            private readonly Dropout dropout = nn.Dropout(0.3);
            private readonly Linear fc2 = nn.Linear(128, 10);
            public RegularizedNet() : base(nameof(RegularizedNet)) { RegisterComponents(); }
            public override Tensor forward(Tensor x) => fc2.call(dropout.call(functional.relu(norm.call(fc1.call(x)))));
        }

        static class EpochLoops
        {
            public static void Fit(IReadOnlyList<(Tensor x, Tensor y)> train, IReadOnlyList<(Tensor x, Tensor y)> valid, int epochs)
            {
                var model = new RegularizedNet();
                var optimizer = optim.Adam(model.parameters());
                for (int epoch = 0; epoch < epochs; epoch++)
                {
                    model.train();
                    foreach (var (x, y) in train)
                    {
                        optimizer.zero_grad();
                        functional.cross_entropy(model.call(x), y).backward();
                        optimizer.step();
                    }

                    model.eval();
                    using (torch.no_grad())
                    {
                        long correct = 0;
                        foreach (var (x, y) in valid)
                        {
                            correct += model.call(x).argmax(1).eq(y).sum().item<long>();
                        }

                        Console.WriteLine(correct);
                    }
                }

                // Monte-Carlo dropout: training mode on purpose while sampling.
                model.train();
                using (torch.no_grad())
                {
                    for (int sample = 0; sample < 10; sample++)
                    {
                        Console.WriteLine(model.call(valid[0].x).softmax(1).max().item<float>());
                    }
                }
            }

            public static void Distill(RegularizedNet teacher, IReadOnlyList<(Tensor x, Tensor y)> train)
            {
                var student = new RegularizedNet();
                var optimizer = optim.Adam(student.parameters());
                teacher.eval();
                student.train();
                foreach (var (x, y) in train)
                {
                    optimizer.zero_grad();
                    Tensor soft;
                    using (torch.no_grad())
                    {
                        soft = teacher.call(x).softmax(1);
                    }

                    functional.cross_entropy(student.call(x), soft).backward();
                    optimizer.step();
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
            RepositoryFiles.Read("samples", "TrainingLoop", "SyntheticDigits.cs"),
            RepositoryFiles.Read("samples", "TrainingLoop.Fixed", "Baseline.cs"));
        Assert.Empty(compilation.GetDiagnostics().Where(d => d.Severity == DiagnosticSeverity.Error));
        Assert.Empty(await AllAnalyzers.RunAsync(compilation));

        var program = AllAnalyzers.Compile(LanguageVersion.Latest, addUsings: true, Classifier, Architectures, Layouts, EpochLoops);
        Assert.Empty(program.GetDiagnostics().Where(d => d.Severity == DiagnosticSeverity.Error));
        Assert.Empty(await AllAnalyzers.RunAsync(program));
    }

    [Fact]
    public async Task The_sample_raises_exactly_its_five_bugs()
    {
        var compilation = AllAnalyzers.Compile(
            LanguageVersion.Latest,
            addUsings: false,
            RepositoryFiles.Read("samples", "TrainingLoop", "Program.cs"),
            RepositoryFiles.Read("samples", "TrainingLoop", "DigitClassifier.cs"),
            RepositoryFiles.Read("samples", "TrainingLoop", "SyntheticDigits.cs"),
            RepositoryFiles.Read("samples", "TrainingLoop", "Baseline.cs"));
        var reported = (await AllAnalyzers.RunAsync(compilation))
            .Select(d => $"{d.Id} {System.IO.Path.GetFileName(d.Location.GetLineSpan().Path)} {d.Location.GetLineSpan().StartLinePosition.Line + 1}")
            .OrderBy(d => d)
            .ToArray();
        Assert.Equal(new[] { "MLP001 File0.cs 29", "MLP002 File0.cs 28", "MLP005 File1.cs 15", "MLP007 File3.cs 15", "MLP009 File1.cs 36" }, reported);
    }
}
