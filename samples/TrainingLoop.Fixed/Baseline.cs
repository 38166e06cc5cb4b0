using TorchSharp;
using static TorchSharp.torch;

namespace TrainingLoopSample;

/// <summary>Karpathy's "verify loss @ init" check: what an untrained model scores, the floor training must beat.</summary>
public static class Baseline
{
    public static double UntrainedAccuracy(Tensor images, Tensor labels)
    {
        manual_seed(7);
        var model = new DigitClassifier();
        model.eval();
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        var predictions = model.call(images).argmax(1);
        return predictions.eq(labels).to_type(ScalarType.Float32).mean().item<float>();
    }
}
