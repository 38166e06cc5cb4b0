using System.Collections.Immutable;
using System.Text;

namespace MlPitfalls.Analyzers.Benchmarks;

/// <summary>
/// Generates TorchSharp training code of a realistic mix, the same block per class <c>i</c>:
/// <list type="bullet">
/// <item><c>Trainer{i}</c> (MLP001): one correct loop, one loop missing zero_grad, one loop reaching backward/step through
/// a helper, an evaluation loop.</item>
/// <item><c>Classifier{i}</c> (custom module returning logits), <c>ProbabilityHead{i}</c> (custom module whose forward
/// returns a softmax) and <c>LossTrainer{i}</c>: Sequential models (one ending in <c>nn.Softmax</c>, one in
/// <c>nn.LogSoftmax</c>), training and validation loops with <c>nn.CrossEntropyLoss</c>, <c>functional.cross_entropy</c>,
/// <c>nll_loss</c>, BCE losses, <c>kl_div</c> distillation, a helper returning softmax, branches, and for every planted
/// loss bug the correct look-alike real code uses next to it.</item>
/// <item><c>ConvBlock{i}</c> (MLP005): a convolution with its default bias before BatchNorm in a module's forward and in a
/// Sequential stem, next to the correct <c>bias: false</c>, pre-activation and residual look-alikes; <c>HeadTrainer{i}</c>
/// (MLP006): a classifier whose last layer has no bias feeding cross_entropy, next to one with a LayerNorm before it;
/// <c>ModeTrainer{i}</c> (MLP007, MLP008): an epoch loop whose eval() is never undone, a model evaluated after training
/// without eval(), next to an epoch loop that switches modes correctly.</item>
/// </list>
/// Each planted bug is marked <c>// MLPnnn</c> on the line where it is reported; <see cref="ExpectedPerClass"/> counts them.
/// </summary>
internal static class TrainingCodeGenerator
{
    /// <summary>
    /// Diagnostics per generated class, by rule. An activation written in the member that computes the loss is reported
    /// there; one written elsewhere (a model's <c>nn.Softmax</c> child, a helper, a module's <c>forward</c>) is reported at
    /// each loss input it reaches.
    /// </summary>
    public static readonly ImmutableDictionary<string, int> ExpectedPerClass = ImmutableDictionary.CreateRange(new[]
    {
        // Trainer{i}.Buggy, Trainer{i}.ThroughHelper
        Pair("MLP001", 2),
        // probabilityModel's Softmax child at the loss inputs of TrainEpoch and Validate, probs in TrainWithFunctionalLoss,
        // the helper Probabilities at both loss inputs of HelperLoss, ProbabilityHead's forward at HeadLoss's input, both
        // branches of BranchLoss, the sigmoid in MultiLabelLoss
        Pair("MLP002", 9),
        // softmax into nll_loss, logits into NLLLoss, logits into BCELoss, softmax as kl_div's input
        Pair("MLP003", 4),
        // functional.kl_div and the KLDivLoss module, each given a softmax target with the default log_target
        Pair("MLP004", 2),
        // ConvBlock{i}'s conv1 (its forward) and the stem's first convolution (a Sequential), each before BatchNorm2d
        Pair("MLP005", 2),
        // HeadTrainer{i}'s classifier, whose bias-free last layer feeds cross_entropy (reported at the loss input)
        Pair("MLP006", 1),
        // ModeTrainer{i}.Fit: eval() ends each epoch and nothing calls train() again; FitThenEvaluate: evaluated in training mode
        Pair("MLP007", 1),
        Pair("MLP008", 1),
        // Layout{i}.ChannelsLast: NCHW moved channels-last with view
        Pair("MLP009", 1),
        // Attention{i}.forward: heads merged with view right after the transpose
        Pair("MLP010", 1),
    });

    public const string Usings = """
        using System;
        using System.Collections.Generic;
        using System.Linq;
        using TorchSharp;
        using TorchSharp.Modules;
        using static TorchSharp.torch;
        using static TorchSharp.torch.nn;

        """;

