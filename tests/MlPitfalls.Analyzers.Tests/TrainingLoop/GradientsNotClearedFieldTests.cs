using System.Threading.Tasks;
using Microsoft.CodeAnalysis.Testing;
using Xunit;
using static MlPitfalls.Analyzers.Tests.TrainingLoop.Expected;
using Verifier = MlPitfalls.Analyzers.Tests.Verifiers.Verify<
    MlPitfalls.Analyzers.TrainingLoop.GradientsNotClearedAnalyzer,
    MlPitfalls.CodeFixes.TrainingLoop.GradientsNotClearedCodeFix>;

namespace MlPitfalls.Analyzers.Tests.TrainingLoop;

/// <summary>
/// MLP001 on the shapes found by running it over public TorchSharp repositories and probes derived from them:
/// the trainer-class layouts, AMP and clipping idioms, hooks and closures real code uses.
/// </summary>
public class GradientsNotClearedFieldTests
{
    // ---------------------------------------------------------------- correct code, not reported

    [Fact]
    public Task Fine_tuning_the_head_and_clearing_the_whole_model()
        => Verifier.AnalyzerAsync("""
            class Net : Module<Tensor, Tensor>
            {
                public Linear backbone = Linear(10, 10);
                public Linear fc = Linear(10, 2);
                public Net() : base("Net") { RegisterComponents(); }
                public override Tensor forward(Tensor x) => fc.call(backbone.call(x));
            }

            class C
            {
                void Train(IEnumerable<(Tensor x, Tensor y)> batches)
                {
                    var model = new Net();
                    var optimizer = optim.SGD(model.fc.parameters(), 0.01);
                    foreach (var (x, y) in batches)
                    {
                        model.zero_grad();
                        functional.cross_entropy(model.call(x), y).backward();
                        optimizer.step();
                    }
                }
            }
            """);

    [Fact]
    public Task Clearing_every_optimizer_through_a_loop_variable()
        => Verifier.AnalyzerAsync("""
            class C
            {
                void Train(Module<Tensor, Tensor> g, Module<Tensor, Tensor> d, IEnumerable<Tensor> batches)
                {
                    var optG = optim.Adam(g.parameters());
                    var optD = optim.Adam(d.parameters());
                    foreach (var x in batches)
                    {
                        foreach (var o in new[] { optG, optD }) o.zero_grad();
                        d.call(x).mean().backward();
                        optD.step();
                        d.call(g.call(x)).mean().backward();
                        optG.step();
                    }
                }
            }
            """);

    [Fact]
    public Task Clearing_through_a_params_helper()
        => Verifier.AnalyzerAsync("""
            class C
            {
                static void ZeroAll(params optim.Optimizer[] optimizers) { foreach (var o in optimizers) o.zero_grad(); }

                void Train(Module<Tensor, Tensor> model, IEnumerable<(Tensor x, Tensor y)> batches)
                {
                    var optimizer = optim.Adam(model.parameters());
                    foreach (var (x, y) in batches)
                    {
                        ZeroAll(optimizer);
                        functional.mse_loss(model.call(x), y).backward();
                        optimizer.step();
                    }
                }
            }
            """);

    [Fact]
    public Task Clearing_through_a_property_that_returns_the_stepped_field()
        => Verifier.AnalyzerAsync("""
            class Trainer
            {
                private readonly optim.Optimizer _optimizer;
                private readonly Module<Tensor, Tensor> _model;

                public Trainer(Module<Tensor, Tensor> model) { _model = model; _optimizer = optim.Adam(model.parameters()); }

                public optim.Optimizer Optimizer => _optimizer;

                void Step(Tensor x, Tensor y) { functional.mse_loss(_model.call(x), y).backward(); _optimizer.step(); }

                public void Fit(List<(Tensor x, Tensor y)> batches)
                {
                    foreach (var (x, y) in batches) { Optimizer.zero_grad(); Step(x, y); }
                }
            }
            """);

    [Fact]
    public Task Mixed_precision_copy_to_master_weights_is_not_a_clear()
        => Verifier.AnalyzerAsync("""
            class C
            {
                void Train(Module<Tensor, Tensor> model, Dictionary<string, Parameter> master, IEnumerable<(Tensor x, Tensor y)> batches)
                {
                    var optimizer = optim.AdamW(master.Values);
                    foreach (var (x, y) in batches)
                    {
                        functional.mse_loss(model.call(x), y).backward();
                        foreach (var (name, p) in model.named_parameters())
                        {
                            master[name].grad = p.grad!.to(ScalarType.Float32);
                            p.grad = null;
                        }

                        optimizer.step();
                        optimizer.zero_grad();
                    }
                }
            }
            """);

