using System.Threading.Tasks;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Testing;
using Xunit;
using static MlPitfalls.Analyzers.Tests.TrainEval.ModePrograms;
using V7 = MlPitfalls.Analyzers.Tests.Verifiers.Verify<
    MlPitfalls.Analyzers.TrainEval.EvaluatedInTrainingModeAnalyzer,
    Microsoft.CodeAnalysis.Testing.EmptyCodeFixProvider>;
using V7Fix = MlPitfalls.Analyzers.Tests.Verifiers.Verify<
    MlPitfalls.Analyzers.TrainEval.EvaluatedInTrainingModeAnalyzer,
    MlPitfalls.CodeFixes.TrainEval.SwitchModeCodeFix>;
using V8 = MlPitfalls.Analyzers.Tests.Verifiers.Verify<
    MlPitfalls.Analyzers.TrainEval.TrainedInEvaluationModeAnalyzer,
    Microsoft.CodeAnalysis.Testing.EmptyCodeFixProvider>;

namespace MlPitfalls.Analyzers.Tests.Review;

/// <summary>
/// An independent review of the class-wide field fact (FieldModes) and of foreach over source iterators
/// (ModeAnalysis.AlongBranch). Each test states what a TorchSharp user would expect. The review found 23 of them failing
/// (CW01-CW03, CW05-CW09, CW14, FX01, FX02 from the class-wide fact; IT03, IT04b, IT05, IT06, IT08 from the iterator
/// steps; IT01, IT02, IT07, IT09, CW04 older than both); the rest confirmed behaviour that already held.
/// </summary>
public class ClassWideAndIteratorReviewTests
{
    private static DiagnosticResult MLP007(int marker = 0) => V7.DiagnosticAnyMessage(Descriptors.MLP007_EvaluatedInTrainingMode).WithLocation(marker);

    private static DiagnosticResult MLP008(int marker = 0) => V8.DiagnosticAnyMessage(Descriptors.MLP008_TrainedInEvaluationMode).WithLocation(marker);

    private const string Evaluate = """
            public double Evaluate(IReadOnlyList<(Tensor x, Tensor y)> data)
            {
                using var _ = torch.no_grad();
                var correct = 0L;
                foreach (var (x, y) in data)
                {
                    correct += _model.call(x).argmax(1).eq(y).sum().item<long>();
                }

                return correct;
            }
        """;

    private const string EvaluateMarked = """
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

    // ================================================================ class-wide fact: confirmed false positives

    [Theory]
    // The module is switched through what a TorchSharp method returns: the module itself (to/cuda) or its submodules.
    [InlineData("public void Freeze() { foreach (var m in _model.modules()) m.eval(); }")]
    [InlineData("public void Freeze() { foreach (var m in _model.children()) m.eval(); }")]
    [InlineData("public void Prepare() => _model.to(torch.CPU).eval();")]
    [InlineData("public void Prepare() { var moved = _model.to(torch.CPU); moved.eval(); }")]
    // ... or handed out by such a method.
    [InlineData("public IEnumerable<Module> Layers() => _model.children();")]
    public Task CW01_a_field_switched_through_what_a_TorchSharp_method_returns_is_not_class_wide(string member)
        => V7.AnalyzerAsync(FieldTrainer(Evaluate + member));

    [Fact]
    public Task CW02_a_field_whose_child_is_held_and_switched_through_another_field_is_not_class_wide()
        => V7.AnalyzerAsync(DropoutNet + """
            class Trainer
            {
                private readonly Net _backbone;
                private readonly Module<Tensor, Tensor> _model;

                public Trainer()
                {
                    _backbone = new Net();
                    _model = nn.Sequential(_backbone, nn.Linear(10, 2));
                }

                public void FreezeBackbone() => _backbone.eval();

                public long Predict(Tensor[] batches)
                {
                    using var _ = torch.no_grad();
                    var sum = 0L;
                    foreach (var batch in batches) sum += _model.call(batch).argmax(1).sum().item<long>();
                    return sum;
                }
            }
            """);

    private const string PretrainedViaHelper = """
        class Pretrained : Module<Tensor, Tensor>
        {
            private readonly Module<Tensor, Tensor> drop = nn.Dropout(0.5);
            public Pretrained(string path) : base("p") { RegisterComponents(); Restore(path); }
            private void Restore(string path) { load(path); eval(); }
            public override Tensor forward(Tensor x) => drop.call(x);
        }

