using System.Threading.Tasks;
using Microsoft.CodeAnalysis.Testing;
using Xunit;
using static MlPitfalls.Analyzers.Tests.TrainEval.ModePrograms;
using Verifier = MlPitfalls.Analyzers.Tests.Verifiers.Verify<
    MlPitfalls.Analyzers.TrainEval.EvaluatedInTrainingModeAnalyzer,
    Microsoft.CodeAnalysis.Testing.EmptyCodeFixProvider>;

namespace MlPitfalls.Analyzers.Tests.TrainEval;

public class EvaluatedInTrainingModeTests
{
    private static DiagnosticResult MLP007(int marker = 0) => Verifier.DiagnosticAnyMessage(Descriptors.MLP007_EvaluatedInTrainingMode).WithLocation(marker);

    /// <summary>A model with dropout (its mode matters), and a trainer whose Run method has <paramref name="body"/>.</summary>
    private static string Trainer(string body, string model = "new Net()") => $$"""
        class Net : Module<Tensor, Tensor>
        {
            private readonly Module<Tensor, Tensor> fc1 = nn.Linear(784, 128);
            private readonly Module<Tensor, Tensor> drop = nn.Dropout(0.5);
            private readonly Module<Tensor, Tensor> fc2 = nn.Linear(128, 10);
            public Net() : base("net") => RegisterComponents();
            public override Tensor forward(Tensor x) => fc2.call(drop.call(functional.relu(fc1.call(x))));
        }

        class Trainer
        {
            void Run(IReadOnlyList<(Tensor x, Tensor y)> train, IReadOnlyList<(Tensor x, Tensor y)> valid, int epochs)
            {
                var model = {{model}};
                var optimizer = optim.Adam(model.parameters());
        {{body}}
            }

            static void Log(double value) => Console.WriteLine(value);
        }
        """;

    private const string TrainLoop = """
                foreach (var (x, y) in train)
                {
                    optimizer.zero_grad();
                    var loss = functional.cross_entropy(model.call(x), y);
                    loss.backward();
                    optimizer.step();
                }
        """;

    // ---------------------------------------------------------------- reported

    [Fact]
    public Task Validation_in_no_grad_after_training_without_eval_is_reported()
        => Verifier.AnalyzerAsync(Trainer(TrainLoop + """
                using (torch.no_grad())
                {
                    foreach (var (x, y) in valid)
                    {
                        Log(functional.cross_entropy({|#0:model.call(x)|}, y).item<float>());
                    }
                }
        """), MLP007());

    [Fact]
    public Task Validation_loop_without_no_grad_that_only_measures_is_reported()
        => Verifier.AnalyzerAsync(Trainer(TrainLoop + """
                foreach (var (x, y) in valid)
                {
                    var predicted = {|#0:model.call(x)|}.argmax(1);
                    Log(predicted.eq(y).sum().item<long>());
                }
        """), MLP007());

    [Fact]
    public Task Validation_inside_the_epoch_loop_with_train_at_its_top_is_reported()
        => Verifier.AnalyzerAsync(Trainer("""
                for (int epoch = 0; epoch < epochs; epoch++)
                {
                    model.train();
        """ + TrainLoop + """
                    using var _ = torch.no_grad();
                    foreach (var (x, y) in valid)
                    {
                        Log({|#0:model.call(x)|}.argmax(1).eq(y).sum().item<long>());
                    }
                }
        """), MLP007());

    [Fact]
    public Task A_bare_set_grad_enabled_false_makes_an_evaluation()
        => Verifier.AnalyzerAsync(Trainer(TrainLoop + """
                torch.set_grad_enabled(false);
                var output = {|#0:model.call(valid[0].x)|};
                Log(output.argmax(1).eq(valid[0].y).sum().item<long>());
        """), MLP007());

    [Fact]
    public Task Inference_right_after_creation_without_eval_is_reported()
        => Verifier.AnalyzerAsync(Trainer("""
                model.load("weights.dat");
                using (torch.inference_mode())
                {
                    Log({|#0:model.call(valid[0].x)|}.argmax(1).item<long>());
                }
        """), MLP007());

    [Fact]
    public Task A_helper_that_trains_and_leaves_training_mode_is_followed()
        => Verifier.AnalyzerAsync(Trainer("""
                Fit(model, optimizer, train);
                using (torch.no_grad())
                {
                    Log({|#0:model.call(valid[0].x)|}.argmax(1).item<long>());
                }
            }

            private static void Fit(Net net, optim.Optimizer optimizer, IReadOnlyList<(Tensor x, Tensor y)> batches)
            {
                net.train();
                foreach (var (x, y) in batches)
                {
                    optimizer.zero_grad();
                    functional.cross_entropy(net.call(x), y).backward();
                    optimizer.step();
                }
        """), MLP007());

