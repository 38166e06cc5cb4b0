using System.Linq;
using System.Threading.Tasks;
using Microsoft.CodeAnalysis.Diagnostics;
using Microsoft.CodeAnalysis.Testing;
using Xunit;
using CrossEntropy = MlPitfalls.Analyzers.Tests.Verifiers.Verify<
    MlPitfalls.Analyzers.Losses.LogitsLossGivenProbabilitiesAnalyzer,
    MlPitfalls.CodeFixes.Losses.LossPairingCodeFix>;
using KLDiv = MlPitfalls.Analyzers.Tests.Verifiers.Verify<
    MlPitfalls.Analyzers.Losses.KLDivTargetNotInLogSpaceAnalyzer,
    MlPitfalls.CodeFixes.Losses.LossPairingCodeFix>;
using Probability = MlPitfalls.Analyzers.Tests.Verifiers.Verify<
    MlPitfalls.Analyzers.Losses.ProbabilityLossGivenWrongInputAnalyzer,
    MlPitfalls.CodeFixes.Losses.LossPairingCodeFix>;

namespace MlPitfalls.Analyzers.Tests.Review;

/// <summary>
/// Review findings: each test states the correct behaviour and fails on the code as reviewed. Tests are named
/// F&lt;finding number&gt;_... (the findings of an independent review, each fixed).
/// </summary>
public class ReviewFindingsTests
{
    private static DiagnosticResult MLP002(int marker = 0) => CrossEntropy.DiagnosticAnyMessage(Descriptors.MLP002_LogitsLossGivenProbabilities).WithLocation(marker);

    private static DiagnosticResult MLP003(int marker = 0) => Probability.DiagnosticAnyMessage(Descriptors.MLP003_ProbabilityLossGivenWrongInput).WithLocation(marker);

    private static DiagnosticResult MLP004(int marker = 0) => KLDiv.DiagnosticAnyMessage(Descriptors.MLP004_KLDivTargetNotInLogSpace).WithLocation(marker);

    // ==== Finding 01 Code fix RemoveActivation decides 'static form' by receiver names: silently wrong or non-compiling code

    [Fact]
    public Task F01_RemoveActivation_on_a_tensor_named_F_turns_the_input_into_the_literal_1()
        => CrossEntropy.CodeFixAsync(
            """
            class Trainer
            {
                Tensor Loss(Module<Tensor, Tensor> model, Tensor x, Tensor y)
                {
                    var F = model.call(x);
                    return functional.cross_entropy({|#0:F.softmax(1)|}, y);
                }
            }
            """,
            """
            class Trainer
            {
                Tensor Loss(Module<Tensor, Tensor> model, Tensor x, Tensor y)
                {
                    var F = model.call(x);
                    return functional.cross_entropy(F, y);
                }
            }
            """,
            MlPitfalls.CodeFixes.Losses.LossPairingCodeFix.RemoveActivationKey,
            MLP002(0));

    [Fact]
    public Task F01_RemoveActivation_with_named_arguments_leaves_the_type_name_functional()
        => CrossEntropy.CodeFixAsync(
            """
            class Trainer
            {
                Tensor Loss(Module<Tensor, Tensor> model, Tensor x, Tensor y)
                    => functional.cross_entropy({|#0:functional.softmax(input: model.call(x), dim: 1)|}, y);
            }
            """,
            """
            class Trainer
            {
                Tensor Loss(Module<Tensor, Tensor> model, Tensor x, Tensor y)
                    => functional.cross_entropy(model.call(x), y);
            }
            """,
            MlPitfalls.CodeFixes.Losses.LossPairingCodeFix.RemoveActivationKey,
            MLP002(0));

    [Fact]
    public Task F01_RemoveActivation_through_a_using_alias_leaves_the_alias_name()
        => CrossEntropy.CodeFixAsync(
            """
            using TF = TorchSharp.torch.nn.functional;
            class Trainer
            {
                Tensor Loss(Module<Tensor, Tensor> model, Tensor x, Tensor y)
                    => TF.cross_entropy({|#0:TF.softmax(model.call(x), 1)|}, y);
            }
            """,
            """
            using TF = TorchSharp.torch.nn.functional;
            class Trainer
            {
                Tensor Loss(Module<Tensor, Tensor> model, Tensor x, Tensor y)
                    => TF.cross_entropy(model.call(x), y);
            }
            """,
            MlPitfalls.CodeFixes.Losses.LossPairingCodeFix.RemoveActivationKey,
            MLP002(0));

    // ==== Finding 02 Crash: ValueFlowAnalysis.Evaluate recurses per operand; a long expression overflows the stack (process crash, not AD0001)

