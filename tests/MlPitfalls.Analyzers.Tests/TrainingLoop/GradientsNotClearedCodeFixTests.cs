using System.Threading.Tasks;
using Microsoft.CodeAnalysis.Testing;
using MlPitfalls.CodeFixes.TrainingLoop;
using Xunit;
using static MlPitfalls.Analyzers.Tests.TrainingLoop.Expected;
using Verifier = MlPitfalls.Analyzers.Tests.Verifiers.Verify<
    MlPitfalls.Analyzers.TrainingLoop.GradientsNotClearedAnalyzer,
    MlPitfalls.CodeFixes.TrainingLoop.GradientsNotClearedCodeFix>;

namespace MlPitfalls.Analyzers.Tests.TrainingLoop;

public class GradientsNotClearedCodeFixTests
{
    [Fact]
    public Task Inserts_zero_grad_as_the_first_statement_of_the_loop()
        => Verifier.CodeFixAsync(
            """
            class Trainer
            {
                void Train(Module<Tensor, Tensor> model, IEnumerable<(Tensor x, Tensor y)> batches)
                {
                    var optimizer = optim.Adam(model.parameters());
                    foreach (var (x, y) in batches)
                    {
                        var loss = nn.functional.cross_entropy(model.call(x), y);
                        {|#0:loss.backward()|};
                        optimizer.step();
                    }
                }
            }
            """,
            """
            class Trainer
            {
                void Train(Module<Tensor, Tensor> model, IEnumerable<(Tensor x, Tensor y)> batches)
                {
                    var optimizer = optim.Adam(model.parameters());
                    foreach (var (x, y) in batches)
                    {
                        optimizer.zero_grad();
                        var loss = nn.functional.cross_entropy(model.call(x), y);
                        loss.backward();
                        optimizer.step();
                    }
                }
            }
            """,
            GradientsNotClearedCodeFix.InsertEquivalenceKey,
            MLP001(0));

    [Fact]
    public Task Uses_the_receiver_as_written_for_a_field()
        => Verifier.CodeFixAsync(
            """
            class Trainer
            {
                private readonly Module<Tensor, Tensor> model = nn.Linear(4, 2);
                private optim.Optimizer _optimizer = null!;

                void Fit(IEnumerable<Tensor> batches)
                {
                    for (int i = 0; i < 10; i++)
                    {
                        {|#0:model.call(torch.rand(2, 4)).sum().backward()|};
                        this._optimizer.step();
                    }
                }
            }
            """,
            """
            class Trainer
            {
                private readonly Module<Tensor, Tensor> model = nn.Linear(4, 2);
                private optim.Optimizer _optimizer = null!;

                void Fit(IEnumerable<Tensor> batches)
                {
                    for (int i = 0; i < 10; i++)
                    {
                        this._optimizer.zero_grad();
                        model.call(torch.rand(2, 4)).sum().backward();
                        this._optimizer.step();
                    }
                }
            }
            """,
            MLP001(0));

    [Fact]
    public Task Wraps_a_single_statement_body_in_a_block()
        => Verifier.CodeFixAsync(
            """
            class Trainer
            {
                private readonly Module<Tensor, Tensor> model = nn.Linear(4, 2);
                private readonly optim.Optimizer optimizer;

                Trainer() => optimizer = optim.SGD(model.parameters(), 0.1);

                void TrainStep(Tensor x)
                {
                    model.call(x).sum().backward();
                    optimizer.step();
                }

                void Fit(IEnumerable<Tensor> batches)
                {
                    foreach (var x in batches)
                        {|#0:TrainStep(x)|};
                }
            }
            """,
            """
            class Trainer
            {
                private readonly Module<Tensor, Tensor> model = nn.Linear(4, 2);
                private readonly optim.Optimizer optimizer;

                Trainer() => optimizer = optim.SGD(model.parameters(), 0.1);

                void TrainStep(Tensor x)
                {
                    model.call(x).sum().backward();
                    optimizer.step();
                }

                void Fit(IEnumerable<Tensor> batches)
                {
                    foreach (var x in batches)
                    {
                        optimizer.zero_grad();
                        TrainStep(x);
                    }
                }
            }
            """,
            MLP001(0));

