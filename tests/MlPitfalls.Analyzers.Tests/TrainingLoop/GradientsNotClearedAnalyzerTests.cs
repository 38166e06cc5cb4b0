using System;
using System.Threading.Tasks;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.Testing;
using MlPitfalls.Analyzers.TrainingLoop;
using MlPitfalls.CodeFixes.TrainingLoop;
using Xunit;
using static MlPitfalls.Analyzers.Tests.TrainingLoop.Expected;
using Verifier = MlPitfalls.Analyzers.Tests.Verifiers.Verify<
    MlPitfalls.Analyzers.TrainingLoop.GradientsNotClearedAnalyzer,
    MlPitfalls.CodeFixes.TrainingLoop.GradientsNotClearedCodeFix>;

namespace MlPitfalls.Analyzers.Tests.TrainingLoop;

public class GradientsNotClearedAnalyzerTests
{
    /// <summary>A training method with a model, an optimizer built from its parameters and a loss; the body is the test's.</summary>
    internal static string Training(string body) => $$"""
        class Trainer
        {
            void Train(Module<Tensor, Tensor> model, IEnumerable<(Tensor x, Tensor y)> batches)
            {
                var optimizer = optim.Adam(model.parameters());
                var criterion = nn.CrossEntropyLoss();
        {{body}}
            }
        }
        """;

    /// <summary>MLP001's message for a loop whose backward() and step both run through <paramref name="helper"/>, with nothing clearing.</summary>
    private static DiagnosticResult NothingClearsThrough(string helper)
        => MLP001(
            "optimizer",
            $"the loop runs backward() (through '{helper}') and 'optimizer.step()' (through '{helper}') every iteration but nothing in it clears the gradients, " +
            "so each step applies the sum of every gradient so far; call 'optimizer.zero_grad()' at the start of each iteration");

    // ---------------------------------------------------------------- the bug

    [Fact]
    public Task Loop_without_any_clearing_is_reported_with_a_message_naming_the_optimizer()
        => Verifier.AnalyzerAsync(
            Training("""
                    foreach (var (x, y) in batches)
                    {
                        var loss = criterion.call(model.call(x), y);
                        {|#0:loss.backward()|};
                        optimizer.step();
                    }
            """),
            MLP001(
                "optimizer",
                "the loop runs backward() and 'optimizer.step()' every iteration but nothing in it clears the gradients, " +
                "so each step applies the sum of every gradient so far; call 'optimizer.zero_grad()' at the start of each iteration"));

    [Theory]
    // Library calls that are handed the model's parameters but cannot clear them (seen in real TorchSharp examples).
    [InlineData("var ps = model.parameters().ToArray();")]
    [InlineData("var count = model.parameters().Count();")]
    [InlineData("var list = new List<Parameter>(model.parameters());")]
    [InlineData("Console.WriteLine(model);")]
    [InlineData("var text = string.Join(\", \", model.parameters().Select(p => p.shape.Length));")]
    public Task Library_calls_handed_the_parameters_do_not_count_as_clearing(string statement)
        => Verifier.AnalyzerAsync(
            Training($$"""
                    foreach (var (x, y) in batches)
                    {
                        {{statement}}
                        var loss = criterion.call(model.call(x), y);
                        {|#0:loss.backward()|};
                        optimizer.step();
                    }
            """),
            MLP001());

    [Theory]
    // A clear written in the loop but kept to run later clears nothing during the iteration.
    [InlineData("callbacks.Add(() => optimizer.zero_grad());")]
    [InlineData("onEpochEnd += () => optimizer.zero_grad();")]
    public Task A_clear_in_a_lambda_kept_for_later_does_not_count(string keep)
        => Verifier.AnalyzerAsync(
            Training($$"""
                    var callbacks = new List<Action>();
                    Action onEpochEnd = () => { };
                    foreach (var (x, y) in batches)
                    {
                        {{keep}}
                        var loss = criterion.call(model.call(x), y);
                        {|#0:loss.backward()|};
                        optimizer.step();
                    }
            """),
            MLP001());

    [Fact]
    public Task A_step_held_in_a_lambda_variable_is_named_by_the_variable()
        => Verifier.AnalyzerAsync(
            Training("""
                    foreach (var (x, y) in batches)
                    {
                        Action trainStep = () =>
                        {
                            var loss = criterion.call(model.call(x), y);
                            loss.backward();
                            optimizer.step();
                        };
                        {|#0:trainStep()|};
                    }
            """),
            NothingClearsThrough("trainStep"));

