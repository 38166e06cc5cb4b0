using System.Threading.Tasks;
using Microsoft.CodeAnalysis.Testing;
using Xunit;
using Verifier = MlPitfalls.Analyzers.Tests.Verifiers.Verify<
    MlPitfalls.Analyzers.TrainEval.TrainedInEvaluationModeAnalyzer,
    Microsoft.CodeAnalysis.Testing.EmptyCodeFixProvider>;

namespace MlPitfalls.Analyzers.Tests.TrainEval;

public class TrainedInEvaluationModeTests
{
    private static DiagnosticResult MLP008(int marker = 0) => Verifier.DiagnosticAnyMessage(Descriptors.MLP008_TrainedInEvaluationMode).WithLocation(marker);

    /// <summary>A model with dropout and batch normalization, and a trainer whose Run method has <paramref name="body"/>.</summary>
    private static string Trainer(string body, string model = "new Net()", string members = "") => $$"""
        class Net : Module<Tensor, Tensor>
        {
            private readonly Module<Tensor, Tensor> fc1 = nn.Linear(784, 128);
            private readonly Module<Tensor, Tensor> norm = nn.BatchNorm1d(128);
            private readonly Module<Tensor, Tensor> drop = nn.Dropout(0.5);
            private readonly Module<Tensor, Tensor> fc2 = nn.Linear(128, 10);
            public Net() : base("net") => RegisterComponents();
            public override Tensor forward(Tensor x) => fc2.call(drop.call(functional.relu(norm.call(fc1.call(x)))));
        }

        class Trainer
        {
            void Run(IReadOnlyList<(Tensor x, Tensor y)> train, IReadOnlyList<(Tensor x, Tensor y)> valid, int epochs)
            {
                var model = {{model}};
                var optimizer = optim.SGD(model.parameters(), 0.01);
        {{body}}
            }

            static void Log(double value) => Console.WriteLine(value);
        {{members}}
        }
        """;