    public static GeneratedCode Generate(int classes)
    {
        var code = new StringBuilder(Usings);
        for (int i = 0; i < classes; i++)
        {
            AppendUnit(code, i);
        }

        return new GeneratedCode(code.ToString(), referencesTorchSharp: true, GeneratedCode.Times(ExpectedPerClass, classes));
    }

    /// <summary>The same code as <see cref="Generate"/>, one unit (the classes of one <c>i</c>) per file, as a project has it.</summary>
    public static GeneratedCode GenerateFiles(int files)
        => GeneratedCode.PerFile(files, Usings, AppendUnit, referencesTorchSharp: true, ExpectedPerClass);

    private static void AppendUnit(StringBuilder code, int i)
    {
        AppendTrainingLoops(code, i);
        AppendLossCode(code, i);
        AppendArchitecture(code, i);
        AppendLayoutCode(code, i);
    }

    private static void AppendTrainingLoops(StringBuilder code, int i)
        => code.Append($$"""
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
                        foreach (var (x, y) in batches) // MLP001
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
                    foreach (var (x, y) in batches) // MLP001
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

    private static void AppendArchitecture(StringBuilder code, int i)
        => code.Append($$"""
            public sealed class ConvBlock{{i}} : Module<Tensor, Tensor>
            {
                private readonly Conv2d conv1 = nn.Conv2d(16, 16, 3, padding: 1); // MLP005
                private readonly BatchNorm2d bn1 = nn.BatchNorm2d(16);
                private readonly Conv2d conv2 = nn.Conv2d(16, 16, 3, padding: 1, bias: false);
                private readonly BatchNorm2d bn2 = nn.BatchNorm2d(16);
                private readonly Conv2d project = nn.Conv2d(16, 16, 1);
                private readonly Module<Tensor, Tensor> stem = nn.Sequential(
                    nn.Conv2d(3, 16, 3, padding: 1), nn.BatchNorm2d(16), nn.ReLU(), // MLP005
                    nn.Conv2d(16, 16, 3, padding: 1, bias: false), nn.BatchNorm2d(16), nn.ReLU(),
                    nn.BatchNorm2d(16), nn.ReLU(), nn.Conv2d(16, 16, 3, padding: 1));

                public ConvBlock{{i}}() : base("block{{i}}") => RegisterComponents();

                public override Tensor forward(Tensor input)
                {
                    var x = stem.call(input);
                    var h = functional.relu(bn1.call(conv1.call(x)));
                    h = bn2.call(conv2.call(h));
                    return functional.relu(h + project.call(x));
                }
            }

            public sealed class HeadTrainer{{i}}
            {
                private readonly Module<Tensor, Tensor> classifier = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 4, hasBias: false));
                private readonly Module<Tensor, Tensor> normalized = nn.Sequential(nn.Linear(16, 32), nn.LayerNorm(32), nn.Linear(32, 4, hasBias: false));