    // The gate before a loop is analysed reads names only: a lambda written before the loop and run by Invoke, and a
    // virtual helper whose own body steps, must still let the loop through.
    // Called by its simple name, the local is found among the member's declarations (no source method has that name).
    [Theory]
    [InlineData("trainStep.Invoke(x, y)")]
    [InlineData("trainStep(x, y)")]
    public Task A_step_in_a_lambda_written_before_the_loop_and_run_through_its_local_is_judged(string run)
        => Verifier.AnalyzerAsync(
            Training($$"""
                    Action<Tensor, Tensor> trainStep = (x, y) =>
                    {
                        var loss = criterion.call(model.call(x), y);
                        loss.backward();
                        optimizer.step();
                    };
                    foreach (var (x, y) in batches)
                    {
                        {|#0:{{run}}|};
                    }
            """),
            NothingClearsThrough("trainStep"));

    // The gate must see the helper wherever it is declared: a local function before the loop, a lambda local in top-level
    // statements (one body, not a member per statement).
    [Fact]
    public Task A_step_in_a_local_function_declared_before_the_loop_is_judged()
        => Verifier.AnalyzerAsync(
            Training("""
                    void TrainStep(Tensor x, Tensor y)
                    {
                        var loss = criterion.call(model.call(x), y);
                        loss.backward();
                        optimizer.step();
                    }

                    foreach (var (x, y) in batches)
                    {
                        {|#0:TrainStep(x, y)|};
                    }
            """),
            NothingClearsThrough("TrainStep"));

    // The same helpers, clearing before backward(): the loop is read through them and stays quiet.
    [Fact]
    public Task A_local_function_declared_before_the_loop_that_clears_is_not_reported()
        => Verifier.AnalyzerAsync(
            Training("""
                    void TrainStep(Tensor x, Tensor y)
                    {
                        optimizer.zero_grad();
                        var loss = criterion.call(model.call(x), y);
                        loss.backward();
                        optimizer.step();
                    }

                    foreach (var (x, y) in batches)
                    {
                        TrainStep(x, y);
                    }
            """));

    [Fact]
    public Task A_lambda_local_of_top_level_statements_that_clears_is_not_reported()
    {
        var test = Verifier.Create();
        test.TestState.OutputKind = Microsoft.CodeAnalysis.OutputKind.ConsoleApplication;
        test.TestCode = Verifier.Usings + """
            var model = nn.Linear(10, 1);
            var optimizer = optim.Adam(model.parameters());
            var batches = new List<(Tensor x, Tensor y)>();
            Action<Tensor, Tensor> trainStep = (x, y) =>
            {
                optimizer.zero_grad();
                functional.mse_loss(model.call(x), y).backward();
                optimizer.step();
            };

            foreach (var (x, y) in batches)
            {
                trainStep(x, y);
            }
            """;
        return test.RunAsync();
    }

    [Fact]
    public Task A_step_in_a_lambda_local_of_top_level_statements_is_judged()
    {
        var test = Verifier.Create();
        test.TestState.OutputKind = Microsoft.CodeAnalysis.OutputKind.ConsoleApplication;
        test.TestCode = Verifier.Usings + """
            var model = nn.Linear(10, 1);
            var optimizer = optim.Adam(model.parameters());
            var batches = new List<(Tensor x, Tensor y)>();
            Action<Tensor, Tensor> trainStep = (x, y) =>
            {
                functional.mse_loss(model.call(x), y).backward();
                optimizer.step();
            };

            foreach (var (x, y) in batches)
            {
                {|#0:trainStep(x, y)|};
            }
            """;
        test.ExpectedDiagnostics.Add(NothingClearsThrough("trainStep"));
        return test.RunAsync();
    }

    [Fact]
    public Task A_step_in_the_body_of_a_virtual_helper_is_judged()
        => Verifier.AnalyzerAsync("""
            class Trainer
            {
                protected virtual Tensor TrainStep(Module<Tensor, Tensor> model, optim.Optimizer optimizer, Tensor x)
                {
                    var loss = model.call(x).sum();
                    loss.backward();
                    optimizer.step();
                    return loss;
                }

                public void Fit(Module<Tensor, Tensor> model, IEnumerable<Tensor> batches)
                {
                    var optimizer = optim.SGD(model.parameters(), 0.01);
                    foreach (var x in batches)
                    {
                        {|#0:TrainStep(model, optimizer, x)|};
                    }
                }
            }
            """,
            NothingClearsThrough("TrainStep"));

    [Theory]
    [InlineData("for (int i = 0; i < 100; i++)")]
    [InlineData("while (true)")]
    public Task Every_loop_kind_is_checked(string header)
        => Verifier.AnalyzerAsync(Training($$"""
                    {{header}}
                    {
                        var loss = criterion.call(model.call(torch.rand(8, 4)), torch.zeros(8, dtype: ScalarType.Int64));
                        {|#0:loss.backward()|};
                        optimizer.step();
                    }
            """), MLP001());

    [Fact]
    public Task Do_while_loop_is_checked()
        => Verifier.AnalyzerAsync(Training("""
                    int i = 0;
                    do
                    {
                        var loss = criterion.call(model.call(torch.rand(8, 4)), torch.zeros(8, dtype: ScalarType.Int64));
                        {|#0:loss.backward()|};
                        optimizer.step();
                    } while (++i < 10);
            """), MLP001());