    [Fact]
    public async Task F02_A_9000_term_sum_is_analysed_without_overflowing_the_stack()
    {
        // Roslyn binds and builds the graph of this method; the analysis must not recurse once per operand.
        // (A stack overflow kills the test host: this test then fails the whole run loudly.)
        var terms = string.Join(" + ", Enumerable.Repeat("x", 9000));
        var compilation = MlPitfalls.Analyzers.Tests.AllRules.AllAnalyzers.Compile(Microsoft.CodeAnalysis.CSharp.LanguageVersion.Latest, addUsings: true,
            "class C { Tensor L(Tensor x, Tensor y) { var s = " + terms + "; return functional.cross_entropy(s, y); } }");
        var diagnostics = await MlPitfalls.Analyzers.Tests.AllRules.AllAnalyzers.RunAsync(compilation);
        Assert.DoesNotContain(diagnostics, d => d.Id == "AD0001");
    }

    // ==== Finding 03 FP: calls that run user code are assumed to change nothing (delegate Invoke, module call via a TorchSharp base type, MoveNext/Dispose)

    [Fact]
    public Task F03_Delegate_invocation_of_a_method_group_is_assumed_to_change_nothing()
        => CrossEntropy.AnalyzerAsync("""
            class Trainer
            {
                Tensor Loss(Tensor x, Tensor y)
                {
                    var input = x.softmax(1);
                    void UseLogits() => input = x;
                    Action reset = UseLogits;
                    reset();
                    return functional.cross_entropy(input, y);
                }
            }
            """);

    [Fact]
    public Task F03_Callback_parameter_invocation_is_assumed_to_leave_fields_alone()
        => CrossEntropy.AnalyzerAsync("""
            class Trainer
            {
                private Tensor scores;
                public void UseLogits(Tensor x) => scores = x;
                Tensor Step(Action onBatch, Tensor x, Tensor y)
                {
                    scores = x.softmax(1);
                    onBatch();   // e.g. () => trainer.UseLogits(x)
                    return functional.cross_entropy(scores, y);
                }
            }
            """);

    [Fact]
    public Task F03_Module_call_through_a_TorchSharp_static_type_is_assumed_to_run_no_user_code()
        => CrossEntropy.AnalyzerAsync("""
            class Trainer
            {
                public Tensor scores;
                Tensor Step(Module<Tensor, Tensor> model, Tensor x, Tensor y)
                {
                    scores = x.softmax(1);
                    var features = model.call(x);   // model may be a user module (or carry a hook) that sets trainer.scores
                    return functional.cross_entropy(scores, y);
                }
            }
            """);

    [Fact]
    public Task F03_Lazy_iterator_body_run_by_foreach_is_assumed_to_change_nothing()
        => CrossEntropy.AnalyzerAsync("""
            class Trainer
            {
                private Tensor scores;
                IEnumerable<int> Batches(Tensor x) { scores = x; yield return 0; }
                Tensor Loss(Tensor x, Tensor y)
                {
                    var batches = Batches(x);
                    scores = x.softmax(1);
                    foreach (var _ in batches) { }
                    return functional.cross_entropy(scores, y);
                }
            }
            """);

    // ==== Finding 04 FP: Sequential append is read flow-insensitively and only for locals in one block

    [Fact]
    public Task F04_Sequential_field_appended_in_the_constructor_is_read_without_the_append()
        => Probability.AnalyzerAsync("""
            class Net : Module<Tensor, Tensor>
            {
                private readonly Sequential layers = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3));
                public Net() : base("net") { layers.append(nn.LogSoftmax(1)); RegisterComponents(); }
                public override Tensor forward(Tensor x) => layers.call(x);
                public Tensor Loss(Tensor x, Tensor y) => functional.nll_loss(layers.call(x), y);
            }
            """);

    [Fact]
    public Task F04_Sequential_local_appended_by_a_helper_is_read_without_the_append()
        => Probability.AnalyzerAsync("""
            class Trainer
            {
                static void AddHead(Sequential s) => s.append(nn.LogSoftmax(1));
                Tensor Loss(Tensor x, Tensor y)
                {
                    var model = nn.Sequential(nn.Linear(4, 3));
                    AddHead(model);
                    return functional.nll_loss(model.call(x), y);
                }
            }
            """);

    [Fact]
    public Task F04_Sequential_append_after_the_loss_counts_for_the_loss()
        => CrossEntropy.AnalyzerAsync("""
            class Trainer
            {
                Sequential Train(Tensor x, Tensor y)
                {
                    var model = nn.Sequential(nn.Linear(4, 3));
                    var loss = functional.cross_entropy(model.call(x), y);
                    loss.backward();
                    model.append(nn.Softmax(1));   // for inference, after training
                    return model;
                }
            }
            """);

