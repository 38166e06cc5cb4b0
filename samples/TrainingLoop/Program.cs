using System;
using TorchSharp;
using static TorchSharp.torch;

namespace TrainingLoopSample;

public static class Program
{
    public static void Main()
    {
        manual_seed(42);
        var (trainImages, trainLabels) = SyntheticDigits.Create(4096, seed: 1);
        var (testImages, testLabels) = SyntheticDigits.Create(1024, seed: 2);

        var model = new DigitClassifier();
        var optimizer = optim.Adam(model.parameters(), lr: 1e-3);
        var criterion = nn.CrossEntropyLoss();

        for (int epoch = 1; epoch <= 5; epoch++)
        {
            model.train();
            double totalLoss = 0;
            int batches = 0;
            foreach (var (images, labels) in SyntheticDigits.Batches(trainImages, trainLabels, batchSize: 64))
            {
                using var scope = NewDisposeScope();
                var logits = model.call(images);
                var loss = criterion.call(logits, labels);
                loss.backward();
                optimizer.step();

                totalLoss += loss.item<float>();
                batches++;
            }

            Console.WriteLine($"epoch {epoch}: training loss {totalLoss / batches:F4}, test accuracy {Accuracy(model, testImages, testLabels):P1}");
        }

        Console.WriteLine($"an untrained model scores {Baseline.UntrainedAccuracy(testImages, testLabels):P1}");

        // Correct code that looks like the bug: backward() in a loop with no optimizer step computes input
        // gradients (a saliency map) and must not be reported.
        foreach (var digit in new[] { 0, 1, 2 })
        {
            using var scope = NewDisposeScope();
            var image = testImages[digit].unsqueeze(0).detach().requires_grad_();
            model.eval();
            model.call(image).max().backward();
            Console.WriteLine($"saliency of test image {digit}: peak {image.grad!.abs().max().item<float>():F4}");
        }
    }

    private static double Accuracy(nn.Module<Tensor, Tensor> model, Tensor images, Tensor labels)
    {
        model.eval();
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        var predictions = model.call(images).argmax(1);
        return predictions.eq(labels).to_type(ScalarType.Float32).mean().item<float>();
    }
}