    [Fact]
    public Task Autograd_backward_counts_as_backward()
        => Verifier.AnalyzerAsync(Training("""
                    foreach (var (x, y) in batches)
                    {
                        var loss = criterion.call(model.call(x), y);
                        {|#0:torch.autograd.backward(loss)|};
                        optimizer.step();
                    }
            """), MLP001());

    [Fact]
    public Task Clearing_once_before_the_loop_is_reported()
        => Verifier.AnalyzerAsync(Training("""
                    optimizer.zero_grad();
                    foreach (var (x, y) in batches)
                    {
                        var loss = criterion.call(model.call(x), y);
                        {|#0:loss.backward()|};
                        optimizer.step();
                    }
            """), MLP001());

    [Fact]
    public Task Clearing_once_per_epoch_around_a_batch_loop_is_reported_on_the_batch_loop_only()
        => Verifier.AnalyzerAsync(Training("""
                    for (int epoch = 0; epoch < 10; epoch++)
                    {
                        optimizer.zero_grad();
                        foreach (var (x, y) in batches)
                        {
                            var loss = criterion.call(model.call(x), y);
                            {|#0:loss.backward()|};
                            optimizer.step();
                        }
                    }
            """), MLP001());

    [Fact]
    public Task Clearing_between_backward_and_step_is_reported_on_the_clear()
        => Verifier.AnalyzerAsync(
            Training("""
                    foreach (var (x, y) in batches)
                    {
                        var loss = criterion.call(model.call(x), y);
                        loss.backward();
                        {|#0:optimizer.zero_grad()|};
                        optimizer.step();
                    }
            """),
            MLP001(
                "optimizer",
                "'optimizer.zero_grad()' runs after backward() and before 'optimizer.step()', so the step applies zeroed gradients; move it before backward()"));

    [Fact]
    public Task Gan_loop_that_never_clears_the_generator_optimizer_is_reported_for_that_optimizer_only()
        => Verifier.AnalyzerAsync("""
            class Gan
            {
                void Train(Module<Tensor, Tensor> generator, Module<Tensor, Tensor> discriminator, IEnumerable<Tensor> batches)
                {
                    var optG = optim.Adam(generator.parameters());
                    var optD = optim.Adam(discriminator.parameters());
                    foreach (var real in batches)
                    {
                        var fake = generator.call(torch.randn(real.shape[0], 16));
                        optD.zero_grad();
                        var lossD = discriminator.call(real).mean() - discriminator.call(fake.detach()).mean();
                        lossD.backward();
                        optD.step();
                        var lossG = -discriminator.call(fake).mean();
                        {|#0:lossG.backward()|};
                        optG.step();
                    }
                }
            }
            """, MLP001("optG", "the loop runs backward() and 'optG.step()' every iteration but nothing in it clears the gradients, so each step applies the sum of every gradient so far; call 'optG.zero_grad()' at the start of each iteration"));

    [Fact]
    public Task Module_clear_of_the_other_network_does_not_count_when_the_optimizer_is_built_from_this_network()
        => Verifier.AnalyzerAsync("""
            class Gan
            {
                void Train(Module<Tensor, Tensor> generator, Module<Tensor, Tensor> discriminator, IEnumerable<Tensor> batches)
                {
                    var optG = optim.Adam(generator.parameters());
                    var optD = optim.Adam(discriminator.parameters());
                    foreach (var real in batches)
                    {
                        var fake = generator.call(torch.randn(real.shape[0], 16));
                        discriminator.zero_grad();
                        var lossD = discriminator.call(real).mean() - discriminator.call(fake.detach()).mean();
                        lossD.backward();
                        optD.step();
                        var lossG = -discriminator.call(fake).mean();
                        {|#0:lossG.backward()|};
                        optG.step();
                    }
                }
            }
            """, MLP001("optG", "the loop runs backward() and 'optG.step()' every iteration but nothing in it clears the gradients, so each step applies the sum of every gradient so far; call 'optG.zero_grad()' at the start of each iteration"));

    [Fact]
    public Task Train_step_method_called_from_a_loop_without_clearing_is_reported_at_the_call()
        => Verifier.AnalyzerAsync(
            """
            class Trainer
            {
                private readonly Module<Tensor, Tensor> model = nn.Linear(4, 2);
                private readonly optim.Optimizer optimizer;

                Trainer() => optimizer = optim.SGD(model.parameters(), 0.1);

                void TrainStep(Tensor x, Tensor y)
                {
                    var loss = nn.functional.cross_entropy(model.call(x), y);
                    loss.backward();
                    optimizer.step();
                }

                void Fit(IEnumerable<(Tensor x, Tensor y)> batches)
                {
                    foreach (var (x, y) in batches)
                    {
                        {|#0:TrainStep(x, y)|};
                    }
                }
            }
            """,
            NothingClearsThrough("TrainStep"));