                public Tensor Loss(Tensor x, Tensor y)
                    => functional.cross_entropy(classifier.call(x), y) // MLP006
                       + functional.cross_entropy(normalized.call(x), y);
            }

            public sealed class ModeTrainer{{i}}
            {
                public void Fit(IReadOnlyList<(Tensor x, Tensor y)> batches, int epochs)
                {
                    var model = new Classifier{{i}}();
                    var optimizer = optim.SGD(model.parameters(), 0.01);
                    model.train();
                    for (int epoch = 0; epoch < epochs; epoch++)
                    {
                        foreach (var (x, y) in batches)
                        {
                            optimizer.zero_grad();
                            var loss = functional.cross_entropy(model.call(x), y); // MLP008: epochs after the first train in eval mode
                            loss.backward();
                            optimizer.step();
                        }

                        model.eval();
                        using (torch.no_grad())
                        {
                            foreach (var (x, y) in batches)
                            {
                                Console.WriteLine(model.call(x).argmax(1).eq(y).sum().item<long>());
                            }
                        }
                    }
                }

                public void FitCorrectly(IReadOnlyList<(Tensor x, Tensor y)> batches, int epochs)
                {
                    var model = new Classifier{{i}}();
                    var optimizer = optim.SGD(model.parameters(), 0.01);
                    for (int epoch = 0; epoch < epochs; epoch++)
                    {
                        model.train();
                        foreach (var (x, y) in batches)
                        {
                            optimizer.zero_grad();
                            functional.cross_entropy(model.call(x), y).backward();
                            optimizer.step();
                        }

                        model.eval();
                        var total = 0.0;
                        foreach (var (x, y) in batches)
                        {
                            total += functional.cross_entropy(model.call(x), y).item<float>();
                        }

                        Console.WriteLine(total);
                    }
                }

                public void FitThenEvaluate(IReadOnlyList<(Tensor x, Tensor y)> batches)
                {
                    var model = new Classifier{{i}}();
                    var optimizer = optim.SGD(model.parameters(), 0.01);
                    foreach (var (x, y) in batches)
                    {
                        optimizer.zero_grad();
                        functional.cross_entropy(model.call(x), y).backward();
                        optimizer.step();
                    }

                    using (torch.no_grad())
                    {
                        Console.WriteLine(model.call(batches[0].x).argmax(1).item<long>()); // MLP007: never switched to eval
                    }
                }
            }

            """);

    private static void AppendLossCode(StringBuilder code, int i)
        => code.Append($$"""
            public sealed class Classifier{{i}} : Module<Tensor, Tensor>
            {
                private readonly Linear fc1 = nn.Linear(16, 32);
                private readonly Linear fc2 = nn.Linear(32, 4);
                private readonly Dropout dropout = nn.Dropout(0.1);

                public Classifier{{i}}() : base("classifier{{i}}") => RegisterComponents();

                public override Tensor forward(Tensor input) => fc2.call(dropout.call(functional.relu(fc1.call(input))));
            }

            public sealed class ProbabilityHead{{i}} : Module<Tensor, Tensor>
            {
                private readonly Linear fc = nn.Linear(16, 4);

                public ProbabilityHead{{i}}() : base("head{{i}}") => RegisterComponents();

                public override Tensor forward(Tensor input)
                {
                    var logits = fc.call(input);
                    return functional.softmax(logits, -1); // origin of MLP002 in HeadLoss
                }
            }

            public sealed class LossTrainer{{i}}
            {
                private readonly Module<Tensor, Tensor> probabilityModel =
                    nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 4), nn.Softmax(1)); // origin of MLP002 in TrainEpoch, Validate
                private readonly Module<Tensor, Tensor> logSoftmaxModel =
                    nn.Sequential(("fc1", nn.Linear(16, 32)), ("act", nn.ReLU()), ("fc2", nn.Linear(32, 4)), ("out", nn.LogSoftmax(1)));
                private readonly Module<Tensor, Tensor> logitModel = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 4));
                private readonly Module<Tensor, Tensor> multiLabelModel = nn.Sequential(nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 3));
                private readonly Classifier{{i}} classifier = new Classifier{{i}}();
                private readonly ProbabilityHead{{i}} head = new ProbabilityHead{{i}}();
                private readonly CrossEntropyLoss criterion = nn.CrossEntropyLoss();
                private readonly NLLLoss nll = nn.NLLLoss();
                private readonly KLDivLoss klLoss = nn.KLDivLoss();
                private readonly KLDivLoss klLossOnProbabilities = nn.KLDivLoss(log_target: false);
                private readonly optim.Optimizer optimizer;
                private readonly List<double> history = new List<double>();

                public LossTrainer{{i}}(double learningRate)
                {
                    var parameters = probabilityModel.parameters().Concat(logitModel.parameters()).Concat(classifier.parameters());
                    optimizer = optim.Adam(parameters, lr: learningRate);
                }

                public double TrainEpoch(IEnumerable<(Tensor x, Tensor y)> batches)
                {
                    probabilityModel.train();
                    var total = 0.0;
                    var count = 0;
                    foreach (var (x, y) in batches)
                    {
                        using var scope = torch.NewDisposeScope();
                        optimizer.zero_grad();
                        var output = probabilityModel.call(x);
                        var loss = criterion.call(output, y); // MLP002 (output)
                        loss.backward();
                        optimizer.step();
                        total += loss.item<float>();
                        count++;
                    }

                    history.Add(total / Math.Max(1, count));
                    return total / Math.Max(1, count);
                }

                public (double Loss, double Accuracy) Validate(IEnumerable<(Tensor x, Tensor y)> batches)
                {
                    probabilityModel.eval();
                    using var _ = torch.no_grad();
                    double total = 0, correct = 0, seen = 0;
                    foreach (var (x, y) in batches)
                    {
                        var output = probabilityModel.call(x);
                        total += criterion.call(output, y).item<float>(); // MLP002 (output)
                        correct += output.argmax(1).eq(y).sum().ToDouble();
                        seen += y.shape[0];
                    }

                    return (total / Math.Max(1, seen), correct / Math.Max(1, seen));
                }

                public void TrainWithFunctionalLoss(IEnumerable<(Tensor x, Tensor y)> batches, int epochs)
                {
                    for (int epoch = 0; epoch < epochs; epoch++)
                    {
                        foreach (var (x, y) in batches)
                        {
                            optimizer.zero_grad();
                            var logits = logitModel.call(x);
                            var probs = logits.softmax(1); // MLP002
                            var loss = functional.cross_entropy(probs, y);
                            loss.backward();
                            optimizer.step();
                        }

                        if (epoch % 10 == 0)
                        {
                            Console.WriteLine($"epoch {epoch}: {history.LastOrDefault():F4}");
                        }
                    }
                }

                public (double Loss, double Accuracy) TrainClassifier(IEnumerable<(Tensor x, Tensor y)> batches, Module<Tensor, Tensor> teacher)
                {
                    classifier.train();
                    double total = 0, correct = 0;
                    foreach (var (x, y) in batches)
                    {
                        optimizer.zero_grad();
                        var logits = classifier.call(x);
                        var soft = teacher.call(x).softmax(1).detach();
                        var loss = criterion.call(logits, y) + 0.5 * functional.cross_entropy(logits, soft);
                        loss.backward();
                        optimizer.step();
                        var probs = logits.softmax(1);
                        correct += probs.argmax(1).eq(y).sum().ToDouble();
                        total += loss.item<float>();
                    }

                    return (total, correct);
                }

                private static Tensor Probabilities(Tensor logits) => functional.softmax(logits, 1); // origin of MLP002 in HelperLoss

                public Tensor HelperLoss(Tensor x, Tensor y) // MLP002 at both loss inputs
                    => functional.cross_entropy(Probabilities(logitModel.call(x)), y) + 0.1 * criterion.call(Probabilities(classifier.call(x)), y);

                public Tensor HeadLoss(Tensor x, Tensor y) => criterion.call(head.call(x), y); // MLP002 (head.call(x))

                public Tensor BranchLoss(Tensor x, Tensor y, bool useClassifier)
                {
                    Tensor input;
                    if (useClassifier)
                    {
                        input = functional.softmax(classifier.call(x), 1); // MLP002
                    }
                    else
                    {
                        input = logitModel.call(x).softmax(1); // MLP002
                    }

                    return criterion.call(input, y);
                }

                public Tensor OneBranchLoss(Tensor x, Tensor y, bool calibrated)
                {
                    var output = logitModel.call(x);
                    if (calibrated)
                    {
                        output = output.softmax(1);
                    }

                    return criterion.call(output, y);
                }

                public Tensor LogSoftmaxIntoCrossEntropy(Tensor x, Tensor y)
                    => criterion.call(logitModel.call(x).log_softmax(1), y) + functional.cross_entropy(classifier.call(x), y, label_smoothing: 0.1);

                public Tensor MultiLabelLoss(Tensor x, Tensor targets)
                {
                    var scores = multiLabelModel.call(x);
                    var p = torch.sigmoid(scores); // MLP002
                    return functional.binary_cross_entropy_with_logits(p, targets);
                }

                public Tensor DiceAndBce(Tensor x, Tensor targets)
                {
                    var logits = multiLabelModel.call(x);
                    var p = logits.sigmoid();
                    var dice = 1 - (2 * (p * targets).sum() + 1) / (p.sum() + targets.sum() + 1);
                    return functional.binary_cross_entropy_with_logits(logits, targets) + dice;
                }

                public Tensor NllLosses(Tensor x, Tensor y)
                {
                    var wrong = functional.nll_loss(logitModel.call(x).softmax(1), y); // MLP003
                    var output = logitModel.call(x);
                    var raw = nll.call(output, y); // MLP003 (output)
                    var right = nll.call(logSoftmaxModel.call(x), y) + functional.nll_loss(functional.log_softmax(logitModel.call(x), 1), y);
                    return wrong + raw + right;
                }

                public Tensor BceLosses(Tensor x, Tensor targets)
                {
                    var bce = nn.BCELoss();
                    var wrong = bce.call(multiLabelModel.call(x), targets); // MLP003 (multiLabelModel.call(x))
                    var right = bce.call(multiLabelModel.call(x).sigmoid(), targets);
                    return wrong + right;
                }

                public Tensor Distill(Tensor x, Module<Tensor, Tensor> teacher, float temperature)
                {
                    var studentLogProbs = (classifier.call(x) / temperature).log_softmax(1);
                    var teacherProbs = (teacher.call(x) / temperature).softmax(1);
                    var wrong = functional.kl_div(studentLogProbs, teacherProbs); // MLP004
                    var right = functional.kl_div(studentLogProbs, teacherProbs, log_target: false);
                    var logSpace = functional.kl_div(studentLogProbs, teacherProbs.log());
                    var inputWrong = functional.kl_div(logitModel.call(x).softmax(1), teacher.call(x).log_softmax(1)); // MLP003
                    var inputRight = functional.kl_div(logitModel.call(x).softmax(1).log(), teacher.call(x).log_softmax(1));
                    return (wrong + right + logSpace + inputWrong + inputRight) * (temperature * temperature);
                }

                public Tensor DistillModule(Tensor x, Tensor teacherLogits)
                {
                    var logProbs = logitModel.call(x).log_softmax(1);
                    var target = teacherLogits.softmax(1);
                    return klLoss.call(logProbs, target) // MLP004
                         + klLossOnProbabilities.call(logProbs, target)
                         + klLoss.call(logProbs, teacherLogits.log_softmax(1));
                }
            }

            """);

    private static void AppendLayoutCode(StringBuilder code, int i)
        => code.Append($$"""
            public sealed class Attention{{i}} : Module<Tensor, Tensor>
            {
                private readonly Linear qkv = nn.Linear(64, 192);
                private readonly Linear proj = nn.Linear(64, 64);
                private readonly long heads = 4;

                public Attention{{i}}() : base(nameof(Attention{{i}})) => RegisterComponents();

                public override Tensor forward(Tensor x)
                {
                    var (B, T, C) = (x.shape[0], x.shape[1], x.shape[2]);
                    var parts = qkv.call(x).split(C, 2);
                    var q = parts[0].view(B, T, heads, C / heads).transpose(1, 2);
                    var k = parts[1].view(B, T, heads, C / heads).transpose(1, 2);
                    var v = parts[2].view(B, T, heads, C / heads).transpose(1, 2);
                    var y = torch.matmul(torch.matmul(q, k.transpose(-2, -1)).softmax(-1), v);
                    var merged = y.transpose(1, 2).contiguous().view(B, T, C);
                    var wrong = y.transpose(1, 2).view(B, T, C); // MLP010
                    return proj.call(merged + wrong + y.transpose(1, 2).reshape(B, T, C));
                }
            }

            public static class Layout{{i}}
            {
                public static Tensor ChannelsLast(Tensor images)
                {
                    var (n, c, h, w) = (images.shape[0], images.shape[1], images.shape[2], images.shape[3]);
                    var right = images.permute(0, 2, 3, 1);
                    var flat = images.view(n, -1) + images.view(n, c, h * w).sum();
                    return right + images.view(n, h, w, c) + flat.sum(); // MLP009
                }

                public static Tensor Pixels(byte[] rgb, long height, long width)
                    => torch.tensor(rgb).view(height, width, 3).permute(2, 0, 1).to_type(ScalarType.Float32);
            }

            """);

    private static System.Collections.Generic.KeyValuePair<string, int> Pair(string id, int count) => new(id, count);
}