    [Fact]
    public Task Moves_a_clear_that_sits_between_backward_and_step_before_backward()
        => Verifier.CodeFixAsync(
            """
            class Trainer
            {
                void Train(Module<Tensor, Tensor> model, IEnumerable<Tensor> batches)
                {
                    var optimizer = optim.Adam(model.parameters());
                    foreach (var x in batches)
                    {
                        var loss = model.call(x).sum();
                        loss.backward();
                        {|#0:optimizer.zero_grad()|};
                        optimizer.step();
                    }
                }
            }
            """,
            """
            class Trainer
            {
                void Train(Module<Tensor, Tensor> model, IEnumerable<Tensor> batches)
                {
                    var optimizer = optim.Adam(model.parameters());
                    foreach (var x in batches)
                    {
                        var loss = model.call(x).sum();
                        optimizer.zero_grad();
                        loss.backward();
                        optimizer.step();
                    }
                }
            }
            """,
            GradientsNotClearedCodeFix.MoveEquivalenceKey,
            MLP001(0));

    [Fact]
    public Task Fix_all_fixes_every_loop_in_the_document()
        => Verifier.CodeFixAsync(
            """
            class Trainer
            {
                void Pretrain(Module<Tensor, Tensor> encoder, IEnumerable<Tensor> batches)
                {
                    var optimizer = optim.Adam(encoder.parameters());
                    foreach (var x in batches)
                    {
                        {|#0:encoder.call(x).pow(2).mean().backward()|};
                        optimizer.step();
                    }
                }

                void Finetune(Module<Tensor, Tensor> model, IEnumerable<Tensor> batches)
                {
                    var sgd = optim.SGD(model.parameters(), 0.01);
                    for (int epoch = 0; epoch < 3; epoch++)
                    {
                        foreach (var x in batches)
                        {
                            {|#1:model.call(x).sum().backward()|};
                            sgd.step();
                        }
                    }
                }
            }
            """,
            """
            class Trainer
            {
                void Pretrain(Module<Tensor, Tensor> encoder, IEnumerable<Tensor> batches)
                {
                    var optimizer = optim.Adam(encoder.parameters());
                    foreach (var x in batches)
                    {
                        optimizer.zero_grad();
                        encoder.call(x).pow(2).mean().backward();
                        optimizer.step();
                    }
                }

                void Finetune(Module<Tensor, Tensor> model, IEnumerable<Tensor> batches)
                {
                    var sgd = optim.SGD(model.parameters(), 0.01);
                    for (int epoch = 0; epoch < 3; epoch++)
                    {
                        foreach (var x in batches)
                        {
                            sgd.zero_grad();
                            model.call(x).sum().backward();
                            sgd.step();
                        }
                    }
                }
            }
            """,
            MLP001(0),
            MLP001(1));

    [Fact]
    public Task Fix_all_clears_both_optimizers_of_a_gan_loop()
        => Verifier.CodeFixAsync(
            """
            class Gan
            {
                void Train(Module<Tensor, Tensor> generator, Module<Tensor, Tensor> discriminator, IEnumerable<Tensor> batches)
                {
                    var optG = optim.Adam(generator.parameters());
                    var optD = optim.Adam(discriminator.parameters());
                    foreach (var real in batches)
                    {
                        var fake = generator.call(torch.randn(real.shape[0], 16));
                        {|#0:(discriminator.call(fake.detach()).mean() - discriminator.call(real).mean()).backward()|};
                        optD.step();
                        {|#1:(-discriminator.call(fake).mean()).backward()|};
                        optG.step();
                    }
                }
            }
            """,
            """
            class Gan
            {
                void Train(Module<Tensor, Tensor> generator, Module<Tensor, Tensor> discriminator, IEnumerable<Tensor> batches)
                {
                    var optG = optim.Adam(generator.parameters());
                    var optD = optim.Adam(discriminator.parameters());
                    foreach (var real in batches)
                    {
                        optD.zero_grad();
                        optG.zero_grad();
                        var fake = generator.call(torch.randn(real.shape[0], 16));
                        (discriminator.call(fake.detach()).mean() - discriminator.call(real).mean()).backward();
                        optD.step();
                        (-discriminator.call(fake).mean()).backward();
                        optG.step();
                    }
                }
            }
            """,
            MLP001(0),
            MLP001(1));

    [Fact]
    public async Task No_fix_is_offered_when_the_optimizer_is_not_visible_in_the_loop()
    {
        var source = """
            class Trainer
            {
                void TrainStep(Module<Tensor, Tensor> model, Tensor x)
                {
                    var optimizer = optim.SGD(model.parameters(), 0.1);
                    model.call(x).sum().backward();
                    optimizer.step();
                }

                void Fit(Module<Tensor, Tensor> model, IEnumerable<Tensor> batches)
                {
                    foreach (var x in batches)
                    {
                        {|#0:TrainStep(model, x)|};
                    }
                }
            }
            """;
        await Verifier.NoCodeFixAsync(source, MLP001(0));
    }

