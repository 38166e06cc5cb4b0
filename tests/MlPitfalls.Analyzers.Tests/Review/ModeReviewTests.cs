using System.Linq;
using System.Threading.Tasks;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.Testing;
using MlPitfalls.Analyzers.Tests.AllRules;
using Xunit;
using V7 = MlPitfalls.Analyzers.Tests.Verifiers.Verify<
    MlPitfalls.Analyzers.TrainEval.EvaluatedInTrainingModeAnalyzer,
    Microsoft.CodeAnalysis.Testing.EmptyCodeFixProvider>;
using V8 = MlPitfalls.Analyzers.Tests.Verifiers.Verify<
    MlPitfalls.Analyzers.TrainEval.TrainedInEvaluationModeAnalyzer,
    Microsoft.CodeAnalysis.Testing.EmptyCodeFixProvider>;

namespace MlPitfalls.Analyzers.Tests.Review;

/// <summary>
/// Review of the train/eval mode rules (MLP007, MLP008). Each test states what a TorchSharp user would expect; a failing
/// test is a finding. F* false positives, N* false negatives, C* robustness (AD0001), M* messages.
/// Left out as known limits (rule pages): <c>model?.eval()</c> (N03), gradient accumulated through a list and applied
/// after the micro-batch loop (N17), the loop a backward <c>goto</c> forms named in the message (M03).
/// </summary>
public class ModeReviewTests
{
    private static DiagnosticResult MLP007(int marker = 0) => V7.DiagnosticAnyMessage(Descriptors.MLP007_EvaluatedInTrainingMode).WithLocation(marker);

    private static DiagnosticResult MLP008(int marker = 0) => V8.DiagnosticAnyMessage(Descriptors.MLP008_TrainedInEvaluationMode).WithLocation(marker);

    /// <summary>Neither MLP007 nor MLP008.</summary>
    private static async Task None(string source)
    {
        await V7.AnalyzerAsync(source);
        await V8.AnalyzerAsync(source);
    }

    /// <summary>A model with batch normalization (backbone) and dropout (head): its mode matters.</summary>
    private const string Net = """
        class Net : Module<Tensor, Tensor>
        {
            public readonly Module<Tensor, Tensor> backbone = nn.Sequential(nn.Linear(784, 128), nn.BatchNorm1d(128), nn.ReLU());
            public readonly Module<Tensor, Tensor> head = nn.Sequential(nn.Dropout(0.5), nn.Linear(128, 10));
            public Net() : base("net") => RegisterComponents();
            public override Tensor forward(Tensor x) => head.call(backbone.call(x));
        }

        """;

    private const string TrainLoop = """
                    foreach (var (x, y) in train)
                    {
                        optimizer.zero_grad();
                        var loss = functional.cross_entropy({|#0:model.call(x)|}, y);
                        loss.backward();
                        optimizer.step();
                    }

        """;

    private const string Validate = """
                    using (torch.no_grad())
                    {
                        foreach (var (x, y) in valid)
                        {
                            Log(model.call(x).argmax(1).eq(y).sum().item<long>());
                        }
                    }

        """;

    private static string NoMarker(string code) => code.Replace("{|#0:", "").Replace("|}", "");

    /// <summary>A class with a Run method holding <paramref name="body"/>; model and optimizer are locals.</summary>
    private static string Run(string body, string members = "", string model = "new Net()") => Net + $$"""
        class Trainer
        {
            void Run(IReadOnlyList<(Tensor x, Tensor y)> train, IReadOnlyList<(Tensor x, Tensor y)> valid, int epochs)
            {
                var model = {{model}};
                var optimizer = optim.Adam(model.parameters());
        {{body}}
            }

            static void Log(double value) => Console.WriteLine(value);
        {{members}}
        }
        """;

    // =============================================================================== F: false positives

    [Fact]
    public Task F01_distillation_teacher_kept_in_eval_under_no_grad_is_not_trained_in_eval_mode()
        => None(Net + """
            class Distiller
            {
                void Run(Net teacher, IReadOnlyList<(Tensor x, Tensor y)> train, int epochs)
                {
                    var student = new Net();
                    var optimizer = optim.Adam(student.parameters());
                    student.train();
                    teacher.eval(); // frozen teacher: on purpose
                    for (int epoch = 0; epoch < epochs; epoch++)
                    {
                        foreach (var (x, y) in train)
                        {
                            optimizer.zero_grad();
                            Tensor soft;
                            using (torch.no_grad())
                            {
                                soft = functional.softmax(teacher.call(x) / 4.0, 1);
                            }

                            var logits = student.call(x);
                            var loss = functional.kl_div(functional.log_softmax(logits / 4.0, 1), soft, log_target: false) + functional.cross_entropy(logits, y);
                            loss.backward();
                            optimizer.step();
                        }
                    }
                }
            }
            """);

    [Fact]
    public Task F02_distillation_teacher_output_detached_is_not_trained_in_eval_mode()
        => None(Net + """
            class Distiller
            {
                void Run(IReadOnlyList<(Tensor x, Tensor y)> train, int epochs)
                {
                    var teacher = new Net();
                    teacher.load("teacher.dat");
                    teacher.eval();
                    var student = new Net();
                    var optimizer = optim.Adam(student.parameters());
                    for (int epoch = 0; epoch < epochs; epoch++)
                    {
                        foreach (var (x, y) in train)
                        {
                            optimizer.zero_grad();
                            var target = teacher.call(x).detach().softmax(1);
                            var loss = functional.cross_entropy(student.call(x), target);
                            loss.backward();
                            optimizer.step();
                        }
                    }
                }
            }
            """);

