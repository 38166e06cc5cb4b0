using System;
using System.Collections.Generic;
using System.Collections.Immutable;
using System.Globalization;
using System.Linq;
using System.Text;
using Microsoft.CodeAnalysis;
using MlPitfalls.Analyzers.Benchmarks;
using MlPitfalls.Analyzers.Tests.Verifiers;

namespace MlPitfalls.Analyzers.Tests.Robustness;

/// <summary>
/// Programs of extreme shape: sizes, depths and language features a rule's walk or dataflow may not expect. Each is
/// valid TorchSharp code (the stress tests check that it compiles), so the rules do their full work on it.
/// </summary>
internal static class StressPrograms
{
    public static readonly ImmutableArray<string> Names = ImmutableArray.Create(
        "long method (5,000 lines)",
        "deep nesting (200 levels)",
        "long expressions (1,000 terms, 300 chained calls)",
        "huge Sequential (2,000 layers)",
        "mutual recursion",
        "generic modules",
        "partial classes across files",
        "iterators and local functions",
        "async methods",
        "local functions calling each other (12)",
        "a chain of 2,000 local functions");

    /// <summary>The programs of unusual features rather than size, cheap enough to analyse in more configurations.</summary>
    public static readonly ImmutableArray<string> Small = ImmutableArray.Create(
        "mutual recursion", "generic modules", "partial classes across files", "iterators and local functions", "async methods");

    public static SweepProgram Get(string name) => name switch
    {
        "long method (5,000 lines)" => One(name, LongMethodGenerator.Generate(5000).Source),
        "deep nesting (200 levels)" => One(name, DeepNesting(200)),
        "long expressions (1,000 terms, 300 chained calls)" => One(name, LongExpressions(1000, 300)),
        "huge Sequential (2,000 layers)" => One(name, HugeSequential(2000)),
        "mutual recursion" => One(name, MutualRecursion),
        "generic modules" => One(name, GenericModules),
        "partial classes across files" => new SweepProgram(name, PartialClasses.Select((text, i) => ($"Net.Part{i}.cs", TorchSharpSources.Usings + text))),
        "iterators and local functions" => One(name, IteratorsAndLocalFunctions),
        "async methods" => One(name, AsyncMethods),
        "local functions calling each other (12)" => One(name, LocalFunctions(12, everyOther: true)),
        "a chain of 2,000 local functions" => One(name, LocalFunctions(2000, everyOther: false)),
        _ => throw new ArgumentException("No stress program " + name, nameof(name)),
    };

    private static SweepProgram One(string name, string source)
        => new(name, new[] { ("Stress.cs", source.StartsWith("using", StringComparison.Ordinal) ? source : TorchSharpSources.Usings + source) });

    private static string Number(int i) => i.ToString(CultureInfo.InvariantCulture);

    /// <summary>
    /// A training loop calling the first of <paramref name="count"/> local functions, each calling every other one
    /// (<paramref name="everyOther"/>: as many paths as orderings) or only the next (a chain as deep as the count).
    /// </summary>
    private static string LocalFunctions(int count, bool everyOther)
    {
        var code = new StringBuilder("""
            public static class LocalFunctionTraining
            {
                public static void Train(Module<Tensor, Tensor> model, IEnumerable<(Tensor x, Tensor y)> batches)
                {
                    var optimizer = optim.Adam(model.parameters());

            """);
        for (var i = 0; i < count; i++)
        {
            var calls = everyOther
                ? string.Concat(Enumerable.Range(0, count).Where(j => j != i).Select(j => $"L{Number(j)}(d - 1); "))
                : i + 1 < count ? $"L{Number(i + 1)}(d); " : "";
            code.Append($"        void L{Number(i)}(int d) {{ if (d > 0) {{ {calls}}} }}\n");
        }

        code.Append("""

                    foreach (var (x, y) in batches)
                    {
                        L0(3);
                        functional.mse_loss(model.call(x), y).backward();
                        optimizer.step();
                    }
                }
            }
            """);
        return code.ToString();
    }

