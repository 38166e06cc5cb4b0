using System.Collections.Generic;
using TorchSharp;
using static TorchSharp.torch;

namespace TrainingLoopSample;

/// <summary>
/// A stand-in for a digits dataset that needs no download: each class is a random 8x8 prototype plus noise,
/// so a working training loop reaches high accuracy within a few epochs and a broken one visibly does not.
/// </summary>
public static class SyntheticDigits
{
    public const int Classes = 10;

    public static (Tensor Images, Tensor Labels) Create(int count, long seed)
    {
        // The class prototypes are the same for every split (fixed seed); labels and noise differ per split.
        var prototypes = rand(new long[] { Classes, 64 }, generator: new Generator(7));
        var generator = new Generator((ulong)seed);
        var labels = randint(Classes, new long[] { count }, generator: generator);
        var images = prototypes.index_select(0, labels) + 0.35 * randn(new long[] { count, 64 }, generator: generator);
        return (images, labels);
    }

    public static IEnumerable<(Tensor Images, Tensor Labels)> Batches(Tensor images, Tensor labels, int batchSize)
    {
        var order = randperm(images.shape[0]);
        for (long start = 0; start < images.shape[0]; start += batchSize)
        {
            var indices = order.narrow(0, start, System.Math.Min(batchSize, images.shape[0] - start));
            yield return (images.index_select(0, indices), labels.index_select(0, indices));
        }
    }
}