    [Fact]
    public Task F03_a_frozen_feature_extractor_in_eval_mode_is_not_trained_in_eval_mode()
        => None(Net + """
            class LinearProbe
            {
                void Run(Module<Tensor, Tensor> backbone, IReadOnlyList<(Tensor x, Tensor y)> train, int epochs)
                {
                    var head = nn.Linear(128, 10);
                    var optimizer = optim.SGD(head.parameters(), 0.01);
                    backbone.eval(); // frozen features, batch norm uses its running statistics on purpose
                    for (int epoch = 0; epoch < epochs; epoch++)
                    {
                        foreach (var (x, y) in train)
                        {
                            optimizer.zero_grad();
                            Tensor features;
                            using (torch.no_grad())
                            {
                                features = backbone.call(x);
                            }

                            var loss = functional.cross_entropy(head.call(features), y);
                            loss.backward();
                            optimizer.step();
                        }
                    }
                }
            }
            """);

    [Fact]
    public Task F04_a_frozen_perceptual_loss_network_in_eval_mode_is_not_trained_in_eval_mode()
        => None(Net + """
            class SuperResolution
            {
                void Run(Module<Tensor, Tensor> vgg, Module<Tensor, Tensor> generator, IReadOnlyList<(Tensor low, Tensor high)> train, int epochs)
                {
                    var optimizer = optim.Adam(generator.parameters());
                    vgg.eval(); // a fixed feature network for the perceptual loss; its parameters are not optimized
                    for (int epoch = 0; epoch < epochs; epoch++)
                    {
                        foreach (var (low, high) in train)
                        {
                            optimizer.zero_grad();
                            var fake = generator.call(low);
                            var loss = functional.mse_loss(vgg.call(fake), vgg.call(high)) + functional.l1_loss(fake, high);
                            loss.backward();
                            optimizer.step();
                        }
                    }
                }
            }
            """);

    [Fact]
    public Task F05_a_dqn_target_network_in_eval_mode_is_not_trained_in_eval_mode()
        => None(Net + """
            class Dqn
            {
                void Run(IReadOnlyList<(Tensor s, Tensor a, Tensor r, Tensor s2)> replay, int steps)
                {
                    var policy = new Net();
                    var target = new Net();
                    var optimizer = optim.Adam(policy.parameters());
                    target.load_state_dict(policy.state_dict());
                    target.eval();
                    for (int step = 0; step < steps; step++)
                    {
                        foreach (var (s, a, r, s2) in replay)
                        {
                            optimizer.zero_grad();
                            Tensor next;
                            using (torch.no_grad())
                            {
                                next = target.call(s2).amax(new long[] { 1 });
                            }

                            var q = policy.call(s).gather(1, a).squeeze(1);
                            var loss = functional.smooth_l1_loss(q, r + 0.99 * next);
                            loss.backward();
                            optimizer.step();
                        }
                    }
                }
            }
            """);

    [Fact]
    public Task F06_eval_with_train_restored_in_finally_is_not_trained_in_eval_mode()
        => None(Run(NoMarker("""
                model.train();
                for (int epoch = 0; epoch < epochs; epoch++)
                {
        """ + TrainLoop + """
                    model.eval();
                    try
                    {
        """ + Validate + """
                    }
                    finally
                    {
                        model.train();
                    }
                }
        """)));

    [Fact]
    public Task F07_an_evaluation_helper_that_restores_train_in_finally_is_not_trained_in_eval_mode()
        => None(Run(
            NoMarker("""
                model.train();
                for (int epoch = 0; epoch < epochs; epoch++)
                {
        """ + TrainLoop + """
                    Evaluate(model, valid);
                }
        """),
            members: """
            static void Evaluate(Module<Tensor, Tensor> model, IReadOnlyList<(Tensor x, Tensor y)> valid)
            {
                model.eval();
                try
                {
        """ + Validate + """
                }
                finally
                {
                    model.train();
                }
            }
        """));

    private const string EvalScope = """
        sealed class EvalScope : IDisposable
        {
            private readonly nn.Module module;
            public EvalScope(nn.Module module) { this.module = module; module.eval(); }
            public void Dispose() => module.train();
        }

        """;

    [Fact]
    public Task F08_an_IDisposable_guard_that_calls_eval_is_seen()
        => None(EvalScope + Run(NoMarker("""
                model.train();
        """ + TrainLoop + """
                using (new EvalScope(model))
                {
        """ + Validate + """
                }
        """)));

    [Fact]
    public Task F09_a_using_var_guard_that_calls_eval_is_seen()
        => None(EvalScope + Run(NoMarker("""
                model.train();
        """ + TrainLoop + """
                using var evalMode = new EvalScope(model);
        """ + Validate)));

    [Fact]
    public Task F10_monte_carlo_dropout_with_a_loop_variable_named_step_is_deliberate()
        => None(Run(NoMarker(TrainLoop + """
                model.eval();
                model.train(); // Monte-Carlo dropout: keep dropout on while sampling
                using (torch.no_grad())
                {
                    for (int step = 0; step < 20; step++)
                    {
                        Log(model.call(valid[0].x).argmax(1).eq(valid[0].y).sum().item<long>());
                    }
                }
        """)));

    [Fact]
    public Task F11_recomputing_batch_norm_statistics_under_no_grad_is_no_evaluation()
        => None(Run(NoMarker(TrainLoop + """
                // SWA-style update_bn: one pass over the training data in training mode to refresh the running statistics
                using (torch.no_grad())
                {
                    foreach (var (x, _) in train)
                    {
                        model.call(x);
                    }
                }
        """)));