    /// <summary>A training step at the bottom of <paramref name="depth"/> nested ifs, loops, usings, try blocks and switches.</summary>
    private static string DeepNesting(int depth)
    {
        var code = new StringBuilder("""
            public sealed class DeepTrainer
            {
                private readonly Module<Tensor, Tensor> model = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 4));
                private readonly optim.Optimizer optimizer;

                public DeepTrainer() => optimizer = optim.Adam(model.parameters());

                public double Train(IReadOnlyList<(Tensor x, Tensor y)> batches, bool flag, int n)
                {
                    var total = 0.0;
                    var x = batches[0].x;
                    var y = batches[0].y;

            """);
        for (int k = 0; k < depth; k++)
        {
            var i = Number(k);
            code.Append(new string(' ', 8)).Append((k % 8) switch
            {
                0 => $"if (flag && n > {i}) {{",
                1 => $"for (int i{i} = 0; i{i} < n; i{i}++) {{",
                2 => $"foreach (var b{i} in batches) {{ x = b{i}.x; y = b{i}.y;",
                3 => $"while (total < {i}) {{ total += 1;",
                4 => "try {",
                5 => $"using (var scope{i} = torch.NewDisposeScope()) {{",
                6 => $"switch (n % {Number(k + 2)}) {{ case 0: {{",
                _ => "do {",
            }).Append(k % 5 == 0 ? " model.train();" : k % 5 == 3 ? " x = x.relu();" : "").Append('\n');
        }

        code.Append("""
                    optimizer.zero_grad();
                    var loss = functional.cross_entropy(model.call(x).softmax(1), y);
                    loss.backward();
                    optimizer.step();
                    model.eval();
                    total += loss.item<float>();

            """);
        for (int k = depth - 1; k >= 0; k--)
        {
            code.Append(new string(' ', 8)).Append((k % 8) switch
            {
                4 => "} finally { model.train(); }",
                6 => "break; } default: break; }",
                7 => $"}} while (total < {Number(k)});",
                _ => "}",
            }).Append('\n');
        }

        code.Append("""
                    return total;
                }
            }

            """);
        return code.ToString();
    }

    /// <summary>A loss summed over <paramref name="terms"/> loss calls, and a forward of <paramref name="chain"/> chained tensor calls.</summary>
    private static string LongExpressions(int terms, int chain)
    {
        var code = new StringBuilder("""
            public sealed class LongExpressions
            {
                private readonly Module<Tensor, Tensor> model = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 4));

                public Tensor Loss(Tensor x, Tensor y)
                    =>
            """);
        for (int k = 0; k < terms; k++)
        {
            code.Append(k == 0 ? " " : "\n        + ").Append((k % 4) switch
            {
                0 => "functional.cross_entropy(model.call(x), y)",
                1 => "functional.cross_entropy(model.call(x).softmax(1), y)",
                2 => "functional.nll_loss(model.call(x).log_softmax(1), y)",
                _ => $"{Number(k)} * functional.kl_div(model.call(x).log_softmax(1), model.call(x).softmax(1))",
            });
        }

        code.Append(";\n\n    public Tensor Chain(Tensor x) => model.call(x)");
        for (int k = 0; k < chain; k++)
        {
            code.Append((k % 5) switch
            {
                0 => ".relu()",
                1 => ".softmax(1)",
                2 => ".log()",
                3 => ".view(-1, 4)",
                _ => ".detach()",
            });
        }

        code.Append("""
            ;

                public Tensor ChainLoss(Tensor x, Tensor y) => functional.cross_entropy(Chain(x), y);
            }

            """);
        return code.ToString();
    }

    /// <summary>Sequential literals of <paramref name="layers"/> layers, unnamed and named, feeding losses in a training loop.</summary>
    private static string HugeSequential(int layers)
    {
        var plain = new StringBuilder();
        var named = new StringBuilder();
        var convolutions = new StringBuilder();
        for (int k = 0; k < layers; k++)
        {
            var separator = k == 0 ? "" : ",\n        ";
            plain.Append(separator).Append((k % 4) switch
            {
                0 => "nn.Linear(16, 16)",
                1 => "nn.ReLU()",
                2 => "nn.Dropout(0.1)",
                _ => k == layers - 1 ? "nn.Softmax(1)" : "nn.LayerNorm(16)",
            });
            named.Append(separator).Append($"(\"layer{Number(k)}\", ").Append(k % 2 == 0 ? "nn.Linear(16, 16)" : "nn.BatchNorm1d(16)").Append(')');
            convolutions.Append(separator).Append((k % 3) switch
            {
                0 => "nn.Conv2d(16, 16, 3, padding: 1)",
                1 => "nn.BatchNorm2d(16)",
                _ => "nn.ReLU()",
            });
        }

        return $$"""
            public sealed class Huge : Module<Tensor, Tensor>
            {
                private readonly Module<Tensor, Tensor> body = nn.Sequential(
                    {{plain}});
                private readonly Module<Tensor, Tensor> named = nn.Sequential(
                    {{named}});
                private readonly Module<Tensor, Tensor> convolutions = nn.Sequential(
                    {{convolutions}});

                public Huge() : base(nameof(Huge)) => RegisterComponents();

                public override Tensor forward(Tensor x) => named.call(body.call(x)) + convolutions.call(x).mean(new long[] { 2, 3 });
            }

            public static class HugeTraining
            {
                public static void Train(IEnumerable<(Tensor x, Tensor y)> batches)
                {
                    var model = new Huge();
                    var inline = nn.Sequential(
                        {{plain}});
                    var optimizer = optim.SGD(model.parameters(), 0.01);
                    var criterion = nn.CrossEntropyLoss();
                    foreach (var (x, y) in batches)
                    {
                        var loss = criterion.call(model.call(x), y) + criterion.call(inline.call(x), y);
                        loss.backward();
                        optimizer.step();
                    }

                    model.eval();
                    using (torch.no_grad())
                    {
                        Console.WriteLine(model.call(batches.First().x).argmax(1));
                    }
                }
            }

            """;
    }