    [Fact]
    public Task Optimizer_passed_to_a_helper_is_named_as_the_loop_knows_it()
        => Verifier.AnalyzerAsync(
            Training("""
                    foreach (var (x, y) in batches)
                    {
                        var loss = criterion.call(model.call(x), y);
                        {|#0:loss.backward()|};
                        Apply(optimizer);
                    }
                }

                static void Apply(optim.Optimizer opt)
                {
                    opt.step();
            """),
            MLP001(
                "optimizer",
                "the loop runs backward() and 'optimizer.step()' (through 'Apply') every iteration but nothing in it clears the gradients, " +
                "so each step applies the sum of every gradient so far; call 'optimizer.zero_grad()' at the start of each iteration"));

    [Fact]
    public Task Helper_that_clears_a_different_optimizer_does_not_hide_the_bug()
        => Verifier.AnalyzerAsync(
            """
            class Trainer
            {
                void Train(Module<Tensor, Tensor> model, Module<Tensor, Tensor> critic, IEnumerable<Tensor> batches)
                {
                    var optimizer = optim.Adam(model.parameters());
                    var criticOptimizer = optim.Adam(critic.parameters());
                    foreach (var x in batches)
                    {
                        Clear(criticOptimizer);
                        {|#0:model.call(x).sum().backward()|};
                        optimizer.step();
                    }
                }

                static void Clear(optim.Optimizer opt) => opt.zero_grad();
            }
            """,
            MLP001());

    // ---------------------------------------------------------------- what the call-following walker could not see

    [Fact]
    public Task Wgan_generator_stepped_in_the_outer_loop_is_judged_although_the_critic_trains_in_an_inner_loop()
        => Verifier.AnalyzerAsync("""
            class Wgan
            {
                void Train(Module<Tensor, Tensor> generator, Module<Tensor, Tensor> critic, Func<Tensor> real, int steps)
                {
                    var optG = optim.RMSProp(generator.parameters(), 5e-5);
                    var optC = optim.RMSProp(critic.parameters(), 5e-5);
                    for (int step = 0; step < steps; step++)
                    {
                        for (int k = 0; k < 5; k++)
                        {
                            optC.zero_grad();
                            var fake = generator.call(torch.randn(64, 100)).detach();
                            var lossC = critic.call(fake).mean() - critic.call(real()).mean();
                            lossC.backward();
                            optC.step();
                        }

                        var lossG = -critic.call(generator.call(torch.randn(64, 100))).mean();
                        {|#0:lossG.backward()|};
                        optG.step();
                    }
                }
            }
            """,
            MLP001("optG", "the loop runs backward() and 'optG.step()' every iteration but nothing in it clears the gradients, so each step applies the sum of every gradient so far; call 'optG.zero_grad()' at the start of each iteration"));

    [Fact]
    public Task Wgan_that_clears_the_generator_in_the_outer_loop_is_not_reported()
        => Verifier.AnalyzerAsync("""
            class Wgan
            {
                void Train(Module<Tensor, Tensor> generator, Module<Tensor, Tensor> critic, Func<Tensor> real, int steps)
                {
                    var optG = optim.RMSProp(generator.parameters(), 5e-5);
                    var optC = optim.RMSProp(critic.parameters(), 5e-5);
                    for (int step = 0; step < steps; step++)
                    {
                        for (int k = 0; k < 5; k++)
                        {
                            optC.zero_grad();
                            var lossC = critic.call(generator.call(torch.randn(64, 100)).detach()).mean() - critic.call(real()).mean();
                            lossC.backward();
                            optC.step();
                        }

                        optG.zero_grad();
                        var lossG = -critic.call(generator.call(torch.randn(64, 100))).mean();
                        lossG.backward();
                        optG.step();
                    }
                }
            }
            """);

    [Fact]
    public Task A_clear_that_runs_on_some_iterations_while_the_step_runs_on_every_one_is_reported()
        => Verifier.AnalyzerAsync(
            Training("""
                    int i = 0;
                    foreach (var (x, y) in batches)
                    {
                        if (i++ % 4 == 0)
                        {
                            {|#0:optimizer.zero_grad()|};
                        }

                        criterion.call(model.call(x), y).backward();
                        optimizer.step();
                    }
            """),
            MLP001(
                "optimizer",
                "'optimizer.zero_grad()' runs only on some iterations while 'optimizer.step()' runs on every one, so each step after an iteration " +
                "that skips the clear applies gradients an earlier step already applied; clear on every iteration, or step only when you clear"));

    [Fact]
    public Task A_continue_that_skips_an_end_of_body_clear_is_reported()
        => Verifier.AnalyzerAsync(
            Training("""
                    foreach (var (x, y) in batches)
                    {
                        var loss = criterion.call(model.call(x), y);
                        loss.backward();
                        optimizer.step();
                        if (loss.item<float>() > 10)
                        {
                            continue;
                        }

                        {|#0:optimizer.zero_grad()|};
                    }
            """),
            MLP001());