    [Fact]
    public Task Virtual_hook_that_a_subclass_fills_in()
        => Verifier.AnalyzerAsync("""
            abstract class TrainerBase
            {
                protected optim.Optimizer Optimizer = null!;
                protected virtual void BeforeBatch() { }
                protected abstract Tensor Loss(Tensor x, Tensor y);

                public void Fit(List<(Tensor x, Tensor y)> batches)
                {
                    foreach (var (x, y) in batches) { BeforeBatch(); Loss(x, y).backward(); Optimizer.step(); }
                }
            }

            class MyTrainer : TrainerBase
            {
                protected override void BeforeBatch() => Optimizer.zero_grad();
                protected override Tensor Loss(Tensor x, Tensor y) => x.sub(y).pow(2).mean();
            }
            """);

    [Fact]
    public Task Lbfgs_closure_given_as_a_local_function()
        => Verifier.AnalyzerAsync("""
            class C
            {
                void Train(Module<Tensor, Tensor> model, Tensor x, Tensor y)
                {
                    var lbfgs = optim.LBFGS(model.parameters());
                    for (int i = 0; i < 20; i++)
                    {
                        lbfgs.step(Closure);
                    }

                    Tensor Closure()
                    {
                        lbfgs.zero_grad();
                        var loss = functional.mse_loss(model.call(x), y);
                        loss.backward();
                        return loss;
                    }
                }
            }
            """);

    [Fact]
    public Task Clearing_the_first_micro_batch_inside_the_accumulation_loop()
        => Verifier.AnalyzerAsync("""
            class C
            {
                void Train(Module<Tensor, Tensor> model, Func<(Tensor x, Tensor y)> next, int steps, int micro)
                {
                    var optimizer = optim.AdamW(model.parameters());
                    for (int step = 0; step < steps; step++)
                    {
                        for (int m = 0; m < micro; m++)
                        {
                            if (m == 0) optimizer.zero_grad();
                            var (x, y) = next();
                            (functional.mse_loss(model.call(x), y) / micro).backward();
                        }

                        optimizer.step();
                    }
                }
            }
            """);

    [Fact]
    public Task Optimizer_field_created_in_the_constructor_is_related_to_its_module()
        => Verifier.AnalyzerAsync("""
            class Gan
            {
                private readonly Module<Tensor, Tensor> generator = nn.Linear(4, 4);
                private readonly Module<Tensor, Tensor> discriminator = nn.Linear(4, 1);
                private readonly optim.Optimizer optG;
                private readonly optim.Optimizer optD = optim.Adam(new Parameter[0]);

                Gan()
                {
                    optG = optim.Adam(generator.parameters());
                }

                void Train(IEnumerable<Tensor> batches)
                {
                    foreach (var real in batches)
                    {
                        optD.zero_grad();
                        discriminator.call(real).mean().backward();
                        optD.step();
                        generator.zero_grad();
                        (-discriminator.call(generator.call(real)).mean()).backward();
                        optG.step();
                    }
                }
            }
            """);

    // ---------------------------------------------------------------- bugs, reported

    [Fact]
    public Task Clipping_by_reassigning_grad_is_not_a_clear()
        => Verifier.CodeFixAsync(
            """
            class C
            {
                void Fit(Tensor x, Tensor y)
                {
                    var w = new Parameter(torch.randn(3, 1));
                    var optimizer = optim.SGD(new[] { w }, 0.01);
                    for (int i = 0; i < 100; i++)
                    {
                        var loss = functional.mse_loss(x.matmul(w), y);
                        {|#0:loss.backward()|};
                        w.grad = w.grad!.clamp(-1, 1);
                        optimizer.step();
                    }
                }
            }
            """,
            """
            class C
            {
                void Fit(Tensor x, Tensor y)
                {
                    var w = new Parameter(torch.randn(3, 1));
                    var optimizer = optim.SGD(new[] { w }, 0.01);
                    for (int i = 0; i < 100; i++)
                    {
                        optimizer.zero_grad();
                        var loss = functional.mse_loss(x.matmul(w), y);
                        loss.backward();
                        w.grad = w.grad!.clamp(-1, 1);
                        optimizer.step();
                    }
                }
            }
            """,
            MLP001(0));

