using Microsoft.CodeAnalysis;

namespace MlPitfalls.Analyzers;

/// <summary>The catalogue of every MlPitfalls rule. Each rule is created here, through <see cref="Create"/>, and nowhere else.</summary>
public static class Descriptors
{
    /// <summary>Where rule pages live; the help link of rule MLPnnn is this plus <c>MLPnnn.md</c>.</summary>
    public const string HelpLinkBase = "https://github.com/mlpitfalls/mlpitfalls/blob/" + ReleaseTag.Name + "/docs/rules/";

    /// <summary>
    /// MLP001: a training loop runs backward() and an optimizer step each iteration without clearing the gradients
    /// (or clears them after backward(), erasing what the step should apply).
    /// </summary>
    public static readonly DiagnosticDescriptor MLP001_GradientsNotCleared = Create(
        id: "MLP001",
        title: "Gradients are not cleared between optimizer steps",
        messageFormat: "Gradients of '{0}' are not cleared between steps: {1}",
        category: Categories.TrainingLoop,
        severity: DiagnosticSeverity.Warning,
        description:
            "TorchSharp adds each backward() into the existing .grad of every parameter. A loop that calls backward() and " +
            "optimizer.step() every iteration must clear the gradients once per iteration, before backward() " +
            "(optimizer.zero_grad() or module.zero_grad()); otherwise every step applies the sum of all gradients so far. " +
            "Clearing between backward() and step() is just as wrong: the step then applies zeroed gradients.");

    /// <summary>MLP002: a loss that applies softmax/sigmoid itself is given the output of that activation.</summary>
    public static readonly DiagnosticDescriptor MLP002_LogitsLossGivenProbabilities = Create(
        id: "MLP002",
        title: "A loss that expects logits receives probabilities",
        messageFormat: "{0} feeds {1}, which expects raw logits: {2}",
        category: Categories.LossPairing,
        severity: DiagnosticSeverity.Warning,
        description:
            "CrossEntropyLoss applies log_softmax to its input and BCEWithLogitsLoss applies sigmoid. Given a softmax or sigmoid " +
            "output, they compute the activation twice: the loss still decreases, but gradients shrink as predictions grow " +
            "confident and the model trains slowly or plateaus. Pass the logits and apply the activation only where " +
            "probabilities are needed (accuracy, sampling, inference).");

    /// <summary>MLP003: a loss that expects (log-)probabilities is given something else.</summary>
    public static readonly DiagnosticDescriptor MLP003_ProbabilityLossGivenWrongInput = Create(
        id: "MLP003",
        title: "A loss that expects (log-)probabilities receives something else",
        messageFormat: "{0} feeds {1}, which expects {2}",
        category: Categories.LossPairing,
        severity: DiagnosticSeverity.Warning,
        description:
            "NLLLoss and KLDivLoss expect log-probabilities (log_softmax), BCELoss expects probabilities (sigmoid). Given " +
            "softmax probabilities, NLLLoss and KLDivLoss compute a different quantity that trains badly; given raw logits, " +
            "NLLLoss can go negative without bound and BCELoss fails. Apply the activation the loss expects, or use the loss " +
            "that takes logits (cross_entropy, binary_cross_entropy_with_logits).");

    /// <summary>MLP004: a probability-space target passed to KL divergence that reads its target in log space.</summary>
    public static readonly DiagnosticDescriptor MLP004_KLDivTargetNotInLogSpace = Create(
        id: "MLP004",
        title: "KLDivLoss target is probabilities while log_target is true",
        messageFormat: "The target of {0} is {1}, but log_target is {2}: the target is read as log-probabilities and the divergence is wrong; pass log_target: false",
        category: Categories.LossPairing,
        severity: DiagnosticSeverity.Warning,
        description:
            "TorchSharp's kl_div and nn.KLDivLoss default to log_target = true, while PyTorch defaults to false. Code ported " +
            "from PyTorch that passes probabilities (a softmax) as the target then computes a wrong divergence without any " +
            "error. Pass log_target: false for a probability target, or pass log-probabilities.");

    /// <summary>MLP005: a layer's bias is cancelled by the batch (or instance) normalization its output goes into.</summary>
    public static readonly DiagnosticDescriptor MLP005_BiasBeforeNormalization = Create(
        id: "MLP005",
        title: "A layer's bias is cancelled by the normalization that follows it",
        messageFormat: "{0} has a bias, but its output goes straight into {1}, which subtracts each channel's mean and cancels it: the bias never trains and only costs parameters, optimizer state and compute; create the layer with {2}: false",
        category: Categories.Architecture,
        severity: DiagnosticSeverity.Warning,
        description:
            "BatchNorm subtracts each channel's mean over the batch, and InstanceNorm each sample's channel mean over the " +
            "positions. A bias added by the linear or convolution layer right before is the same for every element of a " +
            "channel, so it is subtracted away exactly: its gradient is zero, it never changes from its initial value, and " +
            "it wastes parameters, optimizer state and compute in every such pair. Create the layer without a bias " +
            "(bias: false for convolutions, hasBias: false for Linear); the normalization's own shift (affine) takes its place.");