    [Theory]
    // Cleared on every iteration that steps: the accumulation pattern, with the step under the same condition.
    [InlineData("""
                    int i = 0;
                    foreach (var (x, y) in batches)
                    {
                        criterion.call(model.call(x), y).backward();
                        if (++i % 4 == 0)
                        {
                            optimizer.step();
                            optimizer.zero_grad();
                        }
                    }
        """)]
    // A continue that skips the step as well as the clear.
    [InlineData("""
                    foreach (var (x, y) in batches)
                    {
                        var loss = criterion.call(model.call(x), y);
                        if (!loss.isfinite().item<bool>())
                        {
                            continue;
                        }

                        loss.backward();
                        optimizer.step();
                        optimizer.zero_grad();
                    }
        """)]
    // A conditional clear next to one that always runs.
    [InlineData("""
                    foreach (var (x, y) in batches)
                    {
                        optimizer.zero_grad();
                        criterion.call(model.call(x), y).backward();
                        optimizer.step();
                        if (x.shape[0] < 8)
                        {
                            optimizer.zero_grad();
                        }
                    }
        """)]
    // A clear through a null-conditional call still runs whenever the optimizer exists.
    [InlineData("""
                    foreach (var (x, y) in batches)
                    {
                        optimizer?.zero_grad();
                        criterion.call(model.call(x), y).backward();
                        optimizer!.step();
                    }
        """)]
    // A clear on both sides of an if/else: each on some passes, together on every one.
    [InlineData("""
                    foreach (var (x, y) in batches)
                    {
                        if (x.shape[0] < 8)
                        {
                            optimizer.zero_grad();
                            (criterion.call(model.call(x), y) * 2).backward();
                        }
                        else
                        {
                            optimizer.zero_grad();
                            criterion.call(model.call(x), y).backward();
                        }

                        optimizer.step();
                    }
        """)]
    public Task Conditional_clears_that_match_the_steps_are_not_reported(string body)
        => Verifier.AnalyzerAsync(Training(body));

    [Theory]
    // Each part of the model cleared (its own zero_grad() clears a part of what the optimizer holds: may clear).
    [InlineData("foreach (var m in model.children()) m.zero_grad();")]
    // Gradients replaced, maybe by zeros, or zeroed in place by other means.
    [InlineData("foreach (var p in model.parameters()) p.grad = torch.zeros_like(p);")]
    [InlineData("foreach (var p in model.parameters()) p.grad?.fill_(0);")]
    [InlineData("foreach (var p in model.parameters()) p.grad?.mul_(0);")]
    public Task Other_ways_of_clearing_are_not_reported(string clear)
        => Verifier.AnalyzerAsync(
            Training($$"""
                    foreach (var (x, y) in batches)
                    {
                        {{clear}}
                        criterion.call(model.call(x), y).backward();
                        optimizer.step();
                    }
            """));

    [Fact]
    public Task Clearing_a_part_of_the_model_counts_as_a_possible_clear()
        => Verifier.AnalyzerAsync("""
            class Net : Module<Tensor, Tensor>
            {
                public readonly Module<Tensor, Tensor> encoder = nn.Linear(4, 4), head = nn.Linear(4, 2);
                public Net() : base("net") => RegisterComponents();
                public override Tensor forward(Tensor x) => head.call(encoder.call(x));
            }

            class Trainer
            {
                void Train(Net model, IEnumerable<(Tensor x, Tensor y)> batches)
                {
                    var optimizer = optim.Adam(model.parameters());
                    foreach (var (x, y) in batches)
                    {
                        model.encoder.zero_grad();
                        model.head.zero_grad();
                        functional.cross_entropy(model.call(x), y).backward();
                        optimizer.step();
                    }
                }
            }
            """);

    [Fact]
    public Task A_void_delegate_whose_lambda_clears_nothing_does_not_count_as_clearing()
        => Verifier.AnalyzerAsync(
            Training("""
                    Action log = () => Console.WriteLine("batch");
                    foreach (var (x, y) in batches)
                    {
                        log();
                        {|#0:criterion.call(model.call(x), y).backward()|};
                        optimizer.step();
                    }
            """),
            MLP001());

    [Fact]
    public Task A_clear_in_the_loop_condition_counts()
        => Verifier.AnalyzerAsync("""
            class Trainer
            {
                int left = 100;

                bool NextStep(optim.Optimizer optimizer)
                {
                    optimizer.zero_grad();
                    return left-- > 0;
                }

                void Train(Module<Tensor, Tensor> model, Func<(Tensor x, Tensor y)> next)
                {
                    var optimizer = optim.Adam(model.parameters());
                    while (NextStep(optimizer))
                    {
                        var (x, y) = next();
                        functional.mse_loss(model.call(x), y).backward();
                        optimizer.step();
                    }
                }
            }
            """);