    // ==== Finding 05 FP: virtual dispatch ignored (virtual helper summarised from its own body; forward hidden with new)

    [Fact]
    public Task F05_Virtual_helper_is_summarised_from_its_base_body_only()
        => CrossEntropy.AnalyzerAsync("""
            class Scorer
            {
                protected virtual Tensor Scores(Tensor x) => x.softmax(1);
                public Tensor Loss(Tensor x, Tensor y) => functional.cross_entropy(Scores(x), y);
            }
            class LogitScorer : Scorer
            {
                protected override Tensor Scores(Tensor x) => x;
            }
            """);

    [Fact]
    public Task F05_Forward_hidden_with_new_is_read_from_the_base_override()
        => CrossEntropy.AnalyzerAsync("""
            class Probs : Module<Tensor, Tensor>
            {
                public Probs() : base("probs") { }
                public override Tensor forward(Tensor x) => x.softmax(1);
            }
            class Logits : Probs
            {
                public new Tensor forward(Tensor x) => x;
            }
            class Trainer
            {
                Tensor Loss(Tensor x, Tensor y) => functional.cross_entropy(new Logits().forward(x), y);
            }
            """);

    // ==== Finding 06 FP / wrong fix: in-place tensor operations are not tracked

    [Fact]
    public Task F06_In_place_log_on_a_softmax_local_is_ignored()
        => Probability.AnalyzerAsync("""
            class Trainer
            {
                Tensor Loss(Module<Tensor, Tensor> model, Tensor x, Tensor y)
                {
                    var p = model.call(x).softmax(1);
                    p.log_();
                    return functional.nll_loss(p, y);
                }
            }
            """);

    [Fact]
    public Task F06_RemoveActivation_drops_an_in_place_sigmoid_whose_effect_is_read_later()
        => CrossEntropy.CodeFixAsync(
            """
            class Trainer
            {
                Tensor Loss(Module<Tensor, Tensor> model, Tensor x, Tensor y)
                {
                    var logits = model.call(x);
                    var loss = functional.binary_cross_entropy_with_logits({|#0:logits.sigmoid_()|}, y);
                    var predicted = logits > 0.5;
                    return loss;
                }
            }
            """,
            """
            class Trainer
            {
                Tensor Loss(Module<Tensor, Tensor> model, Tensor x, Tensor y)
                {
                    var logits = model.call(x);
                    var loss = functional.binary_cross_entropy_with_logits({|#0:logits.sigmoid_()|}, y);
                    var predicted = logits > 0.5;
                    return loss;
                }
            }
            """,
            MlPitfalls.CodeFixes.Losses.LossPairingCodeFix.RemoveActivationKey,
            MLP002(0));

    // ==== Finding 07 Nondeterminism: summaries cut by the depth cap depend on what is already cached

    private const string HelperChain = """
        static class Helpers
        {
            public static Tensor H1(Tensor x) => H2(x);
            public static Tensor H2(Tensor x) => H3(x);
            public static Tensor H3(Tensor x) => H4(x);
            public static Tensor H4(Tensor x) => H5(x);
            public static Tensor H5(Tensor x) => H6(x);
            public static Tensor H6(Tensor x) => H7(x);
            public static Tensor H7(Tensor x) => x.softmax(1);
        }
        """;

    private const string TopCaller = """
        class Top { Tensor Loss(Tensor x, Tensor y) => functional.cross_entropy(Helpers.H1(x), y); }
        """;

    private const string ShallowCaller = """
        class Shallow { Tensor Loss(Tensor x, Tensor y) => functional.cross_entropy(Helpers.H2(x), y); }
        """;

    private static async Task<string[]> Mlp002In(params string[] sources)
    {
        var compilation = MlPitfalls.Analyzers.Tests.AllRules.AllAnalyzers.Compile(Microsoft.CodeAnalysis.CSharp.LanguageVersion.Latest, addUsings: true, sources);
        var options = new Microsoft.CodeAnalysis.Diagnostics.CompilationWithAnalyzersOptions(
            new Microsoft.CodeAnalysis.Diagnostics.AnalyzerOptions(System.Collections.Immutable.ImmutableArray<Microsoft.CodeAnalysis.AdditionalText>.Empty),
            onAnalyzerException: null, concurrentAnalysis: false, logAnalyzerExecutionTime: false);
        var diagnostics = await compilation
            .WithAnalyzers(System.Collections.Immutable.ImmutableArray.Create<Microsoft.CodeAnalysis.Diagnostics.DiagnosticAnalyzer>(new MlPitfalls.Analyzers.Losses.LogitsLossGivenProbabilitiesAnalyzer()), options)
            .GetAnalyzerDiagnosticsAsync();
        // Name each diagnostic by the class it is reported in, so runs over differently ordered files compare.
        return diagnostics
            .Select(d => d.Id + " in " + d.Location.SourceTree!.GetRoot().FindNode(d.Location.SourceSpan).AncestorsAndSelf()
                .OfType<Microsoft.CodeAnalysis.CSharp.Syntax.ClassDeclarationSyntax>().First().Identifier.ValueText)
            .OrderBy(s => s, System.StringComparer.Ordinal)
            .ToArray();
    }