    [Fact]
    public Task The_message_names_the_module_and_where_its_mode_was_set()
        => Verifier.AnalyzerAsync(
            Trainer("""
                model.train();
        """ + TrainLoop + """
                using (torch.no_grad())
                {
                    Log({|#0:model.call(valid[0].x)|}.argmax(1).item<long>());
                }
        """),
            Verifier.Diagnostic(Descriptors.MLP007_EvaluatedInTrainingMode).WithLocation(0).WithArguments("model", "set by 'model.train()' at line 23"));

    // ---------------------------------------------------------------- not reported

    [Theory]
    // eval() before the evaluation, directly, through train(false), or in a helper.
    [InlineData("model.eval();")]
    [InlineData("model.train(false);")]
    [InlineData("SetEval(model);")]
    public Task Eval_before_the_evaluation_is_not_reported(string switchMode)
        => Verifier.AnalyzerAsync(Trainer(TrainLoop + switchMode + """
                using (torch.no_grad())
                {
                    foreach (var (x, y) in valid)
                    {
                        Log(functional.cross_entropy(model.call(x), y).item<float>());
                    }
                }
            }

            private static void SetEval(Module<Tensor, Tensor> m) => m.eval();
            private static void Unused()
            {
        """));

    [Fact]
    public Task Eval_in_one_branch_only_leaves_the_mode_unknown()
        => Verifier.AnalyzerAsync(Trainer(TrainLoop + """
                if (epochs > 1) model.eval();
                using (torch.no_grad())
                {
                    Log(model.call(valid[0].x).argmax(1).item<long>());
                }
        """));

    [Fact]
    public Task Train_right_before_a_no_grad_evaluation_is_deliberate_monte_carlo_dropout()
        => Verifier.AnalyzerAsync(Trainer(TrainLoop + """
                model.eval();
                model.train(); // Monte-Carlo dropout: keep dropout on while sampling predictions
                using (torch.no_grad())
                {
                    for (int i = 0; i < 20; i++)
                    {
                        Log(model.call(valid[0].x).softmax(1).max().item<float>());
                    }
                }
        """));

    [Fact]
    public Task A_model_without_dropout_or_batch_norm_is_not_reported()
        => Verifier.AnalyzerAsync(Trainer(TrainLoop + """
                using (torch.no_grad())
                {
                    Log(model.call(valid[0].x).argmax(1).item<long>());
                }
        """, model: "nn.Sequential(nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10))"));

    [Fact]
    public Task A_sequential_with_dropout_is_reported()
        => Verifier.AnalyzerAsync(Trainer(TrainLoop + """
                using (torch.no_grad())
                {
                    Log({|#0:model.call(valid[0].x)|}.argmax(1).item<long>());
                }
        """, model: "nn.Sequential(nn.Linear(784, 128), nn.ReLU(), nn.Dropout(0.2), nn.Linear(128, 10))"), MLP007());

    [Fact]
    public Task A_train_flag_leaves_the_mode_unknown()
        => Verifier.AnalyzerAsync(Trainer("""
                var training = epochs > 0;
                model.train(training);
                using (torch.no_grad())
                {
                    Log(model.call(valid[0].x).argmax(1).item<long>());
                }
        """));

    [Fact]
    public Task A_parameter_or_field_whose_mode_the_method_does_not_set_is_not_reported()
        => Verifier.AnalyzerAsync("""
            class Evaluator
            {
                private readonly Module<Tensor, Tensor> model;
                public Evaluator(Module<Tensor, Tensor> model) => this.model = model;

                public long Evaluate(Tensor x, Module<Tensor, Tensor> other)
                {
                    using (torch.no_grad())
                    {
                        return model.call(x).argmax(1).item<long>() + other.call(x).argmax(1).item<long>();
                    }
                }
            }
            """);

    [Fact]
    public Task A_gradient_accumulated_over_a_loop_and_applied_after_it_is_training()
        => Verifier.AnalyzerAsync(Trainer("""
                var outputs = new List<Tensor>();
                foreach (var (x, y) in train)
                {
                    outputs.Add(functional.cross_entropy(model.call(x), y));
                }

                torch.stack(outputs).sum().backward();
                optimizer.step();
        """));

    [Fact]
    public Task A_loop_that_calls_a_training_helper_is_not_an_evaluation()
        => Verifier.AnalyzerAsync(Trainer("""
                foreach (var (x, y) in train)
                {
                    var output = model.call(x);
                    Step(output, y, optimizer);
                }
            }

            private static void Step(Tensor output, Tensor y, optim.Optimizer optimizer)
            {
                optimizer.zero_grad();
                functional.cross_entropy(output, y).backward();
                optimizer.step();
        """));