    [Fact]
    public Task A_clear_in_the_iterator_the_loop_enumerates_counts()
        => Verifier.AnalyzerAsync("""
            class Trainer
            {
                static IEnumerable<(Tensor x, Tensor y)> Batches(optim.Optimizer optimizer, IEnumerable<(Tensor x, Tensor y)> data)
                {
                    foreach (var batch in data)
                    {
                        optimizer.zero_grad();
                        yield return batch;
                    }
                }

                void Train(Module<Tensor, Tensor> model, IEnumerable<(Tensor x, Tensor y)> data)
                {
                    var optimizer = optim.Adam(model.parameters());
                    foreach (var (x, y) in Batches(optimizer, data))
                    {
                        functional.mse_loss(model.call(x), y).backward();
                        optimizer.step();
                    }
                }
            }
            """);

    [Theory]
    // An iterator's body runs while it is enumerated: calling it without enumerating clears nothing (the analysis reads a
    // body as an iterator's only when its text has a yield, and must find it here, with or without a comment in between).
    [InlineData("yield return 0;")]
    [InlineData("yield /* one */ return 0;")]
    public Task A_clear_in_an_iterator_called_but_not_enumerated_does_not_count(string yield)
        => Verifier.AnalyzerAsync(
            $$"""
            class Trainer
            {
                static IEnumerable<int> Clear(optim.Optimizer optimizer)
                {
                    optimizer.zero_grad();
                    {{yield}}
                }

                void Train(Module<Tensor, Tensor> model, IEnumerable<(Tensor x, Tensor y)> batches)
                {
                    var optimizer = optim.Adam(model.parameters());
                    foreach (var (x, y) in batches)
                    {
                        Clear(optimizer);
                        {|#0:functional.mse_loss(model.call(x), y).backward()|};
                        optimizer.step();
                    }
                }
            }
            """,
            MLP001());

    // ---------------------------------------------------------------- correct code that looks like the bug

    [Theory]
    [InlineData("""
                    foreach (var (x, y) in batches)
                    {
                        optimizer.zero_grad();
                        var loss = criterion.call(model.call(x), y);
                        loss.backward();
                        optimizer.step();
                    }
        """)]
    [InlineData("""
                    foreach (var (x, y) in batches)
                    {
                        var loss = criterion.call(model.call(x), y);
                        loss.backward();
                        optimizer.step();
                        optimizer.zero_grad();
                    }
        """)]
    [InlineData("""
                    foreach (var (x, y) in batches)
                    {
                        model.zero_grad();
                        var loss = criterion.call(model.call(x), y);
                        loss.backward();
                        optimizer.step();
                    }
        """)]
    [InlineData("""
                    int i = 0;
                    foreach (var (x, y) in batches)
                    {
                        var loss = criterion.call(model.call(x), y) / 4;
                        loss.backward();
                        if (++i % 4 == 0)
                        {
                            optimizer.step();
                            optimizer.zero_grad();
                        }
                    }
        """)]
    [InlineData("""
                    foreach (var (x, y) in batches)
                    {
                        optimizer.zero_grad();
                        criterion.call(model.call(x), y).backward();
                        (0.1 * model.call(x).pow(2).mean()).backward();
                        optimizer.step();
                    }
        """)]
    [InlineData("""
                    foreach (var (x, y) in batches)
                    {
                        var loss = criterion.call(model.call(x), y);
                        loss.backward();
                        optimizer?.step();
                        optimizer?.zero_grad();
                    }
        """)]
    [InlineData("""
                    foreach (var (x, y) in batches)
                    {
                        foreach (var p in model.parameters())
                        {
                            p.grad = null;
                        }

                        criterion.call(model.call(x), y).backward();
                        optimizer.step();
                    }
        """)]
    [InlineData("""
                    foreach (var (x, y) in batches)
                    {
                        foreach (var p in model.parameters())
                        {
                            p.grad?.zero_();
                        }

                        criterion.call(model.call(x), y).backward();
                        optimizer.step();
                    }
        """)]
    [InlineData("""
                    Action clear = () => optimizer.zero_grad();
                    foreach (var (x, y) in batches)
                    {
                        clear();
                        criterion.call(model.call(x), y).backward();
                        optimizer.step();
                    }
        """)]
    [InlineData("""
                    foreach (var (x, y) in batches)
                    {
                        ZeroGrads();
                        criterion.call(model.call(x), y).backward();
                        optimizer.step();
                    }

                    void ZeroGrads() => optimizer.zero_grad();
        """)]
    [InlineData("""
                    var scheduler = optim.lr_scheduler.StepLR(optimizer, 10, 0.5);
                    foreach (var (x, y) in batches)
                    {
                        optimizer.zero_grad();
                        criterion.call(model.call(x), y).backward();
                        optimizer.step();
                        scheduler.step();
                    }
        """)]
    [InlineData("""
                    // Gradient accumulation over micro-batches: the clear belongs to the outer loop.
                    foreach (var (x, y) in batches)
                    {
                        optimizer.zero_grad();
                        foreach (var micro in x.chunk(4))
                        {
                            criterion.call(model.call(micro), y).backward();
                        }

                        optimizer.step();
                    }
        """)]
    [InlineData("""
                    // Saliency map: gradients with respect to the input, no optimizer step in the loop.
                    foreach (var (x, y) in batches)
                    {
                        var input = x.requires_grad_();
                        model.call(input).max().backward();
                        var saliency = input.grad!.abs();
                    }
        """)]
    [InlineData("""
                    // LR scheduler only: steps the learning rate, not the weights.
                    var scheduler = optim.lr_scheduler.StepLR(optimizer, 10, 0.5);
                    optimizer.zero_grad();
                    criterion.call(model.call(torch.rand(8, 4)), torch.zeros(8, dtype: ScalarType.Int64)).backward();
                    optimizer.step();
                    for (int epoch = 0; epoch < 10; epoch++)
                    {
                        scheduler.step();
                    }
        """)]
    public Task Correct_training_loops_are_not_reported(string body)
        => Verifier.AnalyzerAsync(Training(body));