    /// <summary>
    /// The inserted <c>x.zero_grad();</c> must name, at the start of the body, the object the loop steps: no fix when
    /// that name is declared inside the body (a local, an inner loop's variable, a lambda's parameter), which would not
    /// compile, or when the loop assigns it, which would clear the previous optimizer (or null, on the first pass).
    /// </summary>
    [Theory]
    [InlineData("var opt = optim.SGD(model.parameters(), 0.1); {|#0:model.call(x).sum().backward()|}; opt.step();")]
    [InlineData("lazy ??= optim.SGD(model.parameters(), 0.1); {|#0:model.call(x).sum().backward()|}; lazy.step();")]
    [InlineData("var opt = optim.SGD(model.parameters(), 0.1); {|#0:StepThrough(opt, x)|};")]
    public async Task No_fix_is_offered_when_the_optimizer_is_not_the_same_object_at_the_start_of_the_body(string body)
    {
        var source = $$"""
            #nullable enable
            class Trainer
            {
                static void StepThrough(optim.Optimizer o, Tensor x) { x.sum().backward(); o.step(); }

                void Fit(Module<Tensor, Tensor> model, IEnumerable<Tensor> batches)
                {
                    var optimizer = optim.SGD(model.parameters(), 0.1);
                    optim.Optimizer? lazy = null;
                    foreach (var x in batches)
                    {
                        {{body}}
                    }
                }
            }
            """;
        await Verifier.NoCodeFixAsync(source, MLP001(0));
    }

    [Fact]
    public Task Fix_all_moves_a_clear_reported_for_two_optimizers_once()
        => Verifier.CodeFixAsync(
            """
            class Trainer
            {
                void Train(Module<Tensor, Tensor> model, IEnumerable<Tensor> batches)
                {
                    var sgd = optim.SGD(model.parameters(), 0.1);
                    var adam = optim.Adam(model.parameters());
                    foreach (var x in batches)
                    {
                        model.call(x).sum().backward();
                        {|#0:model.zero_grad()|};
                        sgd.step();
                        adam.step();
                    }
                }
            }
            """,
            """
            class Trainer
            {
                void Train(Module<Tensor, Tensor> model, IEnumerable<Tensor> batches)
                {
                    var sgd = optim.SGD(model.parameters(), 0.1);
                    var adam = optim.Adam(model.parameters());
                    foreach (var x in batches)
                    {
                        model.zero_grad();
                        model.call(x).sum().backward();
                        sgd.step();
                        adam.step();
                    }
                }
            }
            """,
            GradientsNotClearedCodeFix.MoveEquivalenceKey,
            MLP001(0),
            MLP001(0));

    /// <summary>Moving a statement across a preprocessor directive would move it into or out of a conditional region.</summary>
    [Fact]
    public async Task No_move_is_offered_across_a_preprocessor_directive()
    {
        var source = """
            class Trainer
            {
                void Train(Module<Tensor, Tensor> model, IEnumerable<Tensor> batches)
                {
                    var optimizer = optim.Adam(model.parameters());
                    foreach (var x in batches)
                    {
                        model.call(x).sum().backward();
            #if !LEGACY
                        {|#0:optimizer.zero_grad()|};
            #endif
                        optimizer.step();
                    }
                }
            }
            """;
        await Verifier.NoCodeFixAsync(source, MLP001(0));
    }

    /// <summary>
    /// A helper stepping its own field is fixed with that field only when the loop runs on the same object: called on
    /// another instance, or from a static method, <c>_optimizer</c> at the loop names a different optimizer or none.
    /// </summary>
    [Theory]
    [InlineData("static void Fit(Trainer t, IEnumerable<Tensor> batches)", "t.TrainStep(x)")]
    [InlineData("void Fit(Trainer other, IEnumerable<Tensor> batches)", "other.TrainStep(x)")]
    public async Task No_fix_names_a_helpers_field_when_the_loop_runs_on_another_object(string method, string call)
    {
        var source = $$"""
            class Trainer
            {
                private readonly Module<Tensor, Tensor> _model = nn.Linear(4, 1);
                private readonly optim.Optimizer _optimizer;

                Trainer() => _optimizer = optim.SGD(_model.parameters(), 0.1);

                void TrainStep(Tensor x)
                {
                    _model.call(x).sum().backward();
                    _optimizer.step();
                }

                {{method}}
                {
                    foreach (var x in batches)
                    {
                        {|#0:{{call}}|};
                    }
                }
            }
            """;
        await Verifier.NoCodeFixAsync(source, MLP001(0));
    }