    [Fact]
    public Task F12_full_batch_training_reusing_output_and_loss_locals_for_validation_is_not_a_training_use()
        => None(Run("""
                var output = model.call(train[0].x);
                var loss = functional.cross_entropy(output, train[0].y);
                for (int epoch = 0; epoch < epochs; epoch++)
                {
                    model.train();
                    optimizer.zero_grad();
                    output = model.call(train[0].x);
                    loss = functional.cross_entropy(output, train[0].y);
                    loss.backward();
                    optimizer.step();

                    model.eval();
                    using (torch.no_grad())
                    {
                        output = model.call(valid[0].x);
                        loss = functional.cross_entropy(output, valid[0].y);
                        Log(loss.item<float>());
                    }
                }
        """));

    [Fact]
    public Task F13_a_gan_that_samples_in_eval_mode_and_switches_back_is_correct()
        => None(Net + """
            class Gan
            {
                void Run(Net g, Net d, IReadOnlyList<Tensor> real, Tensor fixedNoise, int epochs)
                {
                    var optG = optim.Adam(g.parameters());
                    var optD = optim.Adam(d.parameters());
                    for (int epoch = 0; epoch < epochs; epoch++)
                    {
                        g.train();
                        d.train();
                        foreach (var x in real)
                        {
                            var z = torch.randn(x.shape[0], 784);
                            var fake = g.call(z);
                            optD.zero_grad();
                            var lossD = functional.binary_cross_entropy_with_logits(d.call(x), torch.ones(x.shape[0], 10))
                                      + functional.binary_cross_entropy_with_logits(d.call(fake.detach()), torch.zeros(x.shape[0], 10));
                            lossD.backward();
                            optD.step();
                            optG.zero_grad();
                            var lossG = functional.binary_cross_entropy_with_logits(d.call(fake), torch.ones(x.shape[0], 10));
                            lossG.backward();
                            optG.step();
                        }

                        g.eval();
                        using (torch.no_grad())
                        {
                            Console.WriteLine(g.call(fixedNoise).mean().item<float>());
                        }
                    }
                }
            }
            """);

    [Fact]
    public Task F14_fine_tuning_with_the_backbone_batch_norm_frozen_on_purpose_is_correct()
        => None(Run(NoMarker("""
                for (int epoch = 0; epoch < epochs; epoch++)
                {
                    model.train();
                    model.backbone.eval(); // keep pretrained batch-norm statistics

        """ + TrainLoop + """
                    model.eval();
        """ + Validate + """
                }
        """)));

    [Fact]
    public Task F15_k_fold_with_a_new_model_per_fold_and_train_at_the_top_of_each_epoch_is_correct()
        => None(Net + """
            class KFold
            {
                void Run(IReadOnlyList<(Tensor x, Tensor y)>[] folds, int epochs)
                {
                    for (int k = 0; k < folds.Length; k++)
                    {
                        var model = new Net();
                        var optimizer = optim.Adam(model.parameters());
                        var train = folds.Where((_, i) => i != k).SelectMany(f => f).ToList();
                        for (int epoch = 0; epoch < epochs; epoch++)
                        {
                            model.train();
                            foreach (var (x, y) in train)
                            {
                                optimizer.zero_grad();
                                functional.cross_entropy(model.call(x), y).backward();
                                optimizer.step();
                            }

                            model.eval();
                            using (torch.no_grad())
                            {
                                foreach (var (x, y) in folds[k])
                                {
                                    Console.WriteLine(model.call(x).argmax(1).eq(y).sum().item<long>());
                                }
                            }
                        }
                    }
                }
            }
            """);

    [Fact]
    public Task F16_early_stopping_with_train_at_the_top_and_a_break_is_correct()
        => None(Run(NoMarker("""
                var best = double.MaxValue;
                var patience = 0;
                while (true)
                {
                    model.train();
        """ + TrainLoop + """
                    model.eval();
                    double total = 0;
                    using (torch.no_grad())
                    {
                        foreach (var (x, y) in valid)
                        {
                            total += functional.cross_entropy(model.call(x), y).item<float>();
                        }
                    }

                    if (total < best) { best = total; patience = 0; model.save("best.dat"); }
                    else if (++patience > 5) break;
                }
        """)));

    [Fact]
    public Task F17_mnist_style_train_and_test_helpers_are_correct()
        => None(Net + """
            class Mnist
            {
                static void Main(IReadOnlyList<(Tensor x, Tensor y)> train, IReadOnlyList<(Tensor x, Tensor y)> test, int epochs)
                {
                    var model = new Net();
                    var loss = nn.NLLLoss();
                    var optimizer = optim.Adam(model.parameters());
                    for (var epoch = 1; epoch <= epochs; epoch++)
                    {
                        Train(model, optimizer, loss, train);
                        Test(model, loss, test);
                    }
                }

                static void Train(Net model, optim.Optimizer optimizer, NLLLoss loss, IReadOnlyList<(Tensor x, Tensor y)> data)
                {
                    model.train();
                    foreach (var (x, y) in data)
                    {
                        using (var d = torch.NewDisposeScope())
                        {
                            optimizer.zero_grad();
                            var prediction = model.call(x);
                            var output = loss.call(prediction, y);
                            output.backward();
                            optimizer.step();
                        }
                    }
                }

                static void Test(Net model, NLLLoss loss, IReadOnlyList<(Tensor x, Tensor y)> data)
                {
                    model.eval();
                    double testLoss = 0;
                    long correct = 0;
                    foreach (var (x, y) in data)
                    {
                        using (var d = torch.NewDisposeScope())
                        {
                            var prediction = model.call(x);
                            var output = loss.call(prediction, y);
                            testLoss += output.ToSingle();
                            correct += prediction.argmax(1).eq(y).sum().ToInt64();
                        }
                    }

                    Console.WriteLine($"{testLoss} {correct}");
                }
            }
            """);