    private const string MutualRecursion = """
        public sealed class Ping : Module<Tensor, Tensor>
        {
            private readonly Linear fc = nn.Linear(4, 4);
            public Pong? Other;
            public Ping() : base(nameof(Ping)) => RegisterComponents();
            public override Tensor forward(Tensor x) => Other is null ? fc.call(x) : Other.call(x.softmax(1));
        }

        public sealed class Pong : Module<Tensor, Tensor>
        {
            private readonly Ping ping;
            public Pong(Ping ping) : base(nameof(Pong)) { this.ping = ping; RegisterComponents(); }
            public override Tensor forward(Tensor x) => ping.call(x).log_softmax(1);
        }

        public sealed class Recursive
        {
            private readonly Module<Tensor, Tensor> model = nn.Sequential(nn.Linear(4, 4), nn.Softmax(1));
            private readonly optim.Optimizer optimizer;
            private Recursive Self => Self;
            private Module<Tensor, Tensor> Model => Self.Model;

            public Recursive() => optimizer = optim.SGD(model.parameters(), 0.1);

            public Tensor A(Tensor x, int n) => n <= 0 ? model.call(x) : B(x.softmax(1), n - 1);
            public Tensor B(Tensor x, int n) => n % 2 == 0 ? C(x, n) : A(x.log_softmax(1), n - 1);
            public Tensor C(Tensor x, int n) => A(B(x, n - 1), n - 2).softmax(1);

            public void Step(Tensor x, Tensor y, int n)
            {
                if (n == 0)
                {
                    optimizer.step();
                    return;
                }

                functional.cross_entropy(A(x, n), y).backward();
                Other(x, y, n - 1);
            }

            public void Other(Tensor x, Tensor y, int n)
            {
                model.train();
                Step(x, y, n);
                model.eval();
            }

            public void Toggle(Module<Tensor, Tensor> m, int n)
            {
                if (n == 0) { m.eval(); } else { m.train(); Toggle(m, n - 1); Flip(m, n - 1); }
            }

            public void Flip(Module<Tensor, Tensor> m, int n) { if (n > 0) { Toggle(m, n - 1); } }

            public void Train(IEnumerable<(Tensor x, Tensor y)> batches)
            {
                var ping = new Ping();
                var pong = new Pong(ping);
                ping.Other = pong;
                Func<Tensor, int, Tensor> lambda = null!;
                lambda = (t, k) => k == 0 ? t : lambda(t.softmax(1), k - 1);
                Tensor Local(Tensor t, int k) => k == 0 ? Other2(t) : Local(t.log_softmax(1), k - 1);
                Tensor Other2(Tensor t) => Local(t, 1).softmax(1);
                foreach (var (x, y) in batches)
                {
                    Toggle(Model, 3);
                    var loss = functional.cross_entropy(lambda(ping.call(x), 3), y)
                             + functional.nll_loss(Local(pong.call(x), 2), y)
                             + functional.kl_div(C(x, 4), A(x, 5));
                    loss.backward();
                    Step(x, y, 3);
                }
            }
        }
        """;