    /// <summary>MLP006: the layer whose output a loss takes as logits was created without a bias.</summary>
    public static readonly DiagnosticDescriptor MLP006_OutputLayerWithoutBias = Create(
        id: "MLP006",
        title: "The output layer has no bias",
        messageFormat: "{0} is the model's output layer (its output feeds {1} as logits), but it is created with {2}: false: the outputs cannot shift as a whole, so the model cannot learn the class prior with a per-class offset; remove '{2}: false'",
        category: Categories.Architecture,
        severity: DiagnosticSeverity.Info,
        description:
            "The last layer of a classifier produces the logits a loss reads. Its bias is what lets each output shift on its " +
            "own: a class that is rare starts with a low logit and the model learns that offset in a few steps. Without it " +
            "the offset must come from the weights and the inputs, which trains slower and can cost accuracy. Disabling the " +
            "bias is right before a normalization (MLP005), and language-model heads whose weights are shared with the " +
            "embedding are conventionally bias-free; neither is reported.");

    /// <summary>MLP007: a module is run for evaluation while it is certainly still in training mode.</summary>
    public static readonly DiagnosticDescriptor MLP007_EvaluatedInTrainingMode = Create(
        id: "MLP007",
        title: "A model is evaluated in training mode",
        messageFormat: "'{0}' is evaluated in training mode ({1}): dropout stays active and batch normalization uses and updates batch statistics; call '{0}.eval()' before evaluating",
        category: Categories.TrainEvalMode,
        severity: DiagnosticSeverity.Warning,
        description:
            "A module starts in training mode and stays there until eval() or train(false). Evaluated in training mode, " +
            "dropout keeps zeroing activations at random and batch normalization normalizes with the statistics of the " +
            "evaluation batch (and updates its running statistics with them), so validation accuracy is noisy and lower " +
            "than the model's, and early stopping and model selection decide on wrong numbers. no_grad() does not change " +
            "this: it turns off gradient recording, not the mode.");

    /// <summary>MLP008: a module is trained while it is certainly in evaluation mode.</summary>
    public static readonly DiagnosticDescriptor MLP008_TrainedInEvaluationMode = Create(
        id: "MLP008",
        title: "A model is trained in evaluation mode",
        messageFormat: "'{0}' is trained in evaluation mode{1} ({2}): dropout is off and batch normalization neither uses batch statistics nor learns running ones; call '{0}.train()' {3}",
        category: Categories.TrainEvalMode,
        severity: DiagnosticSeverity.Warning,
        description:
            "eval() stays in effect until train() is called. A training loop that switches to eval() for validation at the " +
            "end of an epoch and never back trains every later epoch without dropout and with frozen normalization " +
            "statistics: the model overfits sooner and its batch normalization drifts from what it sees in training. Call " +
            "train() at the start of each epoch (or before each training block).");

    /// <summary>MLP009: view or reshape given a tensor's own dimensions in another order, as if it moved axes.</summary>
    public static readonly DiagnosticDescriptor MLP009_ViewReordersDimensions = Create(
        id: "MLP009",
        title: "view or reshape is used to reorder dimensions",
        messageFormat: "'{0}' turns dimensions {1} into {2}, but {3} does not move data: it regroups the elements in their existing order, so values end up in the wrong positions; use {4}",
        category: Categories.TensorLayout,
        severity: DiagnosticSeverity.Warning,
        description:
            "view and reshape keep the order of the elements in memory and only change how they are grouped into dimensions. " +
            "Asking for a tensor's own dimensions in another order (NCHW to NHWC as view(n, h, w, c), or heads before time as " +
            "view(b, heads, t, d)) does not move any axis: it cuts the same sequence of values into new rows, mixing channels, " +
            "positions or samples. Nothing fails and the model trains on scrambled data. Use permute (or transpose) to move " +
            "dimensions, then reshape to merge or split them.");

    /// <summary>MLP010: view on a tensor that permute or transpose left out of memory order.</summary>
    public static readonly DiagnosticDescriptor MLP010_ViewOfPermutedTensor = Create(
        id: "MLP010",
        title: "view is applied to a tensor that permute or transpose left non-contiguous",
        messageFormat: "'{0}' is not contiguous after '{1}': view cannot merge the dimensions that were moved and throws \"view size is not compatible with input tensor's size and stride\" unless the sizes happen to allow it; call contiguous() before view, or use reshape",
        category: Categories.TensorLayout,
        severity: DiagnosticSeverity.Warning,
        description:
            "permute, transpose, t(), T and mT only change the strides: the data stays where it was, so the tensor is no longer " +
            "contiguous. view never copies, so it can split dimensions and merge dimensions that still follow each other in " +
            "memory, but not merge the ones that were moved. It then throws at run time, or works only for sizes where the " +
            "moved dimensions happen to be 1, which a test with small sizes does not catch. Call contiguous() first, or use " +
            "reshape, which copies when it must.");

    private static DiagnosticDescriptor Create(
        string id, string title, string messageFormat, string category, DiagnosticSeverity severity, string description)
        => new(id, title, messageFormat, category, severity, isEnabledByDefault: true, description, HelpLinkBase + id + ".md");
}

/// <summary>Rule categories: each names the kind of mistake, not the API involved.</summary>
public static class Categories
{
    /// <summary>Mistakes in the order or presence of the steps of a training loop.</summary>
    public const string TrainingLoop = "TrainingLoop";

    /// <summary>A loss given a tensor of the wrong kind: probabilities where it expects logits, or the reverse.</summary>
    public const string LossPairing = "LossPairing";

    /// <summary>How a model's layers are put together: parameters that cannot train, missing ones.</summary>
    public const string Architecture = "Architecture";

    /// <summary>A model run in the wrong mode: evaluated in training mode, or trained in evaluation mode.</summary>
    public const string TrainEvalMode = "TrainEvalMode";

    /// <summary>A tensor's dimensions regrouped or viewed in a way its memory layout does not allow or does not mean.</summary>
    public const string TensorLayout = "TensorLayout";
}
