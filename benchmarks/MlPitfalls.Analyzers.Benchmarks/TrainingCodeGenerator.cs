using System.Text;

namespace MlPitfalls.Analyzers.Benchmarks;

/// <summary>
/// Generates TorchSharp training code of a realistic mix: per class, one correct loop, one loop missing zero_grad,
/// one loop reaching backward/step through a helper, and code without any loop. Known bug count, so the benchmark
/// can assert it measured real analysis.
/// </summary>
internal static class TrainingCodeGenerator
{
    public const int BugsPerClass = 2;

    public static string Generate(int classes)
    {
        var code = new StringBuilder("""
            using System;
            using System.Collections.Generic;
            using TorchSharp;
            using static TorchSharp.torch;

            """);
        for (int i = 0; i < classes; i++)
        {
            code.Append($$"""
                public sealed class Trainer{{i}}
                {
                    private readonly nn.Module<Tensor, Tensor> model = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 4));
                    private readonly optim.Optimizer optimizer;

                    public Trainer{{i}}() => optimizer = optim.Adam(model.parameters());

                    public void Correct(IEnumerable<(Tensor x, Tensor y)> batches)
                    {
                        foreach (var (x, y) in batches)
                        {
                            optimizer.zero_grad();
                            var loss = nn.functional.cross_entropy(model.call(x), y);
                            loss.backward();
                            optimizer.step();
                        }
                    }

                    public void Buggy(IEnumerable<(Tensor x, Tensor y)> batches)
                    {
                        for (int epoch = 0; epoch < 3; epoch++)
                        {
                            foreach (var (x, y) in batches)
                            {
                                var loss = nn.functional.cross_entropy(model.call(x), y);
                                loss.backward();
                                optimizer.step();
                            }
                        }
                    }

                    private void Step(Tensor x, Tensor y)
                    {
                        nn.functional.cross_entropy(model.call(x), y).backward();
                        optimizer.step();
                    }

                    public void ThroughHelper(IEnumerable<(Tensor x, Tensor y)> batches)
                    {
                        foreach (var (x, y) in batches)
                        {
                            Step(x, y);
                        }
                    }

                    public double Evaluate(Tensor x, Tensor y)
                    {
                        using var _ = no_grad();
                        var total = 0.0;
                        for (int i = 0; i < 10; i++)
                        {
                            total += model.call(x).argmax(1).eq(y).sum().ToDouble();
                        }

                        return total;
                    }
                }

                """);
        }

        return code.ToString();
    }
}