    [Fact]
    public Task Lbfgs_closure_that_clears_is_not_reported()
        => Verifier.AnalyzerAsync(Training("""
                    var lbfgs = optim.LBFGS(model.parameters());
                    foreach (var (x, y) in batches)
                    {
                        lbfgs.step(() =>
                        {
                            lbfgs.zero_grad();
                            var loss = criterion.call(model.call(x), y);
                            loss.backward();
                            return loss;
                        });
                    }
            """));

    [Fact]
    public Task Manual_sgd_under_no_grad_is_not_reported()
        => Verifier.AnalyzerAsync(Training("""
                    foreach (var (x, y) in batches)
                    {
                        criterion.call(model.call(x), y).backward();
                        using (torch.no_grad())
                        {
                            foreach (var p in model.parameters())
                            {
                                p.sub_(p.grad! * 0.01);
                                p.grad!.zero_();
                            }
                        }
                    }
            """));

    [Fact]
    public Task Correct_gan_loop_with_two_optimizers_is_not_reported()
        => Verifier.AnalyzerAsync("""
            class Gan
            {
                void Train(Module<Tensor, Tensor> generator, Module<Tensor, Tensor> discriminator, IEnumerable<Tensor> batches)
                {
                    var optG = optim.Adam(generator.parameters());
                    var optD = optim.Adam(discriminator.parameters());
                    foreach (var real in batches)
                    {
                        var fake = generator.call(torch.randn(real.shape[0], 16));
                        discriminator.zero_grad();
                        var lossReal = -discriminator.call(real).mean();
                        lossReal.backward();
                        var lossFake = discriminator.call(fake.detach()).mean();
                        lossFake.backward();
                        optD.step();

                        generator.zero_grad();
                        var lossG = -discriminator.call(fake).mean();
                        lossG.backward();
                        optG.step();
                    }
                }
            }
            """);

    [Fact]
    public Task Base_class_template_method_that_clears_is_not_reported()
        => Verifier.AnalyzerAsync("""
            abstract class TrainerBase
            {
                protected abstract Module<Tensor, Tensor> Model { get; }
                protected abstract optim.Optimizer Optimizer { get; }

                protected abstract Tensor ComputeLoss(Tensor x, Tensor y);

                protected virtual void BeforeStep() => Optimizer.zero_grad();

                public void Fit(IEnumerable<(Tensor x, Tensor y)> batches)
                {
                    foreach (var (x, y) in batches)
                    {
                        BeforeStep();
                        ComputeLoss(x, y).backward();
                        Optimizer.step();
                    }
                }
            }
            """);

    [Fact]
    public Task Call_to_an_unreadable_method_that_is_handed_the_optimizer_is_assumed_to_clear()
        => Verifier.AnalyzerAsync("""
            abstract class TrainerBase
            {
                protected abstract void ResetGradients(optim.Optimizer optimizer);

                public void Fit(Module<Tensor, Tensor> model, optim.Optimizer optimizer, IEnumerable<Tensor> batches)
                {
                    foreach (var x in batches)
                    {
                        ResetGradients(optimizer);
                        model.call(x).sum().backward();
                        optimizer.step();
                    }
                }
            }
            """);

    [Fact]
    public Task Helper_declared_in_another_file_that_clears_is_followed()
    {
        var test = Verifier.Create();
        test.TestState.Sources.Add(Verifier.Usings + """
            partial class Trainer
            {
                void Fit(Module<Tensor, Tensor> model, IEnumerable<Tensor> batches)
                {
                    var optimizer = optim.SGD(model.parameters(), 0.01);
                    foreach (var x in batches)
                    {
                        Helpers.Reset(optimizer);
                        model.call(x).sum().backward();
                        optimizer.step();
                    }
                }
            }
            """);
        test.TestState.Sources.Add(Verifier.Usings + """
            static class Helpers
            {
                public static void Reset(optim.Optimizer optimizer) => optimizer.zero_grad();
            }
            """);
        return test.RunAsync();
    }