    [Fact]
    public Task F18_wasTraining_restore_idiom_is_correct()
        => None(Run(NoMarker("""
                model.train();
                for (int epoch = 0; epoch < epochs; epoch++)
                {
        """ + TrainLoop + """
                    var wasTraining = model.training;
                    model.eval();
        """ + Validate + """
                    model.train(wasTraining);
                }
        """)));

    // =============================================================================== N: false negatives

    [Fact]
    public Task N01_rule_page_example_inference_after_load_without_eval_is_reported()
        => V7.AnalyzerAsync(Net + """
            class Predictor
            {
                void Predict(Tensor image)
                {
                    var model = new Net();
                    model.load("weights.dat");
                    using var _ = torch.inference_mode();
                    var prediction = {|#0:model.call(image)|}.argmax(1);
                    Console.WriteLine(prediction.item<long>());
                }
            }
            """, MLP007());

    [Fact]
    public Task N02_distillation_teacher_never_switched_to_eval_is_evaluated_in_training_mode()
        => V7.AnalyzerAsync(Net + """
            class Distiller
            {
                void Run(IReadOnlyList<(Tensor x, Tensor y)> train, int epochs)
                {
                    var teacher = new Net();
                    teacher.load("teacher.dat"); // forgot teacher.eval(): its dropout is on while it labels
                    var student = new Net();
                    var optimizer = optim.Adam(student.parameters());
                    for (int epoch = 0; epoch < epochs; epoch++)
                    {
                        foreach (var (x, y) in train)
                        {
                            optimizer.zero_grad();
                            Tensor soft;
                            using (torch.no_grad())
                            {
                                soft = {|#0:teacher.call(x)|}.softmax(1);
                            }

                            var loss = functional.cross_entropy(student.call(x), soft);
                            loss.backward();
                            optimizer.step();
                        }
                    }
                }
            }
            """, MLP007());

    [Fact]
    public Task N04_class_based_trainer_with_a_test_method_calling_eval_is_reported()
        => V8.AnalyzerAsync(Net + """
            class Trainer
            {
                private readonly Net model = new Net();
                private optim.Optimizer optimizer;

                public void Run(IReadOnlyList<(Tensor x, Tensor y)> train, IReadOnlyList<(Tensor x, Tensor y)> valid, int epochs)
                {
                    optimizer = optim.Adam(model.parameters());
                    model.train();
                    for (int epoch = 0; epoch < epochs; epoch++)
                    {
                        foreach (var (x, y) in train)
                        {
                            optimizer.zero_grad();
                            functional.cross_entropy({|#0:model.call(x)|}, y).backward();
                            optimizer.step();
                        }

                        Test(valid);
                    }
                }

                private void Test(IReadOnlyList<(Tensor x, Tensor y)> valid)
                {
                    model.eval();
                    using var _ = torch.no_grad();
                    foreach (var (x, y) in valid)
                    {
                        Console.WriteLine(model.call(x).argmax(1).eq(y).sum().item<long>());
                    }
                }
            }
            """, MLP008());

    [Fact]
    public async Task N05_top_level_statements_classic_bug_is_reported()
    {
        var test = V8.Create();
        test.TestState.OutputKind = OutputKind.ConsoleApplication;
        test.TestCode = V8.Usings + """
            var model = new Net();
            var optimizer = optim.Adam(model.parameters());
            var train = new List<(Tensor x, Tensor y)>();
            model.train();
            for (int epoch = 0; epoch < 10; epoch++)
            {
                foreach (var (x, y) in train)
                {
                    optimizer.zero_grad();
                    functional.cross_entropy({|#0:model.call(x)|}, y).backward();
                    optimizer.step();
                }

                model.eval();
                Evaluate();
            }

            void Evaluate()
            {
                using var _ = torch.no_grad();
                Console.WriteLine(model.call(train[0].x).argmax(1).item<long>());
            }

            """ + Net;
        test.ExpectedDiagnostics.Add(MLP008());
        await test.RunAsync();
    }

    [Fact]
    public Task N06_async_epoch_loop_classic_bug_is_reported()
        => V8.AnalyzerAsync(Net + """
            class Trainer
            {
                async System.Threading.Tasks.Task Run(IReadOnlyList<(Tensor x, Tensor y)> train, int epochs)
                {
                    var model = new Net();
                    var optimizer = optim.Adam(model.parameters());
                    model.train();
                    for (int epoch = 0; epoch < epochs; epoch++)
                    {
                        foreach (var (x, y) in train)
                        {
                            optimizer.zero_grad();
                            functional.cross_entropy({|#0:model.call(x)|}, y).backward();
                            optimizer.step();
                            await System.Threading.Tasks.Task.Yield();
                        }

                        model.eval();
                        await System.IO.File.WriteAllTextAsync("log.txt", epoch.ToString());
                    }
                }
            }
            """, MLP008());

    [Fact]
    public Task N07_generic_trainer_classic_bug_is_reported()
        => V8.AnalyzerAsync(Net + """
            class Trainer<TModel> where TModel : Module<Tensor, Tensor>
            {
                void Run(TModel model, IReadOnlyList<(Tensor x, Tensor y)> train, int epochs)
                {
                    var optimizer = optim.Adam(model.parameters());
                    model.train();
                    for (int epoch = 0; epoch < epochs; epoch++)
                    {
                        foreach (var (x, y) in train)
                        {
                            optimizer.zero_grad();
                            functional.cross_entropy({|#0:model.call(x)|}, y).backward();
                            optimizer.step();
                        }

                        model.eval();
                    }
                }
            }
            """, MLP008());

