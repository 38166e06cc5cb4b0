using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace TrainingLoopSample;

/// <summary>
/// A small convolutional classifier for 8x8 digit images, written as a custom module. It returns logits: the loss
/// applies log_softmax itself, and code that needs probabilities calls softmax on the output. Its convolution has no
/// bias: the batch normalization after it subtracts each channel's mean, which would cancel one. It moves the channels
/// last with permute.
/// </summary>
public sealed class DigitClassifier : nn.Module<Tensor, Tensor>
{
    private readonly Conv2d features = nn.Conv2d(1, 8, 3, padding: 1, bias: false);
    private readonly BatchNorm2d normalize = nn.BatchNorm2d(8);
    private readonly LayerNorm perPosition = nn.LayerNorm(8);
    private readonly Linear hidden = nn.Linear(8 * 64, 128);
    private readonly ReLU activation = nn.ReLU();
    private readonly Dropout dropout = nn.Dropout(0.2);
    private readonly Linear output = nn.Linear(128, SyntheticDigits.Classes);

    public DigitClassifier() : base(nameof(DigitClassifier))
    {
        RegisterComponents();
    }

    public override Tensor forward(Tensor input)
    {
        var image = input.view(-1, 1, 8, 8);
        var maps = activation.call(normalize.call(features.call(image)));
        var (n, c, h, w) = (maps.shape[0], maps.shape[1], maps.shape[2], maps.shape[3]);
        // channels last for LayerNorm, which normalizes the last dimension: permute moves the channels there
        var mapped = perPosition.call(maps.permute(0, 2, 3, 1)).flatten(1);
        return output.call(dropout.call(activation.call(hidden.call(mapped))));
    }
}