        """;

    [Fact]
    public Task CW03_a_field_whose_constructor_switches_to_eval_through_a_helper_is_not_in_training_mode()
        => V7.AnalyzerAsync(PretrainedViaHelper + """
            class Service
            {
                private readonly Pretrained _model = new Pretrained("weights.dat");

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
    public Task CW04_a_local_whose_constructor_switches_to_eval_through_a_helper_is_not_in_training_mode()
        => V7.AnalyzerAsync(PretrainedViaHelper + """
            class Service
            {
                public long Predict(Tensor[] batches)
                {
                    var model = new Pretrained("weights.dat");
                    using var _ = torch.no_grad();
                    var sum = 0L;
                    foreach (var batch in batches) sum += model.call(batch).argmax(1).sum().item<long>();
                    return sum;
                }
            }
            """);

    [Fact]
    public Task CW05_a_field_switched_through_dynamic_is_not_class_wide()
        => V7.AnalyzerAsync(FieldTrainer(Evaluate + """
                public void Freeze() => ((dynamic)this)._model.eval();
            """));

    [Fact]
    public async Task CW06_top_level_statements_are_not_a_class_wide_field()
    {
        // Each global statement is its own MemberDeclarationSyntax: ModeFinding.IsClassWide takes an origin in another
        // global statement for a class-wide field, and the message says "the class creates it ... nothing in 'its class'".
        var test = V7.Create();
        test.TestState.OutputKind = OutputKind.ConsoleApplication;
        test.TestCode = V7.Usings + """
            var model = new Net();
            var optimizer = optim.Adam(model.parameters());
            var data = new List<(Tensor x, Tensor y)>();
            foreach (var (x, y) in data)
            {
                optimizer.zero_grad();
                functional.cross_entropy(model.call(x), y).backward();
                optimizer.step();
            }

            using (torch.no_grad())
            {
                Console.WriteLine({|#0:model.call(data[0].x)|}.argmax(1).item<long>());
            }

            """ + DropoutNet;
        test.ExpectedDiagnostics.Add(V7.Diagnostic(Descriptors.MLP007_EvaluatedInTrainingMode).WithLocation(0)
            .WithArguments("model", "a new module starts in training mode: created by 'new Net()' at line 8"));
        await test.RunAsync();
    }

    private const string SelfEvaluating = """
        class Pretrained : Module<Tensor, Tensor>
        {
            private readonly Module<Tensor, Tensor> drop = nn.Dropout(0.5);
            public Pretrained() : base("p") { RegisterComponents(); eval(); }
            public override Tensor forward(Tensor x) => drop.call(x);
        }

        """;

