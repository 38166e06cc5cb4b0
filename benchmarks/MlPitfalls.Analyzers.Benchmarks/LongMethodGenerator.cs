using System.Collections.Immutable;
using System.Text;

namespace MlPitfalls.Analyzers.Benchmarks;

/// <summary>
/// Generates one training method of about <c>lines</c> lines: a sequence of sections, each an epoch loop around a batch
/// loop with branches, an inner loop, a switch and several loss calls, and one MLP002 and one MLP003 bug after the batch
/// loop. The whole method is one body, hence one control-flow graph for the dataflow rules: the analysis time should
/// grow about linearly with the number of sections.
/// </summary>
internal static class LongMethodGenerator
{
    public static readonly ImmutableDictionary<string, int> ExpectedPerSection = ImmutableDictionary.CreateRange(new[]
    {
        new System.Collections.Generic.KeyValuePair<string, int>("MLP002", 1),
        new System.Collections.Generic.KeyValuePair<string, int>("MLP003", 1),
    });

    private const string Header = """
        public sealed class LongTrainer
        {
            private readonly Module<Tensor, Tensor> model = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 4));
            private readonly CrossEntropyLoss criterion = nn.CrossEntropyLoss();
            private readonly optim.Optimizer optimizer;

            public LongTrainer() => optimizer = optim.SGD(model.parameters(), 0.01);

            public double Train(IReadOnlyList<(Tensor x, Tensor y)> batches, int epochs, bool warmup, int mode)
            {
                var total = 0.0;

        """;

    private const string Footer = """
                return total;
            }
        }

        """;

    /// <summary>One section; <c>{0}</c> is the section number.</summary>
    private const string Section = """
                // section {0}
                for (int epoch = 0; epoch < epochs; epoch++)
                {
                    foreach (var (x, y) in batches)
                    {
                        optimizer.zero_grad();
                        var logits = model.call(x);
                        Tensor logProbs;
                        if (warmup && epoch < {0} % 3)
                        {
                            logProbs = logits.log_softmax(1);
                        }
                        else
                        {
                            logProbs = functional.log_softmax(logits / 2.0, 1);
                        }

                        var loss = functional.nll_loss(logProbs, y) + criterion.call(logits, y);
                        for (int j = 0; j < 3; j++)
                        {
                            if (j == mode)
                            {
                                loss = loss + 0.01 * functional.kl_div(logProbs, logits.softmax(1), log_target: false);
                            }
                        }

                        loss.backward();
                        optimizer.step();
                        total += loss.item<float>();
                    }

                    switch (mode)
                    {
                        case 0:
                            total *= 0.5;
                            break;
                        case 1:
                            total += epoch;
                            break;
                        default:
                            total -= {0};
                            break;
                    }

                    var probs = model.call(batches[0].x).softmax(1); // MLP002
                    var check = functional.cross_entropy(probs, batches[0].y)
                              + functional.nll_loss(model.call(batches[0].x), batches[0].y); // MLP003
                    total += check.item<float>();
                    if (total > 1e6)
                    {
                        break;
                    }
                }

        """;

    public static GeneratedCode Generate(int lines)
    {
        var code = new StringBuilder(TrainingCodeGenerator.Usings).Append(Header);
        var fixedLines = CountLines(TrainingCodeGenerator.Usings) + CountLines(Header) + CountLines(Footer);
        var sections = System.Math.Max(1, (lines - fixedLines + (CountLines(Section) / 2)) / CountLines(Section));
        for (int k = 0; k < sections; k++)
        {
            code.Append(Section.Replace("{0}", k.ToString(System.Globalization.CultureInfo.InvariantCulture)));
        }

        code.Append(Footer);
        return new GeneratedCode(code.ToString(), referencesTorchSharp: true, GeneratedCode.Times(ExpectedPerSection, sections));
    }

    private static int CountLines(string text)
    {
        var count = 0;
        foreach (var c in text)
        {
            if (c == '\n')
            {
                count++;
            }
        }

        return count;
    }
}
