using System.Threading.Tasks;
using Microsoft.CodeAnalysis.Testing;
using Xunit;
using Verifier = MlPitfalls.Analyzers.Tests.Verifiers.Verify<
    MlPitfalls.Analyzers.Losses.LogitsLossGivenProbabilitiesAnalyzer,
    MlPitfalls.CodeFixes.Losses.LossPairingCodeFix>;

namespace MlPitfalls.Analyzers.Tests.Losses;

public class LogitsLossGivenProbabilitiesTests
{
    private static DiagnosticResult MLP002(int marker = 0) => Verifier.DiagnosticAnyMessage(Descriptors.MLP002_LogitsLossGivenProbabilities).WithLocation(marker);

    private static string Step(string body) => $$"""
        class Trainer
        {
            void Train(Module<Tensor, Tensor> model, Tensor x, Tensor y, bool flag)
            {
                var criterion = nn.CrossEntropyLoss();
        {{body}}
            }
        }
        """;

    // ---------------------------------------------------------------- the bug, every spelling

    [Theory]
    [InlineData("{|#0:model.call(x).softmax(1)|}")]
    [InlineData("{|#0:functional.softmax(model.call(x), 1)|}")]
    [InlineData("{|#0:torch.softmax(model.call(x), 1)|}")]
    [InlineData("{|#0:torch.special.softmax(model.call(x), 1)|}")]
    [InlineData("{|#0:model.call(x).softmax(-1)|}.view(-1, 10)")]
    [InlineData("{|#0:model.call(x).softmax(1)|}.squeeze()")]
    [InlineData("{|#0:model.call(x).softmax(1)|}.@float()")]
    [InlineData("{|#0:model.call(x).softmax(1)|}.@double()")]
    public Task Softmax_into_a_cross_entropy_module_is_reported_on_the_activation(string input)
        => Verifier.AnalyzerAsync(Step($"        var loss = criterion.call({input}, y);"), MLP002());

    [Fact]
    public Task Softmax_into_functional_cross_entropy_is_reported_with_a_message_naming_the_loss()
        => Verifier.AnalyzerAsync(
            Step("        var loss = functional.cross_entropy({|#0:model.call(x).softmax(1)|}, y);"),
            Verifier.Diagnostic(Descriptors.MLP002_LogitsLossGivenProbabilities).WithLocation(0).WithArguments(
                "'model.call(x).softmax(1)'", "cross_entropy",
                "it applies log_softmax itself, so the model trains through a double softmax whose gradients vanish as predictions grow " +
                "confident; pass the logits and apply softmax only where probabilities are needed"));

    [Fact]
    public Task Softmax_through_locals_and_reassignment_is_reported()
        => Verifier.AnalyzerAsync(Step("""
                    var logits = model.call(x);
                    var probs = {|#0:logits.softmax(1)|};
                    var flat = probs.reshape(-1, 10);
                    var loss = criterion.forward(flat, y);
            """), MLP002());

    [Fact]
    public Task Both_branches_softmax_reports_both()
        => Verifier.AnalyzerAsync(Step("""
                    Tensor probs;
                    if (flag) probs = {|#0:model.call(x).softmax(1)|};
                    else probs = {|#1:functional.softmax(model.call(x), 1)|};
                    var loss = criterion.call(probs, y);
            """), MLP002(0), MLP002(1));

    [Fact]
    public Task One_branch_softmax_is_not_reported()
        => Verifier.AnalyzerAsync(Step("""
                    var probs = model.call(x);
                    if (flag) probs = probs.softmax(1);
                    var loss = criterion.call(probs, y);
            """));

    [Fact]
    public Task Conditional_expression_of_two_softmaxes_is_reported()
        => Verifier.AnalyzerAsync(Step("""
                    var loss = criterion.call(flag ? {|#0:model.call(x).softmax(1)|} : {|#1:model.call(x + 1).softmax(1)|}, y);
            """), MLP002(0), MLP002(1));

    [Fact]
    public Task Reassigned_to_logits_before_the_loss_is_not_reported()
        => Verifier.AnalyzerAsync(Step("""
                    var t = model.call(x).softmax(1);
                    t = model.call(x);
                    var loss = criterion.call(t, y);
            """));

    [Fact]
    public Task Loop_carried_softmax_is_reported_only_when_every_iteration_brings_it()
        => Verifier.AnalyzerAsync(Step("""
                    var output = model.call(x);
                    for (int i = 0; i < 3; i++)
                    {
                        var loss = criterion.call(output, y);
                        output = output.softmax(1);
                    }

                    Tensor last = {|#0:model.call(x).softmax(1)|};
                    for (int i = 0; i < 3; i++)
                    {
                        var loss = criterion.call(last, y);
                        last = last.view(-1, 10);
                    }
            """), MLP002());

