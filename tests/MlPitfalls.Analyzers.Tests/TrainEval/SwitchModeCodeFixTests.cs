using System.Threading.Tasks;
using Microsoft.CodeAnalysis.Testing;
using Xunit;
using EvaluatedVerifier = MlPitfalls.Analyzers.Tests.Verifiers.Verify<
    MlPitfalls.Analyzers.TrainEval.EvaluatedInTrainingModeAnalyzer,
    MlPitfalls.CodeFixes.TrainEval.SwitchModeCodeFix>;
using TrainedVerifier = MlPitfalls.Analyzers.Tests.Verifiers.Verify<
    MlPitfalls.Analyzers.TrainEval.TrainedInEvaluationModeAnalyzer,
    MlPitfalls.CodeFixes.TrainEval.SwitchModeCodeFix>;

namespace MlPitfalls.Analyzers.Tests.TrainEval;

public class SwitchModeCodeFixTests
{
    private static DiagnosticResult MLP007(int marker = 0) => EvaluatedVerifier.DiagnosticAnyMessage(Descriptors.MLP007_EvaluatedInTrainingMode).WithLocation(marker);

    private static DiagnosticResult MLP008(int marker = 0) => TrainedVerifier.DiagnosticAnyMessage(Descriptors.MLP008_TrainedInEvaluationMode).WithLocation(marker);

    private static string Trainer(string body) => $$"""
        class Net : Module<Tensor, Tensor>
        {
            private readonly Module<Tensor, Tensor> fc = nn.Linear(4, 2);
            private readonly Module<Tensor, Tensor> drop = nn.Dropout(0.5);
            public Net() : base("net") => RegisterComponents();
            public override Tensor forward(Tensor x) => fc.call(drop.call(x));
        }

        class Trainer
        {
            void Run(IReadOnlyList<(Tensor x, Tensor y)> batches, int epochs)
            {
                var model = new Net();
                var optimizer = optim.SGD(model.parameters(), 0.01);
        {{body}}
            }
        }
        """;

    [Fact]
    public Task Eval_is_inserted_before_the_no_grad_block()
        => EvaluatedVerifier.CodeFixAsync(
            Trainer("""
                foreach (var (x, y) in batches)
                {
                    optimizer.zero_grad();
                    functional.cross_entropy(model.call(x), y).backward();
                    optimizer.step();
                }

                using (torch.no_grad())
                {
                    Console.WriteLine({|#0:model.call(batches[0].x)|}.argmax(1).item<long>());
                }
        """),
            Trainer("""
                foreach (var (x, y) in batches)
                {
                    optimizer.zero_grad();
                    functional.cross_entropy(model.call(x), y).backward();
                    optimizer.step();
                }

                model.eval();
                using (torch.no_grad())
                {
                    Console.WriteLine(model.call(batches[0].x).argmax(1).item<long>());
                }
        """),
            MLP007());

    [Fact]
    public Task In_an_epoch_loop_that_calls_train_at_its_top_eval_goes_before_the_validation()
        => EvaluatedVerifier.CodeFixAsync(
            Trainer("""
                for (int epoch = 0; epoch < epochs; epoch++)
                {
                    model.train();
                    foreach (var (x, y) in batches)
                    {
                        optimizer.zero_grad();
                        functional.cross_entropy(model.call(x), y).backward();
                        optimizer.step();
                    }

                    using var _ = torch.no_grad();
                    foreach (var (x, y) in batches)
                    {
                        Console.WriteLine({|#0:model.call(x)|}.argmax(1).eq(y).sum().item<long>());
                    }
                }
        """),
            Trainer("""
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
                    using var _ = torch.no_grad();
                    foreach (var (x, y) in batches)
                    {
                        Console.WriteLine(model.call(x).argmax(1).eq(y).sum().item<long>());
                    }
                }
        """),
            MLP007());

    [Fact]
    public Task In_an_epoch_loop_that_does_not_switch_back_itself_train_follows_the_validation_block()
        => EvaluatedVerifier.CodeFixAsync(
            Trainer("""
                model.train();
                for (int epoch = 0; epoch < epochs; epoch++)
                {
                    foreach (var (x, y) in batches)
                    {
                        optimizer.zero_grad();
                        functional.cross_entropy(model.call(x), y).backward();
                        optimizer.step();
                    }

                    using (torch.no_grad())
                    {
                        Console.WriteLine({|#0:model.call(batches[0].x)|}.argmax(1).item<long>());
                    }
                }
        """),
            Trainer("""
                model.train();
                for (int epoch = 0; epoch < epochs; epoch++)
                {
                    foreach (var (x, y) in batches)
                    {
                        optimizer.zero_grad();
                        functional.cross_entropy(model.call(x), y).backward();
                        optimizer.step();
                    }

                    model.eval();
                    using (torch.no_grad())
                    {
                        Console.WriteLine(model.call(batches[0].x).argmax(1).item<long>());
                    }
                    model.train();
                }
        """),
            MLP007());

    [Fact]
    public Task A_using_var_guard_in_a_loop_that_does_not_switch_back_itself_gets_no_fix()
        => EvaluatedVerifier.NoCodeFixAsync(
            Trainer("""
                model.train();
                for (int epoch = 0; epoch < epochs; epoch++)
                {
                    foreach (var (x, y) in batches)
                    {
                        optimizer.zero_grad();
                        functional.cross_entropy(model.call(x), y).backward();
                        optimizer.step();
                    }

                    using var _ = torch.no_grad();
                    Console.WriteLine({|#0:model.call(batches[0].x)|}.argmax(1).item<long>());
                }
        """),
            MLP007());