    [Fact]
    public Task A_module_created_and_evaluated_through_another_alias_after_eval_is_not_reported()
        => Verifier.AnalyzerAsync(Trainer(TrainLoop + """
                var same = model;
                same.eval();
                using (torch.no_grad())
                {
                    Log(model.call(valid[0].x).argmax(1).item<long>());
                }
        """));

    [Fact]
    public Task A_loop_that_only_runs_forward_passes_is_no_evaluation()
        => Verifier.AnalyzerAsync(Trainer("""
                // Fill batch-norm statistics, or a unit test of a layer over devices: nothing is measured.
                for (int i = 0; i < 5; i++)
                {
                    model.call(valid[0].x);
                }

                foreach (var (x, y) in valid)
                {
                    var output = model.call(x);
                    Console.WriteLine(output.shape[0]);
                }
        """));

    [Fact]
    public Task A_validation_loss_read_as_a_number_is_a_measurement()
        => Verifier.AnalyzerAsync(Trainer(TrainLoop + """
                var total = 0.0;
                foreach (var (x, y) in valid)
                {
                    var output = {|#0:model.call(x)|};
                    var loss = functional.cross_entropy(output, y);
                    total += loss.item<float>();
                }
        """), MLP007());

    [Fact]
    public Task Outside_loops_and_grad_disabled_scopes_a_forward_pass_is_not_judged()
        => Verifier.AnalyzerAsync(Trainer("""
                var output = model.call(valid[0].x);
                Log(output.argmax(1).item<long>());
        """));

    [Fact]
    public Task A_forward_in_a_lambda_is_not_judged()
        => Verifier.AnalyzerAsync(Trainer(TrainLoop + """
                Func<Tensor, Tensor> predict = x => { using (torch.no_grad()) { return model.call(x); } };
                Log(predict(valid[0].x).argmax(1).item<long>());
        """));

    // ---------------------------------------------------------------- a field its class never switches

    private const string Evaluate = """
            public double Evaluate(IReadOnlyList<(Tensor x, Tensor y)> data)
            {
                using var _ = torch.no_grad();
                var correct = 0L;
                foreach (var (x, y) in data)
                {
                    correct += {|#0:_model.call(x)|}.argmax(1).eq(y).sum().item<long>();
                }

                return correct;
            }
        """;

    [Fact]
    public Task An_evaluate_method_on_a_field_the_class_never_switches_is_reported()
        => Verifier.AnalyzerAsync(
            FieldTrainer(Evaluate),
            Verifier.Diagnostic(Descriptors.MLP007_EvaluatedInTrainingMode).WithLocation(0)
                .WithArguments("_model", "the class creates it in training mode and nothing in 'Trainer' switches it: created by 'new Net()' at line 17"));

    [Theory]
    // Created in the constructor, moved to a device, a TorchSharp container, a static field, this-qualified.
    [InlineData("private Net _model; public Trainer(int seed) { _model = new Net().to(torch.CPU); }")]
    [InlineData("private readonly Module<Tensor, Tensor> _model = nn.Sequential(nn.Linear(784, 10), nn.Dropout(0.5));")]
    [InlineData("private static readonly Net _model = new Net();")]
    [InlineData("private readonly Net _model = new(); private void Touch() => this._model.train();")]
    [InlineData("private readonly Net _model = new(); private void Move() { _model.to(torch.CPU); var count = _model.parameters().Count(); }")]
    public Task Class_wide_training_mode_is_found_however_the_field_is_created(string field)
        => Verifier.AnalyzerAsync(FieldTrainer(Evaluate, field), MLP007());

    [Fact]
    public Task An_inference_wrapper_that_never_switches_its_model_is_reported()
        => Verifier.AnalyzerAsync(DropoutNet + """
            class Classifier
            {
                private readonly Net _net = new Net();

                public Classifier(string weights) => _net.load(weights);

                public long[] Predict(Tensor[] batches)
                {
                    var result = new List<long>();
                    foreach (var batch in batches)
                    {
                        result.Add({|#0:_net.call(batch)|}.argmax(1).item<long>());
                    }

                    return result.ToArray();
                }
            }
            """, MLP007());