    private const string TrainLoop = """
                    foreach (var (x, y) in train)
                    {
                        optimizer.zero_grad();
                        var output = {|#0:model.call(x)|};
                        var loss = functional.cross_entropy(output, y);
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

    // ---------------------------------------------------------------- reported

    [Fact]
    public Task Eval_at_the_end_of_each_epoch_and_no_train_at_the_start_is_reported()
        => Verifier.AnalyzerAsync(Trainer("""
                model.train();
                for (int epoch = 0; epoch < epochs; epoch++)
                {
        """ + TrainLoop + """
                    model.eval();
        """ + Validate + """
                }
        """), MLP008());

    [Fact]
    public Task The_message_names_the_loop_and_where_eval_was_called()
        => Verifier.AnalyzerAsync(
            Trainer("""
                for (int epoch = 0; epoch < epochs; epoch++)
                {
        """ + TrainLoop + """
                    model.eval();
                }
        """),
            Verifier.Diagnostic(Descriptors.MLP008_TrainedInEvaluationMode).WithLocation(0).WithArguments(
                "model", " from the second iteration of the loop at line 24 on", "set by 'model.eval()' at line 32", "at the start of each iteration of that loop"));

    [Fact]
    public Task Fine_tuning_after_an_evaluation_is_reported()
        => Verifier.AnalyzerAsync(Trainer("""
                model.eval();
        """ + Validate + TrainLoop), MLP008());

    [Fact]
    public Task Eval_in_a_helper_called_at_the_end_of_each_epoch_is_followed()
        => Verifier.AnalyzerAsync(
            Trainer(
                """
                while (epochs-- > 0)
                {
        """ + TrainLoop + """
                    Evaluate(model, valid);
                }
        """,
                members: """
            private static void Evaluate(Module<Tensor, Tensor> net, IReadOnlyList<(Tensor x, Tensor y)> batches)
            {
                net.eval();
                using var _ = torch.no_grad();
                foreach (var (x, y) in batches)
                {
                    Log(net.call(x).argmax(1).eq(y).sum().item<long>());
                }
            }
        """),
            MLP008());

    [Fact]
    public Task Generating_samples_in_eval_mode_inside_the_loop_without_switching_back_is_reported()
        => Verifier.AnalyzerAsync(Trainer("""
                for (int epoch = 0; epoch < epochs; epoch++)
                {
        """ + TrainLoop + """
                    if (epoch % 10 == 0)
                    {
                        model.eval();
                    }

                    model.eval();
                    Log(model.call(valid[0].x).sum().item<float>());
                }
        """), MLP008());

    // ---------------------------------------------------------------- not reported

    [Fact]
    public Task Train_at_the_top_of_each_epoch_is_correct()
        => Verifier.AnalyzerAsync(Trainer(NoMarker("""
                for (int epoch = 0; epoch < epochs; epoch++)
                {
                    model.train();
        """ + TrainLoop + """
                    model.eval();
        """ + Validate + """
                }
        """)));

    [Fact]
    public Task Train_in_the_training_helper_is_correct()
        => Verifier.AnalyzerAsync(Trainer(
            """
                for (int epoch = 0; epoch < epochs; epoch++)
                {
                    TrainEpoch(model, optimizer, train);
                    model.eval();
        """ + Validate + """
                }
        """,
            members: """
            private static void TrainEpoch(Module<Tensor, Tensor> model, optim.Optimizer optimizer, IReadOnlyList<(Tensor x, Tensor y)> train)
            {
                model.train();
        """ + NoMarker(TrainLoop) + """
            }
        """));

    [Fact]
    public Task Training_that_never_calls_eval_is_correct()
        => Verifier.AnalyzerAsync(Trainer(NoMarker("""
                for (int epoch = 0; epoch < epochs; epoch++)
                {
        """ + TrainLoop + """
                }
        """)));

    [Fact]
    public Task A_train_flag_leaves_the_mode_unknown()
        => Verifier.AnalyzerAsync(Trainer(NoMarker("""
                for (int epoch = 0; epoch < epochs; epoch++)
                {
                    model.train(epoch > 0);
        """ + TrainLoop + """
                    model.eval();
                }
        """)));

    [Fact]
    public Task An_overridden_train_makes_the_mode_unknown()
        => Verifier.AnalyzerAsync(
            Trainer(
                NoMarker("""
                for (int epoch = 0; epoch < epochs; epoch++)
                {
        """ + TrainLoop + """
                    model.eval();
                }
        """),
                model: "new FrozenNorm()",
                members: """
            }

            class FrozenNorm : Module<Tensor, Tensor>
            {
                private readonly Module<Tensor, Tensor> fc = nn.Linear(4, 4);
                private readonly Module<Tensor, Tensor> norm = nn.BatchNorm1d(4);
                public FrozenNorm() : base("frozen") => RegisterComponents();
                public override Tensor forward(Tensor x) => norm.call(fc.call(x));
                public override void train(bool on = true) { base.train(on); norm.eval(); }
        """));

    [Fact]
    public Task A_model_without_dropout_or_batch_norm_is_not_reported()
        => Verifier.AnalyzerAsync(Trainer(
            NoMarker("""
                for (int epoch = 0; epoch < epochs; epoch++)
                {
        """ + TrainLoop + """
                    model.eval();
                }
        """),
            model: "nn.Sequential(nn.Linear(784, 10))"));

    [Fact]
    public Task Validation_forward_in_the_epoch_loop_is_not_a_training_use()
        => Verifier.AnalyzerAsync(Trainer(NoMarker("""
                for (int epoch = 0; epoch < epochs; epoch++)
                {
                    model.train();
        """ + TrainLoop + """
                    model.eval();
                    var validationLoss = functional.cross_entropy(model.call(valid[0].x), valid[0].y);
                    Log(validationLoss.item<float>());
                }
        """)));

    // ---------------------------------------------------------------- iterator methods

    private const string Predictions = """
            static IEnumerable<long> Predictions(Net m, IReadOnlyList<(Tensor x, Tensor y)> data)
            {
                m.eval();
                using var _ = torch.no_grad();
                foreach (var (x, _) in data)
                {
                    yield return m.call(x).argmax(1).item<long>();
                }
        """;

    private const string TrainAgain = """
                    foreach (var (x, y) in train)
                    {
                        optimizer.zero_grad();
                        functional.cross_entropy({|#0:model.call(x)|}, y).backward();
                        optimizer.step();
                    }
        """;

    private static string Unmarked(string code) => code.Replace("{|#0:", "").Replace("|}", "");

    [Fact]
    public Task Training_after_enumerating_an_iterator_that_switches_to_eval_is_reported()
        => Verifier.AnalyzerAsync(
            Trainer("""
                    foreach (var p in Predictions(model, valid)) Log(p);
            """ + TrainAgain, members: Predictions + """
                }
            """),
            MLP008());

    [Fact]
    public Task An_iterator_that_switches_back_to_train_at_its_end_leaves_training_mode()
        => Verifier.AnalyzerAsync(
            Trainer("""
                    foreach (var p in Predictions(model, valid)) Log(p);
            """ + Unmarked(TrainAgain), members: Predictions + """
                    m.train();
                }
            """));

    [Fact]
    public Task Leaving_the_enumeration_early_leaves_the_mode_unknown()
        => Verifier.AnalyzerAsync(
            Trainer("""
                    foreach (var p in Predictions(model, valid))
                    {
                        if (p < 0) break;
                        Log(p);
                    }
            """ + Unmarked(TrainAgain), members: Predictions + """
                    m.train();
                }
            """));

    [Theory]
    // The iterator restores the mode in a finally, or is enumerated where the analysis cannot follow it.
    [InlineData("foreach (var p in Predictions(model, valid)) Log(p);", "try { foreach (var (x, _) in data) { yield return m.call(x).argmax(1).item<long>(); } } finally { m.eval(); }")]
    [InlineData("var all = Predictions(model, valid).ToList();", "")]
    [InlineData("var lazy = Predictions(model, valid); model.train(); foreach (var p in lazy) Log(p);", "")]
    public Task Iterator_steps_the_analysis_cannot_follow_are_not_judged(string enumerate, string more)
        => Verifier.AnalyzerAsync(
            Trainer(enumerate + Unmarked(TrainAgain), members: Predictions + more + """
                }
            """));

    [Fact]
    public Task Inside_the_enumeration_the_body_runs_in_the_mode_the_iterator_set()
        => Verifier.AnalyzerAsync(
            Trainer("""
                    foreach (var p in Predictions(model, valid))
                    {
            """ + TrainAgain + """
                    }
            """, members: Predictions + """
                    m.train();
                }
            """),
            MLP008());
}