    [Fact]
    public Task Arithmetic_ends_the_provenance()
        => Verifier.AnalyzerAsync(Step("""
                    var probs = model.call(x).softmax(1);
                    var loss = criterion.call(probs * 2, y) + criterion.call(probs.log(), y);
            """));

    [Fact]
    public Task A_loss_in_a_closure_or_local_function_reads_the_model_local_it_captures()
        => Verifier.AnalyzerAsync("""
            class Trainer
            {
                void Closure(Tensor x, Tensor y)
                {
                    var model = nn.Sequential(("fc", nn.Linear(4, 3)), ("probs", {|#0:nn.Softmax(1)|}));
                    System.Func<Tensor> closure = () => functional.cross_entropy(model.call(x), y);
                    closure();
                }

                void LocalFunction(Tensor x, Tensor y)
                {
                    var model = nn.Sequential(("fc", nn.Linear(4, 3)), ("probs", {|#1:nn.Softmax(1)|}));
                    Tensor Step() => nn.CrossEntropyLoss().call(model.call(x), y);
                    Step();
                }

                void Appended(Tensor x, Tensor y)
                {
                    var model = nn.Sequential(nn.Linear(4, 3));
                    System.Func<Tensor> closure = () => functional.cross_entropy(model.call(x), y);
                    model.append(nn.Softmax(1)); // after the closure is written: what it sees depends on when it runs
                    closure();
                }
            }
            """, MLP002(0), MLP002(1));

    [Fact]
    public Task A_model_built_in_a_top_level_program_is_followed_through_its_local()
    {
        // A console program or notebook-style script: the Sequential is a top-level local, the loss a later statement.
        var test = new Verifier.Test(referenceTorchSharp: true, Microsoft.CodeAnalysis.CSharp.LanguageVersion.Latest)
        {
            TestCode = """
                using TorchSharp;
                using static TorchSharp.torch;
                using static TorchSharp.torch.nn;
                var x = torch.zeros(4, 784);
                var y = torch.zeros(new long[] { 4 }, ScalarType.Int64);
                var model = nn.Sequential(nn.Linear(784, 10), {|#0:nn.Softmax(1)|});
                for (int epoch = 0; epoch < 3; epoch++)
                {
                    var loss = functional.cross_entropy(model.call(x), y);
                }
                """,
        };
        test.TestState.OutputKind = Microsoft.CodeAnalysis.OutputKind.ConsoleApplication;
        test.ExpectedDiagnostics.Add(MLP002());
        return test.RunAsync();
    }

    // ---------------------------------------------------------------- models and helpers

    [Fact]
    public Task Sequential_ending_in_softmax_is_reported_on_the_child()
        => Verifier.AnalyzerAsync("""
            class Trainer
            {
                void Train(Tensor x, Tensor y)
                {
                    var model = nn.Sequential(("fc", nn.Linear(4, 3)), ("probs", {|#0:nn.Softmax(1)|}));
                    var loss = nn.CrossEntropyLoss().call(model.call(x), y);
                }
            }
            """, MLP002());

    [Fact]
    public Task Sequential_in_a_field_initializer_and_in_a_constructor_with_dropout_after_softmax_is_reported_at_the_loss_input()
        => Verifier.AnalyzerAsync("""
            class Trainer
            {
                private readonly Module<Tensor, Tensor> first = nn.Sequential(nn.Linear(4, 3), nn.Softmax(1));
                private readonly Sequential second;
                private readonly CrossEntropyLoss criterion = nn.CrossEntropyLoss();

                Trainer() { second = nn.Sequential(nn.Linear(4, 3), nn.Softmax(1), nn.Dropout(0.1)); }

                Tensor Loss(Tensor x, Tensor y) => criterion.call({|#0:first.call(x)|}, y) + criterion.call({|#1:second.call(x)|}, y);
            }
            """, MLP002(0), MLP002(1));

    [Fact]
    public Task Activation_in_another_member_is_named_in_the_message_at_the_loss_input()
        => Verifier.AnalyzerAsync("""
            class Trainer
            {
                static Tensor Probabilities(Tensor logits) => logits.softmax(1);

                Tensor Loss(Module<Tensor, Tensor> model, Tensor x, Tensor y) => functional.cross_entropy({|#0:Probabilities(model.call(x))|}, y);
            }
            """,
            Verifier.Diagnostic(Descriptors.MLP002_LogitsLossGivenProbabilities).WithLocation(0).WithArguments(
                "this input, made by 'logits.softmax(1)' (Test0.cs line 10),", "cross_entropy",
                "it applies log_softmax itself, so the model trains through a double softmax whose gradients vanish as predictions grow " +
                "confident; pass the logits and apply softmax only where probabilities are needed"));