    [Fact]
    public Task Train_step_that_clears_itself_is_not_reported()
        => Verifier.AnalyzerAsync("""
            class Trainer
            {
                private readonly Module<Tensor, Tensor> model = nn.Linear(4, 2);
                private readonly optim.Optimizer optimizer;

                Trainer() => optimizer = optim.SGD(model.parameters(), 0.1);

                void TrainStep(Tensor x, Tensor y)
                {
                    optimizer.zero_grad();
                    nn.functional.cross_entropy(model.call(x), y).backward();
                    optimizer.step();
                }

                void Fit(IEnumerable<(Tensor x, Tensor y)> batches)
                {
                    foreach (var (x, y) in batches)
                    {
                        TrainStep(x, y);
                    }
                }
            }
            """);

    [Fact]
    public Task Recursive_helpers_do_not_hang_or_throw()
        => Verifier.AnalyzerAsync("""
            class Trainer
            {
                optim.Optimizer optimizer = null!;

                void Ping(int n) { if (n > 0) Pong(n - 1); }
                void Pong(int n) { if (n > 0) Ping(n - 1); optimizer.zero_grad(); }

                void Fit(Module<Tensor, Tensor> model, IEnumerable<Tensor> batches)
                {
                    foreach (var x in batches)
                    {
                        Ping(3);
                        model.call(x).sum().backward();
                        optimizer.step();
                    }
                }
            }
            """);

    // ---------------------------------------------------------------- look-alikes and robustness

    [Fact]
    public Task A_users_own_optimizer_and_tensor_types_are_not_torchsharp()
        => Verifier.AnalyzerAsync("""
            namespace MyMl
            {
                class Optimizer { public void step() { } public void zero_grad() { } }
                class Tensor { public void backward() { } }

                class Loop
                {
                    void Run(Optimizer optimizer, System.Collections.Generic.IEnumerable<Tensor> losses)
                    {
                        foreach (var loss in losses)
                        {
                            loss.backward();
                            optimizer.step();
                        }
                    }
                }
            }
            """);

    [Fact]
    public Task Nothing_is_reported_when_torchsharp_is_not_referenced()
        => Verifier.AnalyzerWithoutTorchSharpAsync("""
            class Optimizer { public void step() { } public void zero_grad() { } }
            class Tensor { public void backward() { } }

            class Loop
            {
                void Run(Optimizer optimizer, System.Collections.Generic.IEnumerable<Tensor> losses)
                {
                    foreach (var loss in losses)
                    {
                        loss.backward();
                        optimizer.step();
                    }
                }
            }
            """);

    [Theory]
    [InlineData("""
        class Trainer
        {
            void Train(Module<Tensor, Tensor> model, IEnumerable<Tensor> batches)
            {
                var optimizer = optim.Adam(model.parameters());
                foreach (var x in )
                {
                    model.call(x).sum().backward();
                    optimizer.step(
                }
        """)]
    [InlineData("""
        class Trainer
        {
            void Train(Module<Tensor, Tensor> model, IEnumerable<Tensor> batches)
            {
                foreach (var x in batches)
                {
                    model.call(x).sum().backward();
                    undefinedOptimizer.step();
                    Unknown(x).zero_grad();
                }
            }
        }
        """)]
    [InlineData("""
        class Trainer
        {
            void Train(Module<Tensor, Tensor> model, optim.Optimizer optimizer)
            {
                while (true)
                    model.call().backward(;
                optimizer.step();
                for (;;) { optimizer.step(); x.backward(); }
            }
        }
        """)]
    public async Task Incomplete_code_does_not_throw(string source)
    {
        var test = Verifier.Create();
        test.TestCode = Verifier.Usings + source;
        test.CompilerDiagnostics = CompilerDiagnostics.None;
        // Whatever is or is not reported on broken code, the analyzer must not fail (AD0001 would fail the test).
        test.TestBehaviors |= TestBehaviors.SkipGeneratedCodeCheck;
        test.ExpectedDiagnostics.Clear();
        await RunAllowingAnyMlp001Async(test);
    }

    private static async Task RunAllowingAnyMlp001Async(Verifier.Test test)
    {
        try
        {
            await test.RunAsync();
        }
        catch (Exception e) when (!e.Message.Contains("AD0001", StringComparison.Ordinal) && e.Message.Contains("MLP001", StringComparison.Ordinal))
        {
            // A diagnostic on broken code is acceptable; an analyzer exception is not.
        }
    }

    [Theory]
    [InlineData(LanguageVersion.CSharp7_3)]
    [InlineData(LanguageVersion.CSharp10)]
    public Task Older_language_versions_are_analysed(LanguageVersion version)
        => Verifier.AnalyzerAsync(
            """
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
                }
            }
            """,
            version,
            MLP001());
}