    private const string GenericModules = """
        public sealed class Wrapper<T> : Module<Tensor, Tensor> where T : Module<Tensor, Tensor>
        {
            private readonly T inner;
            private readonly Module<Tensor, Tensor> head = nn.Sequential(nn.Linear(4, 4), nn.Softmax(1));
            public Wrapper(T inner) : base("wrapper") { this.inner = inner; RegisterComponents(); }
            public T Inner => inner;
            public override Tensor forward(Tensor x) => head.call(inner.call(x));
        }

        public sealed class Identity<T> : Module<T, T>
        {
            public Identity() : base("id") { }
            public override T forward(T x) => x;
        }

        public class Stack<TFirst, TSecond> : Module<Tensor, Tensor>
            where TFirst : Module<Tensor, Tensor>
            where TSecond : Module<Tensor, Tensor>, new()
        {
            private readonly TFirst first;
            private readonly TSecond second = new TSecond();
            public Stack(TFirst first) : base("stack") { this.first = first; RegisterComponents(); }
            public override Tensor forward(Tensor x) => second.call(first.call(x)).log_softmax(1);
        }

        public sealed class Plain : Module<Tensor, Tensor>
        {
            private readonly Linear fc = nn.Linear(4, 4);
            public Plain() : base("plain") => RegisterComponents();
            public override Tensor forward(Tensor x) => fc.call(x);
        }

        public static class GenericTraining
        {
            public static TModel Evaluating<TModel>(TModel model) where TModel : Module<Tensor, Tensor>
            {
                model.eval();
                return model;
            }

            public static void Train<TModel, TOptimizer>(TModel model, TOptimizer optimizer, IEnumerable<(Tensor x, Tensor y)> batches)
                where TModel : Module<Tensor, Tensor>
                where TOptimizer : optim.Optimizer
            {
                foreach (var (x, y) in batches)
                {
                    var loss = functional.cross_entropy(model.call(x), y) + functional.nll_loss(model.call(x), y);
                    loss.backward();
                    optimizer.step();
                }

                using (torch.no_grad())
                {
                    Console.WriteLine(model.call(batches.First().x));
                }
            }

            public static void Run(IEnumerable<(Tensor x, Tensor y)> batches)
            {
                var nested = new Wrapper<Wrapper<Linear>>(new Wrapper<Linear>(nn.Linear(4, 4)));
                var stacked = new Stack<Wrapper<Plain>, Plain>(new Wrapper<Plain>(new Plain()));
                var id = new Identity<Tensor>();
                Train(nested, optim.Adam(nested.parameters()), batches);
                Train(Evaluating(stacked), optim.SGD(stacked.parameters(), 0.1), batches);
                var optimizer = optim.Adam(nested.Inner.Inner.parameters());
                foreach (var (x, y) in batches)
                {
                    functional.cross_entropy(id.call(nested.call(x)), y).backward();
                    optimizer.step();
                }
            }
        }
        """;

    private static readonly string[] PartialClasses =
    {
        """
        public sealed partial class Net : Module<Tensor, Tensor>
        {
            private readonly Conv2d conv = nn.Conv2d(3, 16, 3, padding: 1);
            private readonly BatchNorm2d norm = nn.BatchNorm2d(16);
            private readonly Linear head = nn.Linear(16, 10, hasBias: false);
            public Net() : base(nameof(Net)) => RegisterComponents();
            partial void OnForward(Tensor x);
        }

        public static partial class Training
        {
            private static partial void Step(optim.Optimizer optimizer);
        }
        """,
        """
        public sealed partial class Net
        {
            public override Tensor forward(Tensor x)
            {
                OnForward(x);
                var h = functional.relu(norm.call(conv.call(x))).mean(new long[] { 2, 3 });
                return head.call(h).softmax(1);
            }

            partial void OnForward(Tensor x) => eval();
        }
        """,
        """
        public static partial class Training
        {
            public static void Train(IEnumerable<(Tensor x, Tensor y)> batches)
            {
                var model = new Net();
                var optimizer = optim.Adam(model.parameters());
                foreach (var (x, y) in batches)
                {
                    var loss = functional.cross_entropy(model.call(x), y);
                    loss.backward();
                    Step(optimizer);
                }
            }

            private static partial void Step(optim.Optimizer optimizer) => optimizer.step();
        }
        """,
    };