    [Fact]
    public Task CW07_a_container_of_a_module_whose_constructor_switches_to_eval_is_not_class_wide()
        => V7.AnalyzerAsync(SelfEvaluating + """
            class Service
            {
                private readonly Module<Tensor, Tensor> _model = nn.Sequential(new Pretrained(), nn.Linear(10, 2));

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
    public Task CW08_a_field_switched_by_a_forward_pre_hook_is_not_class_wide()
        => V7.AnalyzerAsync(FieldTrainer(Evaluate + """
                public void Install() => _model.register_forward_pre_hook((m, x) => { m.eval(); return x; });
            """));

    [Fact]
    public Task CW09_a_field_whose_source_forward_overload_switches_it_is_not_class_wide()
        => V7.AnalyzerAsync("""
            class Net : Module<Tensor, Tensor>
            {
                private readonly Module<Tensor, Tensor> drop = nn.Dropout(0.5);
                public Net() : base("net") => RegisterComponents();
                public override Tensor forward(Tensor x) => drop.call(x);
                public Tensor forward(Tensor x, bool deterministic) { if (deterministic) eval(); return drop.call(x); }
            }

            class Service
            {
                private readonly Net _model = new Net();

                public long Deterministic(Tensor x) => _model.forward(x, true).argmax(1).item<long>();

                public long Predict(Tensor x)
                {
                    using var _ = torch.no_grad();
                    return _model.call(x).argmax(1).item<long>();
                }
            }
            """);

    // ================================================================ class-wide fact: behaviour confirmed

    [Theory]
    // Another instance's field, a nested type, a lambda, ref/out, tuple deconstruction, a pattern, nameof, an object initializer.
    [InlineData("class Inner { public static void Freeze(Trainer t) => t._model.eval(); }")]
    [InlineData("public void Freeze(Trainer other) => other._model.eval();")]
    [InlineData("public Action Freezer() => () => _model.eval();")]
    [InlineData("public void Swap(ref Net m) { } public void Use() => Swap(ref _model);")]
    [InlineData("public void Reset(Net m) { int k; (_model, k) = (m, 1); }")]
    [InlineData("public void Freeze() { if (_model is Net n) n.eval(); }")]
    [InlineData("public static Trainer Make(Net m) => new Trainer { _model = m };")]
    [InlineData("public Func<Tensor, Tensor> Forward() => _model.call;")]
    public Task CW10_a_field_that_escapes_or_is_switched_is_not_class_wide(string member)
        => V7.AnalyzerAsync(FieldTrainer(Evaluate + member, "private Net _model = new Net();"));

    [Theory]
    // A local or parameter of the same name, created in a loop or with ??=, in a generic class: still class-wide.
    [InlineData("public void Other() { var _model = new Net(); _model.eval(); }", "private readonly Net _model = new Net();")]
    [InlineData("public void Reset() { for (int i = 0; i < 3; i++) _model = new Net(); }", "private Net _model = new Net();")]
    [InlineData("public void Ensure() => _model ??= new Net();", "private Net _model = new Net();")]
    public Task CW11_class_wide_training_mode_is_still_found(string member, string field)
        => V7.AnalyzerAsync(FieldTrainer(EvaluateMarked + member, field), MLP007());

    [Fact]
    public Task CW14_a_parameter_named_like_the_field_does_not_hide_the_fact()
        // Minor false negative: the parameter's declaration token makes FieldModes.Compute give up ("a name the fact cannot read").
        => V7.AnalyzerAsync(FieldTrainer(EvaluateMarked + "public void Other(Net _model) { _model.eval(); }"), MLP007());

    [Fact]
    public async Task CW12_a_partial_class_that_switches_the_field_in_another_file_is_not_class_wide()
    {
        var test = V7.Create();
        test.TestState.Sources.Add(V7.Usings + FieldTrainer(Evaluate).Replace("class Trainer", "partial class Trainer"));
        test.TestState.Sources.Add(V7.Usings + "partial class Trainer { public void Freeze() => _model.eval(); }");
        await test.RunAsync();
    }

    [Fact]
    public Task CW13_a_struct_container_and_a_static_field_are_handled()
        => V7.AnalyzerAsync(DropoutNet + """
            struct Holder
            {
                private static readonly Net s_model = new Net();
                public static void Freeze(Holder h) { }
                public long Predict(Tensor[] batches)
                {
                    using var _ = torch.no_grad();
                    var sum = 0L;
                    foreach (var batch in batches) sum += {|#0:s_model.call(batch)|}.argmax(1).sum().item<long>();
                    return sum;
                }
            }
            """, MLP007());

    // ================================================================ fixes and messages

    private const string TopLevelProgram = """
        var model = new Net();
        var optimizer = optim.Adam(model.parameters());
        var data = new List<(Tensor x, Tensor y)>();
        foreach (var (x, y) in data)
        {
            optimizer.zero_grad();
            functional.cross_entropy(model.call(x), y).backward();
            optimizer.step();
        }

        """;

    [Fact]
    public async Task FX01_top_level_evaluation_gets_eval_only_not_a_class_wide_restore()
    {
        // Outside a loop the eval fix does not switch back (as in a method body); the top-level program is taken for
        // a class-wide field and gets 'model.train();' appended after the evaluation.
        var test = V7Fix.Create();
        test.TestState.OutputKind = OutputKind.ConsoleApplication;
        test.FixedState.OutputKind = OutputKind.ConsoleApplication;
        test.TestCode = V7Fix.Usings + TopLevelProgram + """
            using (torch.no_grad())
            {
                Console.WriteLine({|#0:model.call(data[0].x)|}.argmax(1).item<long>());
            }

            """ + DropoutNet;
        test.FixedCode = V7Fix.Usings + TopLevelProgram + """
            model.eval();
            using (torch.no_grad())
            {
                Console.WriteLine(model.call(data[0].x).argmax(1).item<long>());
            }

            """ + DropoutNet;
        test.ExpectedDiagnostics.Add(MLP007());
        await test.RunAsync();
    }

    [Fact]
    public Task FX02_the_class_wide_message_names_the_class_that_owns_the_field()
        => V7.AnalyzerAsync(DropoutNet + """
            class Trainer
            {
                private static readonly Net s_model = new Net();

                public static class Inference
                {
                    public static long Predict(Tensor[] batches)
                    {
                        using var _ = torch.no_grad();
                        var sum = 0L;
                        foreach (var batch in batches) sum += {|#0:s_model.call(batch)|}.argmax(1).sum().item<long>();
                        return sum;
                    }
                }
            }
            """,
            V7.Diagnostic(Descriptors.MLP007_EvaluatedInTrainingMode).WithLocation(0)
                .WithArguments("s_model", "the class creates it in training mode and nothing in 'Trainer' switches it: created by 'new Net()' at line 17"));

    [Fact]
    public Task FX03_class_wide_fix_restores_training_after_a_using_block()
        => V7Fix.CodeFixAsync(FieldTrainer("""
                public long Evaluate(IReadOnlyList<(Tensor x, Tensor y)> data)
                {
                    var correct = 0L;
                    using (torch.no_grad())
                    {
                        foreach (var (x, y) in data) correct += {|#0:_model.call(x)|}.argmax(1).eq(y).sum().item<long>();
                    }

                    return correct;
                }
            """), FieldTrainer("""
                public long Evaluate(IReadOnlyList<(Tensor x, Tensor y)> data)
                {
                    var correct = 0L;
                    _model.eval();
                    using (torch.no_grad())
                    {
                        foreach (var (x, y) in data) correct += _model.call(x).argmax(1).eq(y).sum().item<long>();
                    }
                    _model.train();

                    return correct;
                }
            """), MLP007());

    // ================================================================ robustness (AD0001)

    [Fact]
    public async Task RB01_odd_shapes_raise_no_analyzer_exception()
    {
        var compilation = MlPitfalls.Analyzers.Tests.AllRules.AllAnalyzers.Compile(Microsoft.CodeAnalysis.CSharp.LanguageVersion.Latest, addUsings: true, BnNet + """
            record struct Box(int K)
            {
                private readonly Net _model = new Net();
                public long P(Tensor x) { using var _ = torch.no_grad(); return _model.call(x).argmax(1).item<long>(); }
            }

            partial class Owner<T> where T : Module<Tensor, Tensor>, new()
            {
                private T _typed = new T();
                private Net _model = new Net().to(torch.CPU);
                private Net _other = new() { };
                private static Net s_lazy;
                partial void Hook();
                public long P(Tensor x)
                {
                    s_lazy ??= new Net();
                    using var _ = torch.no_grad();
                    lock (this) { Console.WriteLine(nameof(_model)); }
                    return _model.call(x).argmax(1).item<long>() + _typed.call(x).argmax(1).item<long>() + s_lazy.call(x).argmax(1).item<long>();
                }

                static IEnumerable<int> Weird<TM>(TM m, params Net[] more) where TM : Module<Tensor, Tensor>
                {
                    m.eval();
                    switch (more.Length) { case 0: yield break; default: more[0].eval(); break; }
                    lock (more) { }
                    again:
                    yield return 1;
                    if (more.Length > 3) goto again;
                    m.train();
                }

                void Use(Net a, Net b)
                {
                    foreach (var i in Weird(m: a, more: new[] { b })) { if (i > 1) continue; a.call(null!); }
                    foreach (var i in Weird<Net>(a)) { using var _ = torch.no_grad(); a.call(null!); }
                    foreach (var i in (Weird(a))) { }
                    foreach (var i in a.Steps()) { b = a; }
                    foreach (var i in Ext.Steps(a)) { }
                    foreach (var i in this) { }
                    var f = () => { foreach (var i in Weird(a)) { } };
                    IEnumerable<int> Local(Net n) { n.eval(); yield return 0; }
                    foreach (var i in Local(a)) { foreach (var j in Local(b)) { } }
                }

                public IEnumerator<int> GetEnumerator() { _model.eval(); yield return 1; }
            }

            partial class Owner<T> { partial void Hook() { _model.train(); } }

            static class Ext
            {
                public static IEnumerable<int> Steps(this Net m) { m.eval(); yield return 1; foreach (var i in Steps(m)) yield return i; }
            }
            """);
        var diagnostics = await MlPitfalls.Analyzers.Tests.AllRules.AllAnalyzers.RunAsync(compilation);
        var crashes = System.Linq.Enumerable.ToList(System.Linq.Enumerable.Where(diagnostics, d => d.Id == "AD0001"));
        Assert.True(crashes.Count == 0, string.Join("\n", System.Linq.Enumerable.Select(crashes, d => d.GetMessage())));
    }

    // ================================================================ iterators: confirmed false positives

    private const string BnNet = """
        class Net : Module<Tensor, Tensor>
        {
            private readonly Module<Tensor, Tensor> fc1 = nn.Linear(784, 128);
            private readonly Module<Tensor, Tensor> norm = nn.BatchNorm1d(128);
            private readonly Module<Tensor, Tensor> drop = nn.Dropout(0.5);
            private readonly Module<Tensor, Tensor> fc2 = nn.Linear(128, 10);
            public Net() : base("net") => RegisterComponents();
            public override Tensor forward(Tensor x) => fc2.call(drop.call(functional.relu(norm.call(fc1.call(x)))));
        }

        """;

    /// <summary>An epoch iterator that switches the model to training mode at the start of each epoch.</summary>
    private const string Epochs = """
            static IEnumerable<int> Epochs(Net m, int count)
            {
                for (int e = 0; e < count; e++)
                {
                    m.train();
                    yield return e;
                }
            }
        """;

    private static string EpochLoop(string header, string members = Epochs) => BnNet + $$"""
        class Trainer
        {
            void Run(IReadOnlyList<(Tensor x, Tensor y)> train, IReadOnlyList<(Tensor x, Tensor y)> valid)
            {
                var model = new Net();
                var optimizer = optim.SGD(model.parameters(), 0.01);
                {{header}}
                {
                    foreach (var (x, y) in train)
                    {
                        optimizer.zero_grad();
                        functional.cross_entropy(model.call(x), y).backward();
                        optimizer.step();
                    }

                    model.eval();
                    using (torch.no_grad())
                    {
                        foreach (var (x, y) in valid) Console.WriteLine(model.call(x).argmax(1).eq(y).sum().item<long>());
                    }
                }
            }

        {{members}}
        }
        """;

    [Fact]
    public Task IT00_an_epoch_iterator_that_switches_back_to_train_is_followed()
        => V8.AnalyzerAsync(EpochLoop("foreach (var epoch in Epochs(model, 10))"));

    [Theory]
    // The iterator is enumerated where AlongBranch does not look (a local, LINQ, a non-iterator wrapper, a virtual
    // method): its steps are not applied at MoveNext, so the later-iterations run keeps the eval() of the previous epoch.
    [InlineData("var epochs = Epochs(model, 10); foreach (var epoch in epochs)")]
    [InlineData("foreach (var epoch in Epochs(model, 10).Select(e => e + 1))")]
    [InlineData("foreach (var epoch in Wrapped(model, 10))")]
    [InlineData("foreach (var epoch in VirtualEpochs(model, 10))")]
    public Task IT01_an_epoch_iterator_enumerated_indirectly_is_not_judged(string header)
        => V8.AnalyzerAsync(EpochLoop(header, Epochs + """
                static IEnumerable<int> Wrapped(Net m, int count) => Epochs(m, count);
                protected virtual IEnumerable<int> VirtualEpochs(Net m, int count)
                {
                    for (int e = 0; e < count; e++)
                    {
                        m.train();
                        yield return e;
                    }
                }
            """));

    [Fact]
    public Task IT02_a_local_function_iterator_is_not_run_at_its_call()
        => V7.AnalyzerAsync(BnNet + """
            class Trainer
            {
                void Run(IReadOnlyList<(Tensor x, Tensor y)> train, IReadOnlyList<(Tensor x, Tensor y)> valid)
                {
                    var model = new Net();
                    var optimizer = optim.SGD(model.parameters(), 0.01);
                    foreach (var (x, y) in train)
                    {
                        optimizer.zero_grad();
                        functional.cross_entropy(model.call(x), y).backward();
                        optimizer.step();
                    }

                    foreach (var x in Validation())
                    {
                        using var _ = torch.no_grad();
                        Console.WriteLine(model.call(x).argmax(1).item<long>());
                    }

                    IEnumerable<Tensor> Validation()
                    {
                        model.eval();
                        foreach (var (x, _) in valid) yield return x;
                        model.train();
                    }
                }
            }
            """);

    [Fact]
    public Task IT03_a_custom_GetEnumerator_iterator_that_switches_to_eval_is_not_ignored()
        => V7.AnalyzerAsync(BnNet + """
            class EvalPass : IEnumerable<Tensor>
            {
                private readonly Net _model;
                private readonly IReadOnlyList<(Tensor x, Tensor y)> _data;
                public EvalPass(Net model, IReadOnlyList<(Tensor x, Tensor y)> data) { _model = model; _data = data; }

                public IEnumerator<Tensor> GetEnumerator()
                {
                    _model.eval();
                    foreach (var (x, _) in _data) yield return x;
                }

                System.Collections.IEnumerator System.Collections.IEnumerable.GetEnumerator() => GetEnumerator();
            }

            class Trainer
            {
                void Run(IReadOnlyList<(Tensor x, Tensor y)> train, IReadOnlyList<(Tensor x, Tensor y)> valid)
                {
                    var model = new Net();
                    var pass = new EvalPass(model, valid);
                    var optimizer = optim.SGD(model.parameters(), 0.01);
                    model.train();
                    foreach (var (x, y) in train)
                    {
                        optimizer.zero_grad();
                        functional.cross_entropy(model.call(x), y).backward();
                        optimizer.step();
                    }

                    foreach (var x in pass)
                    {
                        using var _ = torch.no_grad();
                        Console.WriteLine(model.call(x).argmax(1).item<long>());
                    }
                }
            }
            """);

    /// <summary>Always yields at least once; evaluates in eval mode and switches back to train at its end.</summary>
    private const string Predictions = """
            static IEnumerable<Tensor> Predictions(Net m, IReadOnlyList<(Tensor x, Tensor y)> data)
            {
                m.eval();
                yield return data[0].x;
                for (int i = 1; i < data.Count; i++) yield return data[i].x;
                m.train();
            }
        """;

    private static string Reassigning(string declare, string model, string collection, string reassign, string members = Predictions) => BnNet + $$"""
        class Trainer
        {
            {{declare}}

            void Run(IReadOnlyList<(Tensor x, Tensor y)> valid)
            {
                {{model}}.eval();
                foreach (var x in {{collection}})
                {
                    Console.WriteLine(x.sum().item<float>());
                    {{reassign}}
                }

                using (torch.no_grad())
                {
                    Console.WriteLine({|#0:{{model}}.call(valid[0].x)|}.argmax(1).item<long>());
                }
            }

        {{members}}
        }
        """;

    // The body puts a fresh model in eval mode; the iterator's end switches back the old one only.
    [Fact]
    public Task IT04_control_without_reassignment_is_reported()
        => V7.AnalyzerAsync(Reassigning("private Net _model = new Net();", "_model", "Predictions(_model, valid)", ""), MLP007());

    [Fact]
    public Task IT04a_a_local_argument_reassigned_in_the_loop_body_is_guarded()
        => V7.AnalyzerAsync(Reassigning("", "model", "Predictions(model, valid)", "model = new Net(); model.eval();")
            .Replace("    {\n        model.eval();", "    {\n        var model = new Net();\n        model.eval();"));

    [Fact]
    public Task IT04b_a_field_argument_reassigned_in_the_loop_body_does_not_take_the_iterator_s_steps()
        => V7.AnalyzerAsync(Reassigning("private Net _model = new Net();", "_model", "Predictions(_model, valid)", "_model = new Net(); _model.eval();"));

    [Fact]
    public Task IT05_a_receiver_reassigned_in_the_loop_body_does_not_take_the_iterator_s_steps()
        => V7.AnalyzerAsync(Reassigning("private Session session = new Session();", "session.Model", "session.Steps(valid)", "session = new Session(); session.Model.eval();", members: "") + """

            class Session
            {
                public Net Model = new Net();

                public IEnumerable<Tensor> Steps(IReadOnlyList<(Tensor x, Tensor y)> data)
                {
                    Model.eval();
                    yield return data[0].x;
                    for (int i = 1; i < data.Count; i++) yield return data[i].x;
                    Model.train();
                }
            }
            """);

    [Fact]
    public Task IT06_a_static_field_switched_by_an_iterator_is_not_left_as_it_was()
        => V8.AnalyzerAsync(BnNet + """
            static class Trainer
            {
                private static readonly Net s_model = new Net();

                static void Run(IReadOnlyList<(Tensor x, Tensor y)> train)
                {
                    var optimizer = optim.SGD(s_model.parameters(), 0.01);
                    s_model.eval();
                    foreach (var (x, y) in TrainingBatches(train))
                    {
                        optimizer.zero_grad();
                        functional.cross_entropy(s_model.call(x), y).backward();
                        optimizer.step();
                    }
                }

                static IEnumerable<(Tensor x, Tensor y)> TrainingBatches(IReadOnlyList<(Tensor x, Tensor y)> data)
                {
                    s_model.train();
                    foreach (var item in data) yield return item;
                }
            }
            """);

    [Fact]
    public Task IT07_a_static_field_switched_by_a_plain_helper_is_not_left_as_it_was()
        => V8.AnalyzerAsync(BnNet + """
            static class Trainer
            {
                private static readonly Net s_model = new Net();

                static void Run(IReadOnlyList<(Tensor x, Tensor y)> train)
                {
                    var optimizer = optim.SGD(s_model.parameters(), 0.01);
                    s_model.eval();
                    StartTraining();
                    foreach (var (x, y) in train)
                    {
                        optimizer.zero_grad();
                        functional.cross_entropy(s_model.call(x), y).backward();
                        optimizer.step();
                    }
                }

                static void StartTraining() => s_model.train();
            }
            """);

    [Fact]
    public Task IT08_a_module_reached_through_a_non_module_parameter_is_not_left_as_it_was()
        => V8.AnalyzerAsync(BnNet + """
            class Session { public Net Model = new Net(); }

            static class Trainer
            {
                static void Run(Session session, IReadOnlyList<(Tensor x, Tensor y)> train)
                {
                    var optimizer = optim.SGD(session.Model.parameters(), 0.01);
                    session.Model.eval();
                    foreach (var (x, y) in TrainingBatches(session, train))
                    {
                        optimizer.zero_grad();
                        functional.cross_entropy(session.Model.call(x), y).backward();
                        optimizer.step();
                    }
                }

                static IEnumerable<(Tensor x, Tensor y)> TrainingBatches(Session s, IReadOnlyList<(Tensor x, Tensor y)> data)
                {
                    s.Model.train();
                    foreach (var item in data) yield return item;
                }
            }
            """);

    [Fact]
    public Task IT09_a_module_reached_through_a_non_module_parameter_of_a_plain_helper_is_not_left_as_it_was()
        => V8.AnalyzerAsync(BnNet + """
            class Session { public Net Model = new Net(); }

            static class Trainer
            {
                static void Run(Session session, IReadOnlyList<(Tensor x, Tensor y)> train)
                {
                    var optimizer = optim.SGD(session.Model.parameters(), 0.01);
                    session.Model.eval();
                    StartTraining(session);
                    foreach (var (x, y) in train)
                    {
                        optimizer.zero_grad();
                        functional.cross_entropy(session.Model.call(x), y).backward();
                        optimizer.step();
                    }
                }

                static void StartTraining(Session s) => s.Model.train();
            }
            """);

    // ================================================================ iterators: behaviour confirmed

    [Fact]
    public Task IT10_breaking_out_of_an_iterator_that_restores_at_its_end_leaves_the_mode_unknown()
        => V7.AnalyzerAsync(BnNet + """
            class Trainer
            {
                void Run(IReadOnlyList<(Tensor x, Tensor y)> train, IReadOnlyList<(Tensor x, Tensor y)> valid, bool c)
                {
                    var model = new Net();
                    var optimizer = optim.SGD(model.parameters(), 0.01);
                    foreach (var (x, y) in train)
                    {
                        optimizer.zero_grad();
                        functional.cross_entropy(model.call(x), y).backward();
                        optimizer.step();
                    }

                    foreach (var p in Predictions(model, valid))
                    {
                        if (p < 0) goto done;
                        Console.WriteLine(p);
                    }

                    done:
                    using (torch.no_grad())
                    {
                        Console.WriteLine(model.call(valid[0].x).argmax(1).item<long>());
                    }
                }

                static IEnumerable<long> Predictions(Net m, IReadOnlyList<(Tensor x, Tensor y)> data)
                {
                    m.eval();
                    foreach (var (x, _) in data)
                    {
                        if (x is null) yield break;
                        yield return m.call(x).argmax(1).item<long>();
                    }

                    m.train();
                }
            }
            """);

    [Fact]
    public Task IT11_await_foreach_over_an_async_iterator_forgets_every_mode()
        => V7.AnalyzerAsync(BnNet + """
            class Trainer
            {
                async System.Threading.Tasks.Task Run(IReadOnlyList<(Tensor x, Tensor y)> train, IReadOnlyList<(Tensor x, Tensor y)> valid)
                {
                    var model = new Net();
                    var optimizer = optim.SGD(model.parameters(), 0.01);
                    foreach (var (x, y) in train)
                    {
                        optimizer.zero_grad();
                        functional.cross_entropy(model.call(x), y).backward();
                        optimizer.step();
                    }

                    await foreach (var x in Validation(model, valid))
                    {
                        using var _ = torch.no_grad();
                        Console.WriteLine(model.call(x).argmax(1).item<long>());
                    }
                }

                static async IAsyncEnumerable<Tensor> Validation(Net m, IReadOnlyList<(Tensor x, Tensor y)> data)
                {
                    m.eval();
                    foreach (var (x, _) in data) { await System.Threading.Tasks.Task.Yield(); yield return x; }
                }
            }
            """);

    [Fact]
    public Task IT12_a_recursive_iterator_raises_no_exception_and_no_false_report()
        => V7.AnalyzerAsync(BnNet + """
            class Trainer
            {
                void Run(IReadOnlyList<(Tensor x, Tensor y)> train, IReadOnlyList<(Tensor x, Tensor y)> valid)
                {
                    var model = new Net();
                    var optimizer = optim.SGD(model.parameters(), 0.01);
                    foreach (var (x, y) in train)
                    {
                        optimizer.zero_grad();
                        functional.cross_entropy(model.call(x), y).backward();
                        optimizer.step();
                    }

                    foreach (var x in Walk(model, valid, 3))
                    {
                        using var _ = torch.no_grad();
                        Console.WriteLine(model.call(x).argmax(1).item<long>());
                    }
                }

                static IEnumerable<Tensor> Walk(Net m, IReadOnlyList<(Tensor x, Tensor y)> data, int depth)
                {
                    if (depth > 0)
                    {
                        foreach (var x in Walk(m, data, depth - 1)) yield return x;
                    }

                    m.eval();
                    yield return data[depth].x;
                }
            }
            """);

    [Fact]
    public Task IT13_an_instance_iterator_that_switches_its_field_is_followed()
        => V7.AnalyzerAsync(BnNet + """
            class Trainer
            {
                private readonly Net _model = new Net();

                void Run(IReadOnlyList<(Tensor x, Tensor y)> train, IReadOnlyList<(Tensor x, Tensor y)> valid)
                {
                    var optimizer = optim.SGD(_model.parameters(), 0.01);
                    _model.train();
                    foreach (var (x, y) in train)
                    {
                        optimizer.zero_grad();
                        functional.cross_entropy(_model.call(x), y).backward();
                        optimizer.step();
                    }

                    foreach (var x in Validation(valid))
                    {
                        using var _ = torch.no_grad();
                        Console.WriteLine(_model.call(x).argmax(1).item<long>());
                    }
                }

                IEnumerable<Tensor> Validation(IReadOnlyList<(Tensor x, Tensor y)> data)
                {
                    _model.eval();
                    foreach (var (x, _) in data) yield return x;
                }
            }
            """);

    [Fact]
    public Task IT14_an_iterator_with_try_catch_is_followed_without_exception()
        => V7.AnalyzerAsync(BnNet + """
            class Trainer
            {
                void Run(IReadOnlyList<(Tensor x, Tensor y)> train, IReadOnlyList<(Tensor x, Tensor y)> valid)
                {
                    var model = new Net();
                    var optimizer = optim.SGD(model.parameters(), 0.01);
                    foreach (var (x, y) in train)
                    {
                        optimizer.zero_grad();
                        functional.cross_entropy(model.call(x), y).backward();
                        optimizer.step();
                    }

                    foreach (var x in Validation(model, valid))
                    {
                        using var _ = torch.no_grad();
                        Console.WriteLine(model.call(x).argmax(1).item<long>());
                    }
                }

                static IEnumerable<Tensor> Validation(Net m, IReadOnlyList<(Tensor x, Tensor y)> data)
                {
                    try { m.eval(); } catch (Exception) { m.train(); throw; }
                    foreach (var (x, _) in data) yield return x;
                }
            }
            """);
}