    private const string FieldTrainer = """
        class Net : Module<Tensor, Tensor>
        {
            private readonly Module<Tensor, Tensor> fc = nn.Linear(4, 2);
            private readonly Module<Tensor, Tensor> drop = nn.Dropout(0.5);
            public Net() : base("net") => RegisterComponents();
            public override Tensor forward(Tensor x) => fc.call(drop.call(x));
        }

        class Trainer
        {
            private readonly Net _model = new Net();

            public void TrainEpoch(IReadOnlyList<(Tensor x, Tensor y)> batches, optim.Optimizer optimizer)
            {
                foreach (var (x, y) in batches)
                {
                    optimizer.zero_grad();
                    functional.cross_entropy(_model.call(x), y).backward();
                    optimizer.step();
                }
            }

        """;

    [Fact]
    public Task For_a_field_the_class_never_switches_eval_goes_before_the_evaluation_and_train_after_it()
        => EvaluatedVerifier.CodeFixAsync(
            FieldTrainer + """
                public long Evaluate(IReadOnlyList<(Tensor x, Tensor y)> batches)
                {
                    var correct = 0L;
                    using (torch.no_grad())
                    {
                        foreach (var (x, y) in batches)
                        {
                            correct += {|#0:_model.call(x)|}.argmax(1).eq(y).sum().item<long>();
                        }
                    }

                    return correct;
                }
            }
            """,
            FieldTrainer + """
                public long Evaluate(IReadOnlyList<(Tensor x, Tensor y)> batches)
                {
                    var correct = 0L;
                    _model.eval();
                    using (torch.no_grad())
                    {
                        foreach (var (x, y) in batches)
                        {
                            correct += _model.call(x).argmax(1).eq(y).sum().item<long>();
                        }
                    }
                    _model.train();

                    return correct;
                }
            }
            """,
            MLP007());

    [Fact]
    public Task For_a_field_the_class_never_switches_a_return_inside_the_evaluation_leaves_no_fix()
        => EvaluatedVerifier.NoCodeFixAsync(
            FieldTrainer + """
                public long Evaluate(IReadOnlyList<(Tensor x, Tensor y)> batches)
                {
                    using (torch.no_grad())
                    {
                        return {|#0:_model.call(batches[0].x)|}.argmax(1).item<long>();
                    }
                }
            }
            """,
            MLP007());

    [Fact]
    public Task Train_is_inserted_at_the_start_of_the_epoch_loop()
        => TrainedVerifier.CodeFixAsync(
            Trainer("""
                for (int epoch = 0; epoch < epochs; epoch++)
                {
                    foreach (var (x, y) in batches)
                    {
                        optimizer.zero_grad();
                        functional.cross_entropy({|#0:model.call(x)|}, y).backward();
                        optimizer.step();
                    }

                    model.eval();
                }
        """),
            Trainer("""
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
                }
        """),
            MLP008());

    [Fact]
    public Task Train_is_inserted_before_fine_tuning_after_an_evaluation()
        => TrainedVerifier.CodeFixAsync(
            Trainer("""
                model.eval();
                foreach (var (x, y) in batches)
                {
                    optimizer.zero_grad();
                    functional.cross_entropy({|#0:model.call(x)|}, y).backward();
                    optimizer.step();
                }
        """),
            Trainer("""
                model.eval();
                model.train();
                foreach (var (x, y) in batches)
                {
                    optimizer.zero_grad();
                    functional.cross_entropy(model.call(x), y).backward();
                    optimizer.step();
                }
        """),
            MLP008());

    [Fact]
    public Task A_loop_body_without_braces_gets_a_block()
        => TrainedVerifier.CodeFixAsync(
            Trainer("""
                for (int epoch = 0; epoch < epochs; epoch++)
                    foreach (var (x, y) in batches)
                    {
                        optimizer.zero_grad();
                        functional.cross_entropy({|#0:model.call(x)|}, y).backward();
                        optimizer.step();
                        model.eval();
                    }
        """),
            Trainer("""
                for (int epoch = 0; epoch < epochs; epoch++)
                    foreach (var (x, y) in batches)
                    {
                        model.train();
                        optimizer.zero_grad();
                        functional.cross_entropy(model.call(x), y).backward();
                        optimizer.step();
                        model.eval();
                    }
        """),
            MLP008());

    [Fact]
    public async Task Fix_all_switches_each_block_once()
    {
        var test = EvaluatedVerifier.Create();
        test.TestCode = EvaluatedVerifier.Usings + Trainer("""
                using (torch.no_grad())
                {
                    Console.WriteLine({|#0:model.call(batches[0].x)|}.argmax(1).item<long>());
                    Console.WriteLine({|#1:model.call(batches[1].x)|}.argmax(1).item<long>());
                }
        """);
        test.FixedCode = EvaluatedVerifier.Usings + Trainer("""
                model.eval();
                using (torch.no_grad())
                {
                    Console.WriteLine(model.call(batches[0].x).argmax(1).item<long>());
                    Console.WriteLine(model.call(batches[1].x).argmax(1).item<long>());
                }
        """);
        test.ExpectedDiagnostics.Add(MLP007(0));
        test.ExpectedDiagnostics.Add(MLP007(1));
        test.NumberOfFixAllIterations = 1;
        test.NumberOfIncrementalIterations = 1;
        await test.RunAsync();
    }
}
