using System.Collections.Immutable;
using System.Text;

namespace MlPitfalls.Analyzers.Benchmarks;

/// <summary>
/// Generates ordinary C# of about the same size per class as <see cref="TrainingCodeGenerator"/>, compiled without
/// TorchSharp: loops, LINQ, lambdas, branches, exceptions, and the user's own types and methods named like TorchSharp's
/// (<c>CrossEntropyLoss.call</c>, <c>softmax</c>, <c>zero_grad</c>, <c>step</c>). Without TorchSharp the analyzers register no
/// action at all, so their cost here must be about zero and they must report nothing.
/// </summary>
internal static class PlainCodeGenerator
{
    private const string Usings = """
        using System;
        using System.Collections.Generic;
        using System.Linq;
        using System.Text;

        """;

    public static GeneratedCode Generate(int classes)
    {
        var code = new StringBuilder(Usings);
        for (int i = 0; i < classes; i++)
        {
            AppendUnit(code, i);
        }

        return new GeneratedCode(code.ToString(), referencesTorchSharp: false, ImmutableDictionary<string, int>.Empty);
    }

    /// <summary>The same code as <see cref="Generate"/>, one unit per file.</summary>
    public static GeneratedCode GenerateFiles(int files)
        => GeneratedCode.PerFile(files, Usings, AppendUnit, referencesTorchSharp: false, ImmutableDictionary<string, int>.Empty);

    private static void AppendUnit(StringBuilder code, int i)
        => code.Append($$"""
                public sealed class CrossEntropyLoss{{i}}
                {
                    public double call(double[] input, int target) => -Math.Log(Math.Max(1e-12, input[target]));
                }

                public sealed class Optimizer{{i}}
                {
                    private readonly double[] weights;
                    private readonly double[] grads;

                    public Optimizer{{i}}(int size)
                    {
                        weights = new double[size];
                        grads = new double[size];
                    }

                    public void zero_grad() => Array.Clear(grads, 0, grads.Length);

                    public void step(double learningRate)
                    {
                        for (int k = 0; k < weights.Length; k++)
                        {
                            weights[k] -= learningRate * grads[k];
                        }
                    }

                    public void Accumulate(int k, double value) => grads[k] += value;
                }

                public static class Numerics{{i}}
                {
                    public static double[] softmax(double[] values)
                    {
                        var max = values.Max();
                        var exps = values.Select(v => Math.Exp(v - max)).ToArray();
                        var sum = exps.Sum();
                        return exps.Select(e => e / sum).ToArray();
                    }

                    public static double[] log_softmax(double[] values) => softmax(values).Select(v => Math.Log(v)).ToArray();

                    public static double kl_div(double[] p, double[] q)
                    {
                        double total = 0;
                        for (int k = 0; k < p.Length; k++)
                        {
                            if (p[k] > 0)
                            {
                                total += p[k] * Math.Log(p[k] / Math.Max(1e-12, q[k]));
                            }
                        }

                        return total;
                    }
                }

                public sealed class Report{{i}}
                {
                    private readonly Dictionary<string, List<double>> series = new Dictionary<string, List<double>>();

                    public void Add(string name, double value)
                    {
                        if (!series.TryGetValue(name, out var values))
                        {
                            values = new List<double>();
                            series[name] = values;
                        }

                        values.Add(value);
                    }

                    public string Format(int window)
                    {
                        var text = new StringBuilder();
                        foreach (var pair in series.OrderBy(p => p.Key, StringComparer.Ordinal))
                        {
                            var recent = pair.Value.Skip(Math.Max(0, pair.Value.Count - window)).ToList();
                            var mean = recent.Count == 0 ? 0 : recent.Average();
                            text.Append(pair.Key).Append(": ").Append(mean.ToString("F4")).AppendLine();
                        }

                        return text.ToString();
                    }
                }

                public sealed class Job{{i}}
                {
                    private readonly CrossEntropyLoss{{i}} criterion = new CrossEntropyLoss{{i}}();
                    private readonly Optimizer{{i}} optimizer = new Optimizer{{i}}(16);
                    private readonly Report{{i}} report = new Report{{i}}();

                    public double Run(IReadOnlyList<(double[] x, int y)> batches, int epochs)
                    {
                        var best = double.MaxValue;
                        for (int epoch = 0; epoch < epochs; epoch++)
                        {
                            double total = 0;
                            foreach (var (x, y) in batches)
                            {
                                var probs = Numerics{{i}}.softmax(x);
                                var loss = criterion.call(probs, y);
                                optimizer.Accumulate(y % 16, loss);
                                optimizer.step(0.01);
                                total += loss;
                            }

                            report.Add("loss", total / Math.Max(1, batches.Count));
                            if (total < best)
                            {
                                best = total;
                            }
                            else if (epoch > 10 && total > best * 1.5)
                            {
                                break;
                            }
                        }

                        return best;
                    }

                    public int Parse(string text)
                    {
                        var count = 0;
                        foreach (var line in text.Split('\n'))
                        {
                            var trimmed = line.Trim();
                            if (trimmed.Length == 0 || trimmed.StartsWith("#", StringComparison.Ordinal))
                            {
                                continue;
                            }

                            try
                            {
                                var parts = trimmed.Split('=');
                                switch (parts[0])
                                {
                                    case "epochs":
                                        count += int.Parse(parts[1]);
                                        break;
                                    case "lr":
                                        count += (int)(double.Parse(parts[1]) * 1000);
                                        break;
                                    default:
                                        report.Add(parts[0], parts.Length);
                                        break;
                                }
                            }
                            catch (FormatException)
                            {
                                count--;
                            }
                        }

                        return count;
                    }

                    public double Distance(double[] p, double[] q) => Numerics{{i}}.kl_div(Numerics{{i}}.softmax(p), Numerics{{i}}.softmax(q));
                }

                """);
}