    private const string IteratorsAndLocalFunctions = """
        public sealed class Loops
        {
            private readonly Module<Tensor, Tensor> model = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.5), nn.Linear(4, 2));
            private readonly optim.Optimizer optimizer;

            public Loops() => optimizer = optim.SGD(model.parameters(), 0.1);

            private IEnumerable<(Tensor x, Tensor y)> Batches(IReadOnlyList<(Tensor x, Tensor y)> data, bool training)
            {
                if (training) { model.train(); } else { model.eval(); }
                try
                {
                    foreach (var batch in data)
                    {
                        yield return batch;
                        model.train();
                    }
                }
                finally
                {
                    model.eval();
                }
            }

            private IEnumerable<Tensor> Losses(IReadOnlyList<(Tensor x, Tensor y)> data)
            {
                foreach (var (x, y) in Batches(data, training: true))
                {
                    yield return functional.cross_entropy(model.call(x).softmax(1), y);
                }

                yield break;
            }

            public void Train(IReadOnlyList<(Tensor x, Tensor y)> data, int epochs)
            {
                void Step() => optimizer.step();
                static Tensor Probabilities(Tensor t) => t.softmax(1);
                void Epoch(int remaining)
                {
                    if (remaining == 0) { return; }
                    foreach (var loss in Losses(data))
                    {
                        loss.backward();
                        Step();
                    }

                    Epoch(remaining - 1);
                }

                IEnumerable<Tensor> LocalIterator()
                {
                    model.eval();
                    foreach (var (x, _) in data) { yield return Probabilities(model.call(x)); }
                }

                Epoch(epochs);
                foreach (var p in LocalIterator().Where(t => t is not null).Select(t => t.log()))
                {
                    using (torch.no_grad()) { Console.WriteLine(functional.nll_loss(p, data[0].y)); }
                }

                Action<Tensor, Tensor> train = (x, y) =>
                {
                    optimizer.zero_grad();
                    functional.cross_entropy(Probabilities(model.call(x)), y).backward();
                    Step();
                };
                foreach (var (x, y) in Batches(data, training: false)) { train(x, y); }
            }
        }
        """;

    private const string AsyncMethods = """
        using System;
        using System.Collections.Generic;
        using System.Linq;
        using System.Threading;
        using System.Threading.Tasks;
        using TorchSharp;
        using TorchSharp.Modules;
        using static TorchSharp.torch;
        using static TorchSharp.torch.nn;

        public sealed class AsyncTrainer
        {
            private readonly Module<Tensor, Tensor> model = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2), nn.Softmax(1));
            private readonly optim.Optimizer optimizer;
            public event EventHandler? Tick;

            public AsyncTrainer() => optimizer = optim.Adam(model.parameters());

            private static async IAsyncEnumerable<(Tensor x, Tensor y)> Batches(IReadOnlyList<(Tensor x, Tensor y)> data, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken token = default)
            {
                foreach (var batch in data)
                {
                    await Task.Yield();
                    token.ThrowIfCancellationRequested();
                    yield return batch;
                }
            }

            public async Task<double> TrainAsync(IReadOnlyList<(Tensor x, Tensor y)> data, int epochs, CancellationToken token)
            {
                var total = 0.0;
                for (int epoch = 0; epoch < epochs; epoch++)
                {
                    model.train();
                    await foreach (var (x, y) in Batches(data, token).ConfigureAwait(false))
                    {
                        var loss = functional.cross_entropy(model.call(x), y);
                        await Task.Delay(1, token);
                        loss.backward();
                        await StepAsync().ConfigureAwait(false);
                        total += loss.item<float>();
                    }

                    model.eval();
                    total += await EvaluateAsync(data);
                }

                return total;
            }

            private async ValueTask StepAsync()
            {
                await Task.Yield();
                optimizer.step();
            }

            private async Task<double> EvaluateAsync(IReadOnlyList<(Tensor x, Tensor y)> data)
            {
                using var _ = torch.no_grad();
                var sum = 0.0;
                foreach (var (x, y) in data)
                {
                    sum += await Task.Run(() => functional.nll_loss(model.call(x).log(), y).item<float>());
                }

                return sum;
            }

            public async void OnTick(object? sender, EventArgs e)
            {
                Func<Task> train = async () =>
                {
                    foreach (var (x, y) in new[] { (torch.ones(4, 4), torch.zeros(4, ScalarType.Int64)) })
                    {
                        optimizer.zero_grad();
                        functional.cross_entropy(model.call(x), y).backward();
                        await StepAsync();
                    }
                };
                async Task LocalAsync() { await train(); model.train(); }
                await LocalAsync();
                Tick?.Invoke(this, e);
            }
        }
        """;
}