    [Fact]
    public Task Sequential_appended_to_in_order_is_read_child_by_child()
        => Verifier.AnalyzerAsync("""
            class Trainer
            {
                void Train(Tensor x, Tensor y)
                {
                    var model = nn.Sequential();
                    model.append(nn.Linear(4, 3));
                    model.append("probs", {|#0:nn.Softmax(1)|});
                    var chained = nn.Sequential(nn.Linear(4, 3)).append({|#1:nn.Softmax(1)|});
                    var fixedUp = nn.Sequential(nn.Linear(4, 3), nn.Softmax(1)).append(nn.Linear(3, 3));
                    var loss = nn.CrossEntropyLoss().call(model.call(x), y) + nn.CrossEntropyLoss().call(chained.call(x), y)
                             + nn.CrossEntropyLoss().call(fixedUp.call(x), y);
                }
            }
            """, MLP002(0), MLP002(1));

    [Fact]
    public Task Custom_forward_returning_softmax_is_followed_through_call_and_reported_at_the_loss_input()
        => Verifier.AnalyzerAsync("""
            class Net : Module<Tensor, Tensor>
            {
                private readonly Linear fc = nn.Linear(4, 3);
                private readonly Softmax head = nn.Softmax(1);
                public Net() : base("net") { RegisterComponents(); }
                public override Tensor forward(Tensor input) => head.call(fc.call(input));
            }

            class Other : Module<Tensor, Tensor>
            {
                private readonly Linear fc = nn.Linear(4, 3);
                public Other() : base("other") { RegisterComponents(); }
                public override Tensor forward(Tensor input)
                {
                    var h = fc.call(input);
                    return functional.softmax(h, -1);
                }
            }

            class Trainer
            {
                void Train(Tensor x, Tensor y)
                {
                    var net = new Net();
                    var other = new Other();
                    var criterion = nn.CrossEntropyLoss();
                    var a = criterion.call({|#0:net.call(x)|}, y);
                    var b = criterion.call({|#1:other.forward(x)|}, y);
                }
            }
            """, MLP002(0), MLP002(1));

    [Fact]
    public Task Helper_returning_softmax_is_followed()
        => Verifier.AnalyzerAsync("""
            class Trainer
            {
                static Tensor Probabilities(Tensor logits) => logits.softmax(1);

                void Train(Module<Tensor, Tensor> model, Tensor x, Tensor y)
                {
                    var loss = functional.cross_entropy({|#0:Probabilities(model.call(x))|}, y);
                    Func<Tensor, Tensor> head = t => {|#1:t.softmax(1)|};
                    var second = functional.cross_entropy(head(model.call(x)), y);
                    Tensor Local(Tensor t) => {|#2:torch.softmax(t, 1)|};
                    var third = functional.cross_entropy(Local(model.call(x)), y);
                }
            }
            """, MLP002(0), MLP002(1), MLP002(2));

    [Fact]
    public Task Sigmoid_into_bce_with_logits_is_reported()
        => Verifier.AnalyzerAsync(Step("""
                    var bce = nn.BCEWithLogitsLoss();
                    var a = bce.call({|#0:model.call(x).sigmoid()|}, y);
                    var b = functional.binary_cross_entropy_with_logits({|#1:torch.sigmoid(model.call(x))|}, y);
                    var c = bce.call(nn.Sequential(nn.Linear(4, 1), {|#2:nn.Sigmoid()|}).call(x), y);
            """), MLP002(0), MLP002(1), MLP002(2));

    // ---------------------------------------------------------------- correct code that looks like the bug

    [Fact]
    public Task Log_softmax_into_cross_entropy_is_not_reported()
        => Verifier.AnalyzerAsync(Step("""
                    var a = criterion.call(model.call(x).log_softmax(1), y);
                    var b = functional.cross_entropy(functional.log_softmax(model.call(x), 1), y);
                    var c = criterion.call(model.call(x), y);
            """));

    [Fact]
    public Task Softmax_as_the_target_for_distillation_is_not_reported()
        => Verifier.AnalyzerAsync("""
            class Distill
            {
                Tensor Loss(Module<Tensor, Tensor> student, Module<Tensor, Tensor> teacher, Tensor x)
                {
                    var soft = teacher.call(x).softmax(1).detach();
                    return functional.cross_entropy(student.call(x), soft) + nn.CrossEntropyLoss().call(student.call(x), soft);
                }
            }
            """);