    [Fact]
    public void F07_The_summary_of_a_helper_depends_on_which_summaries_were_computed_before()
    {
        static MlPitfalls.Analyzers.Analyses.Provenance.TensorKind ReturnedByH1(bool askH2First)
        {
            var compilation = MlPitfalls.Analyzers.Tests.Infrastructure.TestCompilation.Create(true, HelperChain);
            var services = MlPitfalls.Analyzers.Infrastructure.AnalysisServices.For(compilation)!;
            var helpers = compilation.GetTypeByMetadataName("Helpers")!;
            Microsoft.CodeAnalysis.IMethodSymbol Method(string name) => (Microsoft.CodeAnalysis.IMethodSymbol)helpers.GetMembers(name).Single();
            if (askH2First)
            {
                MlPitfalls.Analyzers.Analyses.Provenance.ProvenanceAnalysis.ReturnedBy(services, Method("H2"), default); // complete: H2..H7 fit in the depth cap, cached
            }

            return MlPitfalls.Analyzers.Analyses.Provenance.ProvenanceAnalysis.ReturnedBy(services, Method("H1"), default).Kinds;
        }

        // H1 asked first: H1..H6 fill the 6 frames, H7 is cut, H1 is Unknown. H2 asked first: H1 reads H2's cached Softmax.
        Assert.Equal(ReturnedByH1(askH2First: true), ReturnedByH1(askH2First: false));
    }

    [Fact]
    public async Task F07_A_diagnostic_depends_on_the_order_in_which_methods_are_analysed()
    {
        // The driver's order follows the files (and races under concurrent builds): Top is reported or not.
        var results = new System.Collections.Generic.HashSet<string>();
        for (var i = 0; i < 3; i++)
        {
            results.Add(string.Join(";", await Mlp002In(HelperChain, TopCaller, ShallowCaller)));
            results.Add(string.Join(";", await Mlp002In(HelperChain, ShallowCaller, TopCaller)));
        }

        Assert.Single(results);
    }

    // ==== Finding 08 FP: ModuleComposition.FindWrites misses writes (tuple deconstruction, init-only set by an object initializer elsewhere)

    [Fact]
    public Task F08_Module_field_assigned_by_tuple_deconstruction_in_another_constructor()
        => CrossEntropy.AnalyzerAsync("""
            sealed class Net : Module<Tensor, Tensor>
            {
                private readonly Module<Tensor, Tensor> head;
                private readonly long classes;
                public Net() : base("net") { head = nn.Sequential(nn.Linear(4, 3), nn.Softmax(1)); classes = 3; }
                public Net(Module<Tensor, Tensor> custom, long n) : base("net") => (head, classes) = (custom, n);
                public override Tensor forward(Tensor x) => head.call(x);
            }
            class Trainer
            {
                Tensor Loss(Net net, Tensor x, Tensor y) => functional.cross_entropy(net.call(x), y);
            }
            """);

    [Fact]
    public Task F08_Init_only_module_property_replaced_by_an_object_initializer_elsewhere()
        => CrossEntropy.AnalyzerAsync("""
            class Net : Module<Tensor, Tensor>
            {
                public Module<Tensor, Tensor> Head { get; init; } = nn.Sequential(nn.Linear(4, 3), nn.Softmax(1));
                public Net() : base("net") { }
                public override Tensor forward(Tensor x) => Head.call(x);
                public Tensor Loss(Tensor x, Tensor y) => functional.cross_entropy(Head.call(x), y);
            }
            class Use
            {
                Tensor M(Tensor x, Tensor y) => new Net { Head = nn.Linear(4, 3) }.Loss(x, y);
            }
            """);

    // ==== Finding 09 FP: no aliasing (two references to one object, ref locals)