    [Fact]
    public Task N08_auto_property_model_classic_bug_is_reported()
        => V8.AnalyzerAsync(Net + """
            class Trainer
            {
                public Net Model { get; } = new Net();

                void Run(IReadOnlyList<(Tensor x, Tensor y)> train, int epochs)
                {
                    var optimizer = optim.Adam(Model.parameters());
                    Model.train();
                    for (int epoch = 0; epoch < epochs; epoch++)
                    {
                        foreach (var (x, y) in train)
                        {
                            optimizer.zero_grad();
                            functional.cross_entropy({|#0:Model.call(x)|}, y).backward();
                            optimizer.step();
                        }

                        Model.eval();
                    }
                }
            }
            """, MLP008());

    [Fact]
    public Task N09_static_field_model_classic_bug_is_reported()
        => V8.AnalyzerAsync(Net + """
            static class Program
            {
                static readonly Net model = new Net();

                static void Main()
                {
                    var train = new List<(Tensor x, Tensor y)>();
                    var optimizer = optim.Adam(model.parameters());
                    model.train();
                    for (int epoch = 0; epoch < 10; epoch++)
                    {
                        foreach (var (x, y) in train)
                        {
                            optimizer.zero_grad();
                            functional.cross_entropy({|#0:model.call(x)|}, y).backward();
                            optimizer.step();
                        }

                        model.eval();
                    }
                }
            }
            """, MLP008());

    [Fact]
    public Task N10_early_stopping_loop_classic_bug_is_reported()
        => V8.AnalyzerAsync(Run("""
                var patience = 0;
                model.train();
                while (true)
                {
        """ + TrainLoop + """
                    model.eval();
        """ + Validate + """
                    if (++patience > 5) break;
                }
        """), MLP008());

    [Fact]
    public Task N11_gan_generator_left_in_eval_after_sampling_is_reported()
        => V8.AnalyzerAsync(Net + """
            class Gan
            {
                void Run(IReadOnlyList<Tensor> real, Tensor fixedNoise, int epochs)
                {
                    var g = new Net();
                    var d = new Net();
                    var optG = optim.Adam(g.parameters());
                    var optD = optim.Adam(d.parameters());
                    for (int epoch = 0; epoch < epochs; epoch++)
                    {
                        foreach (var x in real)
                        {
                            var fake = {|#0:g.call(torch.randn(x.shape[0], 784))|};
                            optD.zero_grad();
                            var lossD = functional.binary_cross_entropy_with_logits(d.call(x), torch.ones(x.shape[0], 10))
                                      + functional.binary_cross_entropy_with_logits(d.call(fake.detach()), torch.zeros(x.shape[0], 10));
                            lossD.backward();
                            optD.step();
                            optG.zero_grad();
                            var lossG = functional.binary_cross_entropy_with_logits(d.call(fake), torch.ones(x.shape[0], 10));
                            lossG.backward();
                            optG.step();
                        }

                        g.eval(); // sample, and never g.train() again
                        using (torch.no_grad())
                        {
                            Console.WriteLine(g.call(fixedNoise).mean().item<float>());
                        }
                    }
                }
            }
            """, MLP008());

    [Fact]
    public Task N12_train_false_for_validation_at_the_end_of_each_epoch_is_reported()
        => V8.AnalyzerAsync(Run("""
                for (int epoch = 0; epoch < epochs; epoch++)
                {
        """ + TrainLoop + """
                    model.train(false);
        """ + Validate + """
                }
        """), MLP008());

    [Fact]
    public Task N13_model_moved_to_a_device_at_creation_classic_bug_is_reported()
        => V8.AnalyzerAsync(Run("""
                for (int epoch = 0; epoch < epochs; epoch++)
                {
        """ + TrainLoop + """
                    model.eval();
        """ + Validate + """
                }
        """, model: "new Net().to(torch.CPU)"), MLP008());

    [Fact]
    public Task N14_validation_every_n_batches_without_eval_is_reported()
        => V7.AnalyzerAsync(Run("""
                model.train();
                var i = 0;
                foreach (var (x, y) in train)
                {
                    optimizer.zero_grad();
                    functional.cross_entropy(model.call(x), y).backward();
                    optimizer.step();
                    if (++i % 100 == 0)
                    {
                        using (torch.no_grad())
                        {
                            foreach (var (vx, vy) in valid)
                            {
                                Log({|#0:model.call(vx)|}.argmax(1).eq(vy).sum().item<long>());
                            }
                        }
                    }
                }
        """), MLP007());

    // =============================================================================== C: robustness (AD0001)

    private static async Task NoAnalyzerException(string source, OutputKind kind = OutputKind.DynamicallyLinkedLibrary)
    {
        var compilation = AllAnalyzers.Compile(LanguageVersion.Latest, addUsings: true, source);
        compilation = compilation.WithOptions(compilation.Options.WithOutputKind(kind));
        var run = AllAnalyzers.RunAsync(compilation);
        var finished = await Task.WhenAny(run, Task.Delay(System.TimeSpan.FromSeconds(60)));
        Assert.True(finished == run, "the analyzers did not finish within 60 s");
        var crashes = (await run).Where(d => d.Id == "AD0001").Select(d => d.GetMessage()).ToList();
        Assert.True(crashes.Count == 0, string.Join("\n----\n", crashes));
    }