    [Fact]
    public Task Softmax_beside_the_loss_for_accuracy_is_not_reported()
        => Verifier.AnalyzerAsync(Step("""
                    var logits = model.call(x);
                    var loss = criterion.call(logits, y);
                    var probs = logits.softmax(1);
                    var accuracy = probs.argmax(1).eq(y).to_type(ScalarType.Float32).mean();
                    var confidence = probs.max().item<float>();
            """));

    [Fact]
    public Task Sigmoid_beside_bce_with_logits_for_a_dice_term_is_not_reported()
        => Verifier.AnalyzerAsync(Step("""
                    var logits = model.call(x);
                    var p = logits.sigmoid();
                    var dice = 1 - (2 * (p * y).sum() + 1) / (p.sum() + y.sum() + 1);
                    var loss = functional.binary_cross_entropy_with_logits(logits, y) + dice;
            """));

    [Fact]
    public Task Unknown_input_is_not_reported()
        => Verifier.AnalyzerAsync("""
            class Trainer
            {
                Tensor Loss(Module<Tensor, Tensor> model, Tensor x, Tensor y, Tensor given, Func<Tensor, Tensor> head)
                    => functional.cross_entropy(given, y) + functional.cross_entropy(head(model.call(x)), y)
                     + functional.cross_entropy(Helper(x, true), y);

                Tensor Helper(Tensor t, bool probabilities) => probabilities ? t.softmax(1) : t;
            }
            """);

    [Fact]
    public Task A_parameter_of_a_user_module_type_with_subclasses_is_not_assumed_to_run_that_forward()
        => Verifier.AnalyzerAsync("""
            class Base : Module<Tensor, Tensor>
            {
                public Base() : base("base") { }
                public override Tensor forward(Tensor x) => x.softmax(1);
            }

            class Derived : Base
            {
                public override Tensor forward(Tensor x) => x;
            }

            sealed class Final : Module<Tensor, Tensor>
            {
                public Final() : base("final") { }
                public override Tensor forward(Tensor x) => x.softmax(1);
            }

            class Trainer
            {
                Tensor Loss(Base model, Final sealedModel, Tensor x, Tensor y)
                    => functional.cross_entropy(model.call(x), y) + functional.cross_entropy({|#0:sealedModel.call(x)|}, y);
            }
            """, MLP002());

    [Fact]
    public Task A_model_calling_its_own_forward_in_its_training_method_is_followed()
        => Verifier.AnalyzerAsync("""
            class Model : Module<Tensor, Tensor>
            {
                private readonly Linear head = nn.Linear(4, 3);
                public Model() : base("model") { RegisterComponents(); }
                public override Tensor forward(Tensor x) => functional.softmax(head.forward(x), 1);

                public void Train(Tensor x, Tensor y)
                {
                    var loss = nn.CrossEntropyLoss();
                    var error = loss.forward({|#1:this.forward(x)|}, y);
                    error.backward();
                }
            }
            """, MLP002(1));

    [Fact]
    public Task A_plain_forward_declared_on_a_non_generic_module_is_followed()
        => Verifier.AnalyzerAsync("""
            class Dnn : nn.Module
            {
                private readonly Module<Tensor, Tensor> lin = nn.Linear(784, 10);
                public Dnn() : base("d") { RegisterComponents(); }
                public Tensor forward(Tensor x) => functional.softmax(lin.forward(x), 1);
            }

            class Trainer
            {
                Tensor Loss(Tensor x, Tensor y) => functional.cross_entropy({|#0:new Dnn().forward(x)|}, y);
            }
            """, MLP002());

    [Fact]
    public Task A_users_own_look_alikes_are_not_reported()
        => Verifier.AnalyzerAsync("""
            namespace Mine
            {
                class CrossEntropyLoss { public Tensor call(Tensor a, Tensor b) => a; }
                static class F { public static Tensor softmax(Tensor t, long dim) => t; public static Tensor cross_entropy(Tensor a, Tensor b) => a; }
                class Softmax : Module<Tensor, Tensor> { public Softmax() : base("mine") { } public override Tensor forward(Tensor x) => x * 2; }
                class Use
                {
                    void M(Tensor x, Tensor y)
                    {
                        var a = new CrossEntropyLoss().call(x.softmax(1), y);
                        var b = F.cross_entropy(x.softmax(1), y);
                        var c = functional.cross_entropy(F.softmax(x, 1), y);
                        var d = functional.cross_entropy(nn.Sequential(nn.Linear(4, 3), new Softmax()).call(x), y);
                    }
                }
            }
            """);

    [Fact]
    public Task Without_torchsharp_nothing_is_reported()
        => Verifier.AnalyzerWithoutTorchSharpAsync("""
            class CrossEntropyLoss { public int call(int a, int b) => a; }
            class C { int M() => new CrossEntropyLoss().call(1, 2); }
            """);
}