    [Fact]
    public Task A_helpers_field_is_named_when_the_loop_runs_on_the_same_object()
        => Verifier.CodeFixAsync(
            """
            class Trainer
            {
                private readonly Module<Tensor, Tensor> _model = nn.Linear(4, 1);
                private readonly optim.Optimizer _optimizer;

                Trainer() => _optimizer = optim.SGD(_model.parameters(), 0.1);

                void TrainStep(Tensor x)
                {
                    _model.call(x).sum().backward();
                    _optimizer.step();
                }

                void Fit(IEnumerable<Tensor> batches)
                {
                    foreach (var x in batches)
                    {
                        {|#0:this.TrainStep(x)|};
                    }
                }
            }
            """,
            """
            class Trainer
            {
                private readonly Module<Tensor, Tensor> _model = nn.Linear(4, 1);
                private readonly optim.Optimizer _optimizer;

                Trainer() => _optimizer = optim.SGD(_model.parameters(), 0.1);

                void TrainStep(Tensor x)
                {
                    _model.call(x).sum().backward();
                    _optimizer.step();
                }

                void Fit(IEnumerable<Tensor> batches)
                {
                    foreach (var x in batches)
                    {
                        _optimizer.zero_grad();
                        this.TrainStep(x);
                    }
                }
            }
            """,
            GradientsNotClearedCodeFix.InsertEquivalenceKey,
            MLP001(0));

    [Fact]
    public Task An_optimizer_handed_to_a_helper_is_named_as_the_loop_writes_the_argument()
        => Verifier.CodeFixAsync(
            """
            class Session { public optim.Optimizer Optimizer = null!; }

            class Trainer
            {
                static void TrainStep(optim.Optimizer optimizer, Tensor x)
                {
                    x.sum().backward();
                    optimizer.step();
                }

                void Fit(Session session, IEnumerable<Tensor> batches)
                {
                    foreach (var x in batches)
                    {
                        {|#0:TrainStep(session.Optimizer, x)|};
                    }
                }
            }
            """,
            """
            class Session { public optim.Optimizer Optimizer = null!; }

            class Trainer
            {
                static void TrainStep(optim.Optimizer optimizer, Tensor x)
                {
                    x.sum().backward();
                    optimizer.step();
                }

                void Fit(Session session, IEnumerable<Tensor> batches)
                {
                    foreach (var x in batches)
                    {
                        session.Optimizer.zero_grad();
                        TrainStep(session.Optimizer, x);
                    }
                }
            }
            """,
            GradientsNotClearedCodeFix.InsertEquivalenceKey,
            MLP001(0));

    /// <summary>The inserted clear goes above the body's leading comments and conditional regions, which stay intact.</summary>
    [Fact]
    public Task Inserts_above_a_leading_comment_and_conditional_region()
        => Verifier.CodeFixAsync(
            """
            class Trainer
            {
                void Train(Module<Tensor, Tensor> model, IEnumerable<Tensor> batches)
                {
                    var optimizer = optim.Adam(model.parameters());
                    foreach (var x in batches)
                    {
            #if TRACE_BATCHES
                        Console.WriteLine(x);
            #endif
                        // forward pass
                        var loss = model.call(x).sum(); // scalar
                        {|#0:loss.backward()|};
                        optimizer.step();
                    }
                }
            }
            """,
            """
            class Trainer
            {
                void Train(Module<Tensor, Tensor> model, IEnumerable<Tensor> batches)
                {
                    var optimizer = optim.Adam(model.parameters());
                    foreach (var x in batches)
                    {
                        optimizer.zero_grad();
            #if TRACE_BATCHES
                        Console.WriteLine(x);
            #endif
                        // forward pass
                        var loss = model.call(x).sum(); // scalar
                        loss.backward();
                        optimizer.step();
                    }
                }
            }
            """,
            GradientsNotClearedCodeFix.InsertEquivalenceKey,
            MLP001(0));