    [Fact]
    public Task Clearing_a_frozen_modules_parameters_does_not_clear_the_trained_model()
        => Verifier.AnalyzerAsync("""
            class C
            {
                void Train(Module<Tensor, Tensor> model, Module<Tensor, Tensor> frozen, IEnumerable<(Tensor x, Tensor y)> batches)
                {
                    var optimizer = optim.Adam(model.parameters());
                    foreach (var (x, y) in batches)
                    {
                        {|#0:functional.mse_loss(model.call(frozen.call(x)), y).backward()|};
                        foreach (var p in frozen.parameters()) p.grad = null;
                        optimizer.step();
                    }
                }
            }
            """, MLP001());

    [Fact]
    public Task Clearing_inside_the_accumulation_loop_keeps_only_the_last_micro_batch()
        => Verifier.AnalyzerAsync(
            """
            class C
            {
                void Train(Module<Tensor, Tensor> model, Func<(Tensor x, Tensor y)> next, int steps, int micro)
                {
                    var optimizer = optim.AdamW(model.parameters());
                    for (int step = 0; step < steps; step++)
                    {
                        for (int m = 0; m < micro; m++)
                        {
                            {|#0:optimizer.zero_grad()|};
                            var (x, y) = next();
                            (functional.mse_loss(model.call(x), y) / micro).backward();
                        }

                        optimizer.step();
                    }
                }
            }
            """,
            MLP001(
                "optimizer",
                "'optimizer.zero_grad()' runs inside the inner loop that calls backward(), so each pass erases the gradients of the passes before it " +
                "and 'optimizer.step()' applies only the last one; clear once, before the inner loop"));

    [Fact]
    public async Task Closure_without_clearing_gets_advice_for_the_closure_and_no_loop_fix()
    {
        var source = """
            class C
            {
                void Train(Module<Tensor, Tensor> model, Tensor x, Tensor y)
                {
                    var lbfgs = optim.LBFGS(model.parameters());
                    for (int i = 0; i < 20; i++)
                    {
                        lbfgs.step(() =>
                        {
                            var loss = functional.mse_loss(model.call(x), y);
                            {|#0:loss.backward()|};
                            return loss;
                        });
                    }
                }
            }
            """;
        await Verifier.NoCodeFixAsync(source, MLP001(
            "lbfgs",
            "the loop runs backward() and 'lbfgs.step()' every iteration but nothing in it clears the gradients, so each step applies the sum of every gradient so far; " +
            "call 'lbfgs.zero_grad()' at the start of the closure passed to step(), which the optimizer may evaluate several times per step"));
    }

    [Fact]
    public Task Closure_given_as_a_method_group_is_followed()
        => Verifier.AnalyzerAsync("""
            class C
            {
                private Module<Tensor, Tensor> model = nn.Linear(3, 1);
                private Tensor x = torch.rand(8, 3), y = torch.rand(8, 1);

                Tensor Closure()
                {
                    var loss = functional.mse_loss(model.call(x), y);
                    loss.backward();
                    return loss;
                }

                void Train()
                {
                    var lbfgs = optim.LBFGS(model.parameters());
                    for (int i = 0; i < 20; i++)
                    {
                        lbfgs.step({|#0:Closure|});
                    }
                }
            }
            """, MLP001());

    /// <summary>
    /// An inner loop that clears, runs backward() and leaves as soon as the gradients are usable (a retry on a
    /// non-finite loss) keeps the gradients of the pass that left: that is the point, not a lost micro-batch.
    /// </summary>
    [Fact]
    public Task Retry_loop_that_breaks_out_with_the_gradients_it_wants()
        => Verifier.AnalyzerAsync(
            """
            class C
            {
                void Train(Module<Tensor, Tensor> model, Func<(Tensor x, Tensor y)> next, int steps)
                {
                    var optimizer = optim.AdamW(model.parameters());
                    for (int step = 0; step < steps; step++)
                    {
                        for (int attempt = 0; attempt < 3; attempt++)
                        {
                            optimizer.zero_grad();
                            var (x, y) = next();
                            var loss = functional.mse_loss(model.call(x), y);
                            loss.backward();
                            if (loss.isfinite().item<bool>())
                            {
                                break;
                            }
                        }

                        optimizer.step();
                    }
                }
            }
            """);