    [Fact]
    public Task F09_Write_through_an_alias_of_the_same_object_is_ignored()
        => CrossEntropy.AnalyzerAsync("""
            class Outputs { public Tensor Scores; }
            class Trainer
            {
                Tensor Loss(Tensor x, Tensor y)
                {
                    var a = new Outputs();
                    var b = a;
                    a.Scores = x.softmax(1);
                    b.Scores = x;
                    return functional.cross_entropy(a.Scores, y);
                }
            }
            """);

    [Fact]
    public Task F09_Write_through_a_ref_local_is_ignored()
        => CrossEntropy.AnalyzerAsync("""
            class Trainer
            {
                Tensor Loss(Tensor x, Tensor y)
                {
                    var input = x.softmax(1);
                    ref var slot = ref input;
                    slot = x;
                    return functional.cross_entropy(input, y);
                }
            }
            """);

    // ==== Finding 10 FP: properties with accessor bodies are tracked as if they were fields

    [Fact]
    public Task F10_Property_with_a_setter_body_is_treated_as_a_field()
        => Probability.AnalyzerAsync("""
            class Trainer
            {
                private Tensor _logProbs;
                Tensor LogProbs { get => _logProbs; set => _logProbs = value.log(); }
                Tensor Loss(Tensor x, Tensor y)
                {
                    LogProbs = x.softmax(1);
                    return functional.nll_loss(LogProbs, y);
                }
            }
            """);

    // ==== Finding 11 Code fix SwitchLoss on a var local produces code that does not compile (CS0029)

    [Fact]
    public Task F11_SwitchLoss_is_not_offered_when_the_var_local_flows_into_a_concretely_typed_field()
        => CrossEntropy.NoCodeFixAsync("""
            class Trainer
            {
                private BCEWithLogitsLoss criterion;
                Tensor Loss(Module<Tensor, Tensor> model, Tensor x, Tensor y)
                {
                    var bce = nn.BCEWithLogitsLoss();
                    criterion = bce;
                    var p = {|#0:model.call(x).sigmoid()|};
                    var mean = p.mean();
                    return bce.call(p, y);
                }
            }
            """, MLP002(0));

    // ==== Finding 12 Code fix LogTargetFalse edits a module creation shared with a correct log-space use

    [Fact]
    public Task F12_LogTargetFalse_is_not_offered_on_a_kl_module_shared_with_a_log_space_target()
        => KLDiv.NoCodeFixAsync("""
            class Distiller
            {
                private readonly KLDivLoss kl = nn.KLDivLoss();
                Tensor Soft(Tensor logP, Tensor teacher) => {|#0:kl.call(logP, teacher.softmax(1))|};
                Tensor Log(Tensor logP, Tensor teacher) => kl.call(logP, teacher.log_softmax(1));
            }
            """, MLP004(0));

    // ==== Finding 13 FP: AfterFinally ignores out/ref arguments (and deconstruction) in the finally block

    [Fact]
    public Task F13_Out_argument_in_a_finally_block_is_ignored()
        => CrossEntropy.AnalyzerAsync("""
            class Trainer
            {
                static void Reset(Tensor x, out Tensor t) => t = x;
                Tensor Loss(Tensor x, Tensor y)
                {
                    var input = x.softmax(1);
                    try { y = y.view(-1); }
                    finally { Reset(x, out input); }
                    return functional.cross_entropy(input, y);
                }
            }
            """);

    // ==== Finding 14 FP: a lambda first met at the nesting cap is marked analysed-alone but never analysed

    [Fact]
    public Task F14_Lambda_first_reached_at_the_nesting_cap_is_never_analysed_on_its_own()
        => CrossEntropy.AnalyzerAsync("""
            class Trainer
            {
                Tensor Loss(List<Tensor> batches, Tensor x, Tensor y)
                {
                    Tensor A(Tensor t) => B(t);
                    Tensor B(Tensor t) => C(t);
                    Tensor C(Tensor t)
                    {
                        Func<Tensor, Tensor> loss = p => functional.cross_entropy(p, y);
                        batches.ForEach(b => loss(b).backward());   // loss also runs on raw batches
                        return loss(t.softmax(1));
                    }
                    return A(x);
                }
            }
            """);

    // ==== Finding 15 FP: forward hooks that replace a module's output are ignored

    [Fact]
    public Task F15_Forward_hook_that_replaces_the_output_is_ignored()
        => Probability.AnalyzerAsync("""
            class Trainer
            {
                Tensor Loss(Tensor x, Tensor y)
                {
                    var head = nn.Linear(4, 3);
                    head.register_forward_hook((module, input, output) => output.log_softmax(1));
                    return functional.nll_loss(head.call(x), y);
                }
            }
            """);
}
