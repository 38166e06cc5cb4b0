using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Linq;

namespace MlPitfalls.Runtime.Benchmarks
{
    /// <summary>
    /// A drift-resistant cross-check of <see cref="TrainingStepBenchmarks"/>: the variants take turns step by step (rotating
    /// the order every round), so a change in machine load affects all of them equally. Reports median and mean per step.
    /// Run with <c>dotnet run -c Release -- --interleaved [rounds]</c>.
    /// </summary>
    internal static class Interleaved
    {
        public static void Run(int rounds)
        {
            var b = new TrainingStepBenchmarks();
            b.Setup();
            var variants = new (string Name, Func<float> Step)[]
            {
                ("step", () => b.TrainStep(b.Plain.Model, b.Plain.Optimizer, null)),
                ("step + NaN guard every step", () => b.TrainStep(b.Every.Model, b.Every.Optimizer, b.GuardEvery)),
                ("step + NaN guard every 100th step", () => b.TrainStep(b.Sampled.Model, b.Sampled.Optimizer, b.GuardSampled)),
                ("step + NaN guard every step, read back per module", () => b.TrainStep(b.PerModule.Model, b.PerModule.Optimizer, b.GuardPerModule)),
            };
            var times = variants.Select(_ => new List<double>()).ToArray();
            for (int w = 0; w < 5; w++) foreach (var v in variants) v.Step();

            for (int r = 0; r < rounds; r++)
            {
                for (int k = 0; k < variants.Length; k++)
                {
                    int i = (k + r) % variants.Length;
                    var sw = Stopwatch.StartNew();
                    variants[i].Step();
                    times[i].Add(sw.Elapsed.TotalMilliseconds);
                }
            }
            // The measurement must not be able to measure nothing: the guards saw every step, and the every-step guard really checks.
            long expectedSteps = 5 + rounds;
            if (b.GuardEvery.Step != expectedSteps || b.GuardSampled.Step != expectedSteps || b.GuardPerModule.Step != expectedSteps)
            {
                throw new InvalidOperationException($"Guards counted {b.GuardEvery.Step}/{b.GuardSampled.Step}/{b.GuardPerModule.Step} steps, expected {expectedSteps}.");
            }
            foreach (var (model, optimizer, guard) in new[] { (b.Every.Model, b.Every.Optimizer, b.GuardEvery), (b.PerModule.Model, b.PerModule.Optimizer, b.GuardPerModule) })
            {
                bool caught = false;
                try
                {
                    b.TrainStepWithNaNInput(model, optimizer, guard);
                }
                catch (MlPitfalls.Runtime.NonFinite.NonFiniteValueException)
                {
                    caught = true;
                }
                if (!caught) throw new InvalidOperationException("An every-step guard did not catch a NaN input: the measurement is not measuring the guard.");
            }
            b.Cleanup();

            double baseMedian = Median(times[0]);
            Console.WriteLine($"Interleaved: {rounds} rounds, batch {TrainingStepBenchmarks.Batch}, 1 intra-op thread");
            Console.WriteLine($"| Variant | Median (ms) | Mean (ms) | Median overhead |");
            Console.WriteLine($"|---|---:|---:|---:|");
            for (int i = 0; i < variants.Length; i++)
            {
                double median = Median(times[i]);
                Console.WriteLine(FormattableString.Invariant($"| {variants[i].Name} | {median:0.00} | {times[i].Average():0.00} | {(median / baseMedian - 1) * 100:+0.0;-0.0}% |"));
            }
        }

        private static double Median(List<double> xs)
        {
            var s = xs.OrderBy(x => x).ToList();
            return s.Count % 2 == 1 ? s[s.Count / 2] : (s[s.Count / 2 - 1] + s[s.Count / 2]) / 2;
        }
    }
}
