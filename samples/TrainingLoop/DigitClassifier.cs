using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace TrainingLoopSample;

/// <summary>
/// A small convolutional classifier for 8x8 digit images, written as a custom module. Its last layer is a softmax, so
/// that "the model outputs probabilities" — a newcomer's mistake: the training loss applies log_softmax again (MLP002).
/// Its convolution keeps its default bias although batch normalization follows, which cancels it (MLP005). It moves
/// the channels last with view, which regroups the data instead of moving it (MLP009).
/// </summary>
public sealed class DigitClassifier : nn.Module<Tensor, Tensor>
{
    private readonly Conv2d features = nn.Conv2d(1, 8, 3, padding: 1);
    private readonly BatchNorm2d normalize = nn.BatchNorm2d(8);
    private readonly LayerNorm perPosition = nn.LayerNorm(8);
    private readonly Linear hidden = nn.Linear(8 * 64, 128);
    private readonly ReLU activation = nn.ReLU();
    private readonly Dropout dropout = nn.Dropout(0.2);
    private readonly Linear output = nn.Linear(128, SyntheticDigits.Classes);
    private readonly Softmax probabilities = nn.Softmax(1);

    public DigitClassifier() : base(nameof(DigitClassifier))
    {
        RegisterComponents();
    }

    public override Tensor forward(Tensor input)
    {
        var image = input.view(-1, 1, 8, 8);
        var maps = activation.call(normalize.call(features.call(image)));
        var (n, c, h, w) = (maps.shape[0], maps.shape[1], maps.shape[2], maps.shape[3]);
        // channels last for LayerNorm, which normalizes the last dimension: view does not move the
        // channels there, it regroups the same memory (MLP009)
        var mapped = perPosition.call(maps.view(n, h, w, c)).flatten(1);
        return probabilities.call(output.call(dropout.call(activation.call(hidden.call(mapped)))));
    }
}