    private const string Prelude = Net + """
        class T
        {
            static void Log(double v) => Console.WriteLine(v);

        """;

    [Theory]
    [InlineData("void M(IReadOnlyList<(Tensor x, Tensor y)> train) { var model = new Net(); model.eval(\n for (;;) { var o = model.call(train[0].x); o.backward(); } }")]
    [InlineData("void M(IReadOnlyList<(Tensor x, Tensor y)> train) { var model = new Net(); var opt = optim.Adam(model.parameters()); model.eval(); foreach (var (x, y) in train) { opt.zero_grad(); model.call(; opt.step(); } }")]
    [InlineData("void M(IReadOnlyList<(Tensor x, Tensor y)> train) { var model = new Net(); var opt = optim.Adam(model.parameters()); model.eval(); foreach (var (x, y) in train) { opt.zero_grad(); functional.cross_entropy(model.call(x), y).backward(); opt.step() } model. }")]
    [InlineData("void M(Missing train) { var model = new Net(); var opt = optim.Adam(model.parameters()); model.eval(); foreach (var (x, y) in train) { opt.zero_grad(); functional.cross_entropy(model.call(x), y).backward(); opt.step(); } }")]
    [InlineData("void M(IReadOnlyList<(Tensor x, Tensor y)> train) { var model = new Unknown(); var opt = optim.Adam(model.parameters()); model.eval(); foreach (var (x, y) in train) { opt.zero_grad(); functional.cross_entropy(model.call(x), y).backward(); opt.step(); } }")]
    [InlineData("void M(IReadOnlyList<(Tensor x, Tensor y)> train) { var model = new Net(); for (int e = 0; e < 3; e++) using (torch.no_grad()) foreach (var (x, y) in train) Log(model.call(x).argmax(1).item<long>()); model.eval() }")]
    [InlineData("void M(IReadOnlyList<(Tensor x, Tensor y)> train) { var model = new Net(); var opt = optim.Adam(model.parameters()); model.train(); for (int e = 0; e < 3; e++) { foreach (var (x, y) in train) { opt.zero_grad(); functional.cross_entropy(model.call(x), y).backward(); opt.step(); } model.eval(); } } }")]
    public Task C01_incomplete_code_does_not_throw(string member)
        => NoAnalyzerException(Prelude + member + "\n}\n");

    [Fact]
    public Task C02_odd_csharp_does_not_throw()
        => NoAnalyzerException(Prelude + """
                void Goto(IReadOnlyList<(Tensor x, Tensor y)> train)
                {
                    var model = new Net();
                    var opt = optim.Adam(model.parameters());
                    int epoch = 0;
                again:
                    foreach (var (x, y) in train)
                    {
                        opt.zero_grad();
                        functional.cross_entropy(model.call(x), y).backward();
                        opt.step();
                    }
                    model.eval();
                    using (torch.no_grad()) { foreach (var (x, y) in train) Log(model.call(x).argmax(1).item<long>()); }
                    if (++epoch < 3) goto again;
                }

                void Switches(int kind, IReadOnlyList<(Tensor x, Tensor y)> train)
                {
                    Module<Tensor, Tensor> model = kind switch { 0 => new Net(), 1 => nn.Sequential(nn.Dropout(0.1)), _ => throw new ArgumentException() };
                    var opt = optim.Adam(model.parameters());
                    if (model is Net { training: true } net) net.eval();
                    switch (kind) { case 0: model.train(); break; default: model.eval(); break; }
                    for (int e = 0; e < 3; e++)
                    {
                        foreach (var (x, y) in train)
                        {
                            opt.zero_grad();
                            var o = model.call(x) switch { var t when t.dim() > 1 => t, var t => t.unsqueeze(0) };
                            functional.cross_entropy(o, y).backward();
                            opt.step();
                        }
                        model?.eval();
                        using (torch.no_grad()) foreach (var (x, y) in train) Log(model?.call(x).argmax(1).item<long>() ?? 0);
                    }
                }

                void Refs(Net[] models, IReadOnlyList<(Tensor x, Tensor y)> train)
                {
                    ref var m = ref models[0];
                    var opt = optim.Adam(m.parameters());
                    m.eval();
                    var (g, d) = (new Net(), models[1]);
                    (g, d) = (d, g);
                    g.eval();
                    for (int e = 0; e < 3; e++)
                    {
                        foreach (var (x, y) in train)
                        {
                            opt.zero_grad();
                            functional.cross_entropy(m.call(x) + g.call(x) + d.call(x) + models[e].call(x), y).backward();
                            opt.step();
                        }
                        m = ref models[1];
                        m.eval();
                    }
                }

                async System.Threading.Tasks.Task Async(IAsyncEnumerable<(Tensor x, Tensor y)> train)
                {
                    var model = new Net();
                    var opt = optim.Adam(model.parameters());
                    for (int e = 0; e < 3; e++)
                    {
                        await foreach (var (x, y) in train)
                        {
                            opt.zero_grad();
                            functional.cross_entropy(model.call(x), y).backward();
                            opt.step();
                        }
                        model.eval();
                        await System.Threading.Tasks.Task.Delay(1);
                        using (torch.no_grad()) await foreach (var (x, y) in train) Log(model.call(x).argmax(1).item<long>());
                    }
                }

                void Locals(IReadOnlyList<(Tensor x, Tensor y)> train)
                {
                    var model = new Net();
                    var opt = optim.Adam(model.parameters());
                    Action ev = () => model.eval();
                    void Tr() { model.train(); Tr2(); }
                    void Tr2() { if (train.Count > 1000) Tr(); }
                    for (int e = 0; e < 3; e++)
                    {
                        Tr();
                        try
                        {
                            foreach (var (x, y) in train)
                            {
                                opt.zero_grad();
                                functional.cross_entropy(model.call(x), y).backward();
                                opt.step();
                            }
                        }
                        catch (Exception) when (e > 1)
                        {
                            model.eval();
                            continue;
                        }
                        finally
                        {
                            ev();
                        }
                        using (torch.no_grad()) foreach (var (x, y) in train) Log(model.call(x).argmax(1).item<long>());
                    }
                }

                void Recursive(Net model, int n) { if (n > 0) { model.eval(); Other(model, n - 1); } }
                void Other(Net model, int n) { model.train(); Recursive(model, n); }
                void UsesRecursion(IReadOnlyList<(Tensor x, Tensor y)> train)
                {
                    var model = new Net();
                    var opt = optim.Adam(model.parameters());
                    for (int e = 0; e < 3; e++)
                    {
                        Recursive(model, e);
                        foreach (var (x, y) in train)
                        {
                            opt.zero_grad();
                            functional.cross_entropy(model.call(x), y).backward();
                            opt.step();
                        }
                    }
                }

                static readonly Net Shared = new Net();
                static Net Prop => Shared;
                void Statics(IReadOnlyList<(Tensor x, Tensor y)> train)
                {
                    var opt = optim.Adam(Shared.parameters());
                    Prop.eval();
                    T.Shared.train();
                    for (int e = 0; e < 3; e++)
                    {
                        foreach (var (x, y) in train)
                        {
                            opt.zero_grad();
                            functional.cross_entropy(Shared.call(x) + Prop.call(x), y).backward();
                            opt.step();
                        }
                        (e > 1 ? Shared : Prop).eval();
                    }
                }
            }

            class Gen<TModel> where TModel : Module<Tensor, Tensor>, new()
            {
                TModel model = new TModel();
                void Run(IReadOnlyList<(Tensor x, Tensor y)> train)
                {
                    var opt = optim.Adam(model.parameters());
                    model.eval();
                    for (int e = 0; e < 3; e++)
                    {
                        foreach (var (x, y) in train)
                        {
                            opt.zero_grad();
                            functional.cross_entropy(model.call(x), y).backward();
                            opt.step();
                        }
                    }
                    using (torch.no_grad()) foreach (var (x, y) in train) Console.WriteLine(model.call(x).argmax(1).item<long>());
                }
            }
            """);