    /// <summary>
    /// A missing clear in one loop and a misplaced one in another: one fix-all pass applies both kinds, whichever action
    /// it starts from, as `dotnet format analyzers --diagnostics MLP001` does (it used to need two runs).
    /// </summary>
    [Fact]
    public async Task Fix_all_applies_the_insert_and_the_move_in_one_pass()
    {
        const string Before = """
            class Trainer
            {
                void Train(Module<Tensor, Tensor> model, IEnumerable<Tensor> batches)
                {
                    var optimizer = optim.Adam(model.parameters());
                    foreach (var x in batches)
                    {
                        {|#0:model.call(x).sum().backward()|};
                        optimizer.step();
                    }

                    foreach (var x in batches)
                    {
                        model.call(x).sum().backward();
                        {|#1:optimizer.zero_grad()|};
                        optimizer.step();
                    }
                }
            }
            """;
        const string After = """
            class Trainer
            {
                void Train(Module<Tensor, Tensor> model, IEnumerable<Tensor> batches)
                {
                    var optimizer = optim.Adam(model.parameters());
                    foreach (var x in batches)
                    {
                        optimizer.zero_grad();
                        model.call(x).sum().backward();
                        optimizer.step();
                    }

                    foreach (var x in batches)
                    {
                        optimizer.zero_grad();
                        model.call(x).sum().backward();
                        optimizer.step();
                    }
                }
            }
            """;
        var test = Verifier.Create();
        test.TestCode = Verifier.Usings + Before;
        test.FixedCode = Verifier.Usings + After;
        test.BatchFixedCode = Verifier.Usings + After;
        test.NumberOfIncrementalIterations = 2;
        test.NumberOfFixAllIterations = 1;
        test.ExpectedDiagnostics.Add(MLP001(0));
        test.ExpectedDiagnostics.Add(MLP001(1));
        await test.RunAsync();
    }

    /// <summary>A loop written directly in top-level statements is fixed like any other.</summary>
    [Fact]
    public async Task Fixes_a_loop_in_top_level_statements()
    {
        var test = Verifier.Create();
        test.TestState.OutputKind = Microsoft.CodeAnalysis.OutputKind.ConsoleApplication;
        test.TestCode = Verifier.Usings + """
            var model = nn.Linear(4, 1);
            var optimizer = optim.SGD(model.parameters(), 0.1);
            for (int i = 0; i < 10; i++)
            {
                {|#0:model.call(ones(4)).sum().backward()|};
                optimizer.step();
            }

            """;
        test.FixedCode = Verifier.Usings + """
            var model = nn.Linear(4, 1);
            var optimizer = optim.SGD(model.parameters(), 0.1);
            for (int i = 0; i < 10; i++)
            {
                optimizer.zero_grad();
                model.call(ones(4)).sum().backward();
                optimizer.step();
            }

            """;
        test.ExpectedDiagnostics.Add(MLP001(0));
        await test.RunAsync();
    }

    /// <summary>With two losses backpropagated before the step, the clear moves before the first: both must survive.</summary>
    [Fact]
    public Task Moves_a_misplaced_clear_before_the_first_backward_of_the_step()
        => Verifier.CodeFixAsync(
            """
            class Trainer
            {
                void Train(Module<Tensor, Tensor> model, IEnumerable<Tensor> batches)
                {
                    var optimizer = optim.Adam(model.parameters());
                    foreach (var x in batches)
                    {
                        model.call(x).sum().backward();
                        model.call(x).pow(2).mean().backward();
                        {|#0:optimizer.zero_grad()|};
                        optimizer.step();
                    }
                }
            }
            """,
            """
            class Trainer
            {
                void Train(Module<Tensor, Tensor> model, IEnumerable<Tensor> batches)
                {
                    var optimizer = optim.Adam(model.parameters());
                    foreach (var x in batches)
                    {
                        optimizer.zero_grad();
                        model.call(x).sum().backward();
                        model.call(x).pow(2).mean().backward();
                        optimizer.step();
                    }
                }
            }
            """,
            GradientsNotClearedCodeFix.MoveEquivalenceKey,
            MLP001(0));

    /// <summary>No move when the clear names something declared or assigned after backward(): moved up, it would not compile or name another optimizer.</summary>
    [Theory]
    [InlineData("var current = optimizer;", "current")]
    [InlineData("active = optimizer;", "active")]
    public async Task No_move_when_the_clear_names_something_set_after_backward(string setUp, string name)
    {
        var source = $$"""
            class Trainer
            {
                void Train(Module<Tensor, Tensor> model, IEnumerable<Tensor> batches)
                {
                    var optimizer = optim.Adam(model.parameters());
                    optim.Optimizer active = optimizer;
                    foreach (var x in batches)
                    {
                        model.call(x).sum().backward();
                        {{setUp}}
                        {|#0:{{name}}.zero_grad()|};
                        {{name}}.step();
                    }
                }
            }
            """;
        await Verifier.NoCodeFixAsync(source, MLP001(0));
    }
}