    [Theory]
    // The class switches the field somewhere (eval, train(false), train(flag), apply), so its mode at Evaluate depends on the caller.
    [InlineData("public void Freeze() => _model.eval();")]
    [InlineData("public void Freeze() => _model.train(false);")]
    [InlineData("public void Mode(bool on) => _model.train(on);")]
    [InlineData("public void Init() => _model.apply(m => { });")]
    // The field escapes: a helper, a property, an alias, a source method of the model may switch it.
    [InlineData("public void Save() => Helpers.Store(_model);")]
    [InlineData("public Net Model => _model;")]
    [InlineData("public void Alias() { var m = _model; m.eval(); }")]
    [InlineData("public void Share(List<Module> all) => all.Add(_model);")]
    // TorchSharp calls that hand out the module or its children: the caller can switch what they return.
    [InlineData("public void Freeze() { foreach (var m in _model.modules()) m.eval(); }")]
    [InlineData("public void Freeze() { foreach (var (_, m) in _model.named_children()) m.eval(); }")]
    [InlineData("public void Move() { var moved = _model.to(torch.CPU); moved.eval(); }")]
    public Task A_field_the_class_may_switch_or_hand_out_is_not_judged_class_wide(string member)
        => Verifier.AnalyzerAsync(FieldTrainer(Evaluate.Replace("{|#0:", "").Replace("|}", "") + member) + """

            static class Helpers { public static void Store(Module m) { } }
            """);

    [Theory]
    // Not private, created from outside, a module class's own child (the container can be switched from outside).
    [InlineData("public readonly Net _model = new Net();")]
    [InlineData("private readonly Net _model; public Trainer(Net model) { _model = model; }")]
    [InlineData("private readonly Net _model = Load(); private static Net Load() => new Net();")]
    public Task A_field_whose_mode_may_be_set_elsewhere_is_not_judged_class_wide(string field)
        => Verifier.AnalyzerAsync(FieldTrainer(Evaluate.Replace("{|#0:", "").Replace("|}", ""), field));

    [Fact]
    public Task A_module_class_s_own_child_is_not_judged_class_wide()
        => Verifier.AnalyzerAsync(DropoutNet + """
            class Ensemble : Module<Tensor, Tensor>
            {
                private readonly Net _member = new Net();
                public Ensemble() : base("ensemble") => RegisterComponents();
                public override Tensor forward(Tensor x) => _member.call(x);

                public long Vote(Tensor[] batches)
                {
                    using var _ = torch.no_grad();
                    var votes = 0L;
                    foreach (var batch in batches) votes += _member.call(batch).argmax(1).sum().item<long>();
                    return votes;
                }
            }
            """);

    [Fact]
    public Task A_model_whose_constructor_switches_to_eval_is_not_in_training_mode()
        => Verifier.AnalyzerAsync("""
            class Pretrained : Module<Tensor, Tensor>
            {
                private readonly Module<Tensor, Tensor> drop = nn.Dropout(0.5);
                public Pretrained() : base("p") { RegisterComponents(); eval(); }
                public override Tensor forward(Tensor x) => drop.call(x);
            }

            class Service
            {
                private readonly Pretrained _model = new Pretrained();

                public long Predict(Tensor[] batches)
                {
                    using var _ = torch.no_grad();
                    var sum = 0L;
                    foreach (var batch in batches) sum += _model.call(batch).argmax(1).sum().item<long>();
                    var local = new Pretrained();
                    foreach (var batch in batches) sum += local.call(batch).argmax(1).sum().item<long>();
                    return sum;
                }
            }
            """);

    [Fact]
    public Task A_model_without_dropout_or_batch_norm_is_not_judged_class_wide()
        => Verifier.AnalyzerAsync("""
            class Trainer
            {
                private readonly Module<Tensor, Tensor> _model = nn.Linear(4, 2);

                public long Predict(Tensor[] batches)
                {
                    using var _ = torch.no_grad();
                    var sum = 0L;
                    foreach (var batch in batches) sum += _model.call(batch).argmax(1).sum().item<long>();
                    return sum;
                }
            }
            """);

    [Fact]
    public Task A_field_in_an_incomplete_class_raises_no_analyzer_exception()
        => Verifier.AnalyzerAsync(DropoutNet + """
            class Trainer
            {
                private readonly Net _model = new Net();
                private readonly Net _model2;
                private void Reset() => {|CS0191:_model2|} = _model2.to({|CS1503:_model|});

                public long Predict(Tensor[] batches)
                {
                    using var _ = torch.no_grad();
                    return _model2.call(batches[0]).argmax(1).item<long>() + {|CS0103:_modell|}.call(batches[0]);
                }
            }
            """);

    [Fact]
    public Task Without_TorchSharp_nothing_is_reported()
        => Verifier.AnalyzerWithoutTorchSharpAsync("""
            class Module { public void train() { } public int call(int x) => x; }
            class C { void M() { var m = new Module(); m.train(); for (int i = 0; i < 3; i++) { m.call(i); } } }
            """);
}