    [Fact]
    public Task C03_top_level_statements_do_not_throw()
        => NoAnalyzerException("""
            var model = new Net();
            var opt = optim.Adam(model.parameters());
            var data = new List<(Tensor x, Tensor y)>();
            model.train();
            for (int e = 0; e < 3; e++)
            {
                foreach (var (x, y) in data)
                {
                    opt.zero_grad();
                    functional.cross_entropy(model.call(x), y).backward();
                    opt.step();
                }
                Validate();
            }
            model.eval();
            using (torch.no_grad()) foreach (var (x, y) in data) Console.WriteLine(model.call(x).argmax(1).item<long>());

            void Validate() { model.eval(); }

            """ + Net, OutputKind.ConsoleApplication);

    [Fact]
    public Task C04_a_helper_named_train_whose_argument_holds_the_forward_does_not_throw()
        => NoAnalyzerException(Prelude + """
                static void train(Net net, long seen) => net.train();

                void Run(IReadOnlyList<(Tensor x, Tensor y)> valid)
                {
                    var model = new Net();
                    using (torch.no_grad())
                    {
                        foreach (var (x, y) in valid)
                        {
                            train(model, model.call(x).argmax(1).eq(y).sum().item<long>());
                        }
                    }
                }
            }
            """);

    // =============================================================================== M: messages

    [Fact]
    public async Task M01_the_origin_in_the_message_stays_on_one_line()
    {
        var compilation = AllAnalyzers.Compile(LanguageVersion.Latest, addUsings: true, """
            class T
            {
                void Run(IReadOnlyList<(Tensor x, Tensor y)> valid)
                {
                    var model = nn.Sequential(
                        nn.Linear(784, 128),
                        nn.Dropout(0.2),
                        nn.Linear(128, 10));
                    using (torch.no_grad())
                    {
                        foreach (var (x, y) in valid)
                        {
                            Console.WriteLine(model.call(x).argmax(1).eq(y).sum().item<long>());
                        }
                    }
                }
            }
            """);
        var diagnostics = await AllAnalyzers.RunAsync(compilation);
        var mlp007 = Assert.Single(diagnostics, d => d.Id == "MLP007");
        Assert.DoesNotContain("\n", mlp007.GetMessage(System.Globalization.CultureInfo.InvariantCulture));
    }

    [Fact]
    public Task M02_message_for_a_helper_that_set_eval()
        => V8.AnalyzerAsync(
            Run(
                """
                for (int epoch = 0; epoch < epochs; epoch++)
                {
        """ + TrainLoop + """
                    Evaluate(model);
                }
        """,
                members: """
            static void Evaluate(Net net) => net.eval();
        """),
            V8.Diagnostic(Descriptors.MLP008_TrainedInEvaluationMode).WithLocation(0).WithArguments(
                "model", " from the second iteration of the loop at line 21 on", "set by calling 'Evaluate(model)' at line 29", "at the start of each iteration of that loop"));

    // =============================================================================== second round

