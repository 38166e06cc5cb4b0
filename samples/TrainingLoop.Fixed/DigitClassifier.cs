using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace TrainingLoopSample;

/// <summary>
/// A two-layer perceptron for 8x8 digit images, written as a custom module. It returns logits: the loss applies
/// log_softmax itself, and code that needs probabilities calls softmax on the output.
/// </summary>
public sealed class DigitClassifier : nn.Module<Tensor, Tensor>
{
    private readonly Linear hidden = nn.Linear(64, 128);
    private readonly ReLU activation = nn.ReLU();
    private readonly Dropout dropout = nn.Dropout(0.2);
    private readonly Linear output = nn.Linear(128, SyntheticDigits.Classes);

    public DigitClassifier() : base(nameof(DigitClassifier))
    {
        RegisterComponents();
    }

    public override Tensor forward(Tensor input)
        => output.call(dropout.call(activation.call(hidden.call(input))));
}