    /// <summary>
    /// A call the analyzer cannot read is only assumed to clear, to stay silent. It is never blamed as a clear in
    /// the wrong place: handing the optimizer to an abstract monitor between backward() and step() is not a misplaced zero_grad()
    /// (logging it with Console.WriteLine is known not to clear: see Library_calls_handed_the_parameters_do_not_count_as_clearing).
    /// </summary>
    [Fact]
    public Task A_call_that_only_might_clear_is_never_called_misplaced()
        => Verifier.AnalyzerAsync(
            """
            abstract class Monitor { public abstract void Record(optim.Optimizer optimizer); }

            class C
            {
                void Train(Module<Tensor, Tensor> model, IEnumerable<Tensor> batches, Monitor monitor)
                {
                    var optimizer = optim.Adam(model.parameters());
                    foreach (var x in batches)
                    {
                        model.call(x).sum().backward();
                        monitor.Record(optimizer);
                        optimizer.step();
                    }
                }
            }
            """);

    /// <summary>
    /// Code the analyzer cannot read (another project, a NuGet package, an abstract member) may clear the gradients
    /// of the module or the parameters it is handed, not only of an optimizer.
    /// </summary>
    [Theory]
    [InlineData("gradients.Reset(model)")]
    [InlineData("gradients.Reset(model.parameters())")]
    public Task Unreadable_call_handed_the_model_or_its_parameters_may_clear(string reset)
        => Verifier.AnalyzerAsync(
            $$"""
            abstract class Gradients
            {
                public abstract int Reset(Module<Tensor, Tensor> model);
                public abstract int Reset(IEnumerable<Parameter> parameters);
            }

            class C
            {
                void Train(Module<Tensor, Tensor> model, Gradients gradients, IEnumerable<Tensor> batches)
                {
                    var optimizer = optim.Adam(model.parameters());
                    foreach (var x in batches)
                    {
                        {{reset}};
                        model.call(x).sum().backward();
                        optimizer.step();
                    }
                }
            }
            """);

    /// <summary>A generic partial helper is followed into its implementation like any other.</summary>
    [Fact]
    public Task Clearing_through_a_generic_partial_method()
        => Verifier.AnalyzerAsync(
            """
            partial class C
            {
                partial void Reset<TOptimizer>(TOptimizer optimizer) where TOptimizer : optim.Optimizer;

                void Train(Module<Tensor, Tensor> model, IEnumerable<Tensor> batches)
                {
                    var optimizer = optim.Adam(model.parameters());
                    foreach (var x in batches)
                    {
                        Reset(optimizer);
                        model.call(x).sum().backward();
                        optimizer.step();
                    }
                }
            }

            partial class C
            {
                partial void Reset<TOptimizer>(TOptimizer optimizer) where TOptimizer : optim.Optimizer => optimizer.zero_grad();
            }
            """);

    /// <summary>The closure is often held in a local first (<c>Func&lt;Tensor&gt; closure = ...; lbfgs.step(closure);</c>).</summary>
    [Fact]
    public async Task Closure_held_in_a_local_without_clearing_gets_advice_for_the_closure_and_no_loop_fix()
    {
        var source = """
            class C
            {
                void Train(Module<Tensor, Tensor> model, Tensor x, Tensor y)
                {
                    var lbfgs = optim.LBFGS(model.parameters());
                    for (int i = 0; i < 20; i++)
                    {
                        Func<Tensor> closure = () =>
                        {
                            var loss = functional.mse_loss(model.call(x), y);
                            {|#0:loss.backward()|};
                            return loss;
                        };
                        lbfgs.step(closure);
                    }
                }
            }
            """;
        await Verifier.NoCodeFixAsync(source, MLP001(
            "lbfgs",
            "the loop runs backward() and 'lbfgs.step()' every iteration but nothing in it clears the gradients, so each step applies the sum of every gradient so far; " +
            "call 'lbfgs.zero_grad()' at the start of the closure passed to step(), which the optimizer may evaluate several times per step"));
    }

    /// <summary>The for statement's iterator part runs after the body on every iteration: a clear there is an end-of-body clear.</summary>
    [Fact]
    public Task Clearing_in_the_for_iterator()
        => Verifier.AnalyzerAsync(
            """
            class C
            {
                void Train(Module<Tensor, Tensor> model, Tensor[] batches)
                {
                    var optimizer = optim.Adam(model.parameters());
                    for (int i = 0; i < batches.Length; i++, optimizer.zero_grad())
                    {
                        model.call(batches[i]).sum().backward();
                        optimizer.step();
                    }
                }
            }
            """);
}