    [Fact]
    public Task F19_adversarial_training_that_crafts_examples_in_eval_mode_is_not_trained_in_eval_mode()
        => None(Run("""
                for (int epoch = 0; epoch < epochs; epoch++)
                {
                    foreach (var (x, y) in train)
                    {
                        // FGSM: craft the adversarial batch with the model in eval mode (no optimizer step here)
                        model.eval();
                        var xa = x.detach().requires_grad_(true);
                        var attackLoss = functional.cross_entropy(model.call(xa), y);
                        attackLoss.backward();
                        var adversarial = (xa + 0.03 * xa.grad.sign()).detach();

                        model.train();
                        optimizer.zero_grad();
                        var loss = functional.cross_entropy(model.call(adversarial), y);
                        loss.backward();
                        optimizer.step();
                    }
                }
        """));

    [Fact]
    public Task N15_validation_loop_with_max_deconstruction_is_a_measurement()
        => V7.AnalyzerAsync(Run(NoMarker(TrainLoop) + """
                long correct = 0;
                foreach (var (x, y) in valid)
                {
                    var (_, predicted) = {|#0:model.call(x)|}.max(1);
                    correct += predicted.eq(y).sum().item<long>();
                }
                Log(correct);
        """), MLP007());

    [Fact]
    public Task N16_train_at_the_top_of_an_epoch_with_training_in_a_helper_then_validation_without_eval_is_reported()
        => V7.AnalyzerAsync(Run(
            """
                for (int epoch = 0; epoch < epochs; epoch++)
                {
                    model.train();
                    TrainEpoch(model, optimizer, train);
                    using (torch.no_grad())
                    {
                        foreach (var (x, y) in valid)
                        {
                            Log({|#0:model.call(x)|}.argmax(1).eq(y).sum().item<long>());
                        }
                    }
                }
        """,
            members: """
            static void TrainEpoch(Net model, optim.Optimizer optimizer, IReadOnlyList<(Tensor x, Tensor y)> train)
            {
        """ + NoMarker(TrainLoop) + """
            }
        """), MLP007());

    [Fact]
    public Task C05_unusual_members_do_not_throw()
        => NoAnalyzerException(Net + """
            record Holder(Net Model);

            class Odd(Net model, IReadOnlyList<(Tensor x, Tensor y)> train)
            {
                private readonly optim.Optimizer optimizer = optim.Adam(model.parameters());

                public Odd() : this(new Net(), new List<(Tensor x, Tensor y)>())
                {
                    model.eval();
                    foreach (var (x, y) in train) { optimizer.zero_grad(); functional.cross_entropy(model.call(x), y).backward(); optimizer.step(); }
                }

                public long this[int i]
                {
                    get { model.train(); using (torch.no_grad()) { long s = 0; foreach (var (x, y) in train) s += model.call(x).argmax(1).item<long>(); return s; } }
                }

                public long Accuracy
                {
                    get { model.eval(); long s = 0; foreach (var (x, y) in train) s += model.call(x).argmax(1).eq(y).sum().item<long>(); return s; }
                    init { model.train(); }
                }

                public static Odd operator +(Odd a, Odd b) { a.Run(new Holder(new Net())); return b; }

                void Run(Holder h)
                {
                    h.Model.eval();
                    checked
                    {
                        for (var (i, j) = (0, 1); i < 3; i++, j++)
                        {
                            foreach (var (x, y) in train)
                            {
                                optimizer.zero_grad();
            #if DEBUG
                                functional.cross_entropy(h.Model.call(x), y).backward();
            #else
                                functional.cross_entropy(model.call(x), y).backward();
            #endif
                                optimizer.step();
                            }
                            (h with { Model = new Net() }).Model.eval();
                            lock (this) { model.eval(); }
                        }
                    }
                }
            }
            """);

    // The review also timed this at 50/100/200 loops (0.3/0.9/4.8 s, superlinear before the per-graph loop table); timing
    // belongs in the benchmarks (--profile), so the test keeps only the crash check.
    [Fact]
    public async Task C06_a_long_method_with_many_epoch_loops_does_not_throw()
    {
        const int count = 20;
        var body = new System.Text.StringBuilder();
        for (var i = 0; i < count; i++)
        {
            body.AppendLine($$"""
                    var m{{i}} = new Net();
                    var o{{i}} = optim.Adam(m{{i}}.parameters());
                    for (int e = 0; e < epochs; e++)
                    {
                        if (e % 3 == 0) m{{i}}.train();
                        foreach (var (x, y) in train)
                        {
                            o{{i}}.zero_grad();
                            functional.cross_entropy(m{{i}}.call(x), y).backward();
                            o{{i}}.step();
                        }
                        m{{i}}.eval();
                        using (torch.no_grad()) foreach (var (x, y) in train) Log(m{{i}}.call(x).argmax(1).item<long>());
                    }
            """);
        }

        var source = Net + "class Big { static void Log(double v) { } void Run(IReadOnlyList<(Tensor x, Tensor y)> train, int epochs) {\n" + body + "} }";
        var compilation = AllAnalyzers.Compile(LanguageVersion.Latest, addUsings: true, source);
        var analyzers = System.Collections.Immutable.ImmutableArray.Create<Microsoft.CodeAnalysis.Diagnostics.DiagnosticAnalyzer>(
            new MlPitfalls.Analyzers.TrainEval.EvaluatedInTrainingModeAnalyzer(), new MlPitfalls.Analyzers.TrainEval.TrainedInEvaluationModeAnalyzer());
        var found = await Microsoft.CodeAnalysis.Diagnostics.DiagnosticAnalyzerExtensions.WithAnalyzers(compilation, analyzers).GetAnalyzerDiagnosticsAsync();
        Assert.DoesNotContain(found, d => d.Id == "AD0001");
    }
}
