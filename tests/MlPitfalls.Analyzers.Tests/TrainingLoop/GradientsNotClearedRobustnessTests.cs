using System;
using System.Collections.Immutable;
using System.IO;
using System.Linq;
using System.Threading.Tasks;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.Diagnostics;
using MlPitfalls.Analyzers.Tests.Verifiers;
using MlPitfalls.Analyzers.TrainingLoop;
using Xunit;

namespace MlPitfalls.Analyzers.Tests.TrainingLoop;

/// <summary>
/// MLP001 runs on every keystroke, so it sees half-written code, error types and every corner of the language.
/// Each source here must be analysed without an analyzer exception (AD0001); what is reported does not matter.
/// </summary>
public class GradientsNotClearedRobustnessTests
{
    private static readonly MetadataReference[] References = ((string)AppContext.GetData("TRUSTED_PLATFORM_ASSEMBLIES")!)
        .Split(Path.PathSeparator)
        .Where(path => Path.GetDirectoryName(path) == Path.GetDirectoryName(typeof(object).Assembly.Location))
        .Select(path => (MetadataReference)MetadataReference.CreateFromFile(path))
        .Append(MetadataReference.CreateFromFile(typeof(TorchSharp.torch).Assembly.Location))
        .ToArray();

    [Theory]
    [InlineData("Top-level statements", """
        var model = nn.Linear(2, 1);
        var opt = optim.SGD(model.parameters(), 0.1);
        void Step() { opt.step(); }
        for (int i = 0; i < 3; i++) { model.call(ones(2)).sum().backward(); Step(); }
        """, OutputKind.ConsoleApplication)]
    [InlineData("Loops in properties, indexers, operators, constructors, destructors, accessors", """
        class T
        {
            Linear model = nn.Linear(2, 1);
            optim.Optimizer opt;
            T() { opt = optim.SGD(model.parameters(), 0.1); for (;;) { model.call(ones(2)).sum().backward(); opt.step(); } }
            ~T() { while (true) { model.call(ones(2)).sum().backward(); opt.step(); } }
            int P { get { foreach (var i in new[] { 1 }) { model.call(ones(2)).sum().backward(); opt.step(); } return 0; } set { do { model.call(ones(2)).sum().backward(); opt.step(); } while (value > 0); } }
            int this[int k] { get { for (;;) { model.call(ones(2)).sum().backward(); Opt.step(); } } }
            optim.Optimizer Opt => opt;
            public static T operator +(T a, T b) { for (;;) { a.model.call(ones(2)).sum().backward(); b.opt.step(); } }
            public static implicit operator int(T a) { while (true) { a.model.call(ones(2)).sum().backward(); a.opt.step(); } }
            event Action E { add { for (;;) { model.call(ones(2)).sum().backward(); opt.step(); } } remove { } }
        }
        """, OutputKind.DynamicallyLinkedLibrary)]
    [InlineData("Loops in lambdas, local functions and field initializers; recursion through properties", """
        class T
        {
            static Linear model = nn.Linear(2, 1);
            static optim.Optimizer opt = optim.SGD(model.parameters(), 0.1);
            static Action a = () => { for (;;) { model.call(ones(2)).sum().backward(); opt.step(); } };
            static Func<int> f = () => { foreach (var i in new[] { 1 }) { Loop(); } return 0; int Loop() { while (true) { model.call(ones(2)).sum().backward(); opt.step(); } } };
            optim.Optimizer Recursive => Recursive;
            void Train() { Action<int> step = null!; step = i => { step(i); Recursive.step(); }; for (;;) { model.call(ones(2)).sum().backward(); step(1); Recursive.zero_grad(); } }
        }
        """, OutputKind.DynamicallyLinkedLibrary)]
    [InlineData("await foreach, goto, labels, switch, try/finally, using", """
        class T
        {
            async System.Threading.Tasks.Task Train(IAsyncEnumerable<Tensor> batches, Linear model, optim.Optimizer opt)
            {
                await foreach (var x in batches) { model.call(x).sum().backward(); opt.step(); }
                start:
                foreach (var x in new[] { ones(2) })
                {
                    using var d = NewDisposeScope();
                    try { model.call(x).sum().backward(); } finally { opt.step(); }
                    switch (x.shape.Length) { case 1: opt.zero_grad(); goto start; default: break; }
                }
            }
        }
        """, OutputKind.DynamicallyLinkedLibrary)]
    [InlineData("Partial methods, generic helpers, extension methods, interface default members", """
        static class Ext { public static void Clear(this optim.Optimizer o) => o.zero_grad(); public static void Twice<TO>(this TO o) where TO : optim.Optimizer { o.step(); o.step(); } }
        interface IStep { void Step(optim.Optimizer o) { o.step(); } }
        partial class T : IStep
        {
            partial void Reset(optim.Optimizer o);
            partial void Declared(optim.Optimizer o);
            public partial void Extended(optim.Optimizer o);
            void Train(Linear model, optim.Optimizer opt)
            {
                for (;;) { Reset(opt); Declared(opt); Extended(opt); model.call(ones(2)).sum().backward(); opt.Twice(); ((IStep)this).Step(opt); Help<int>(opt); }
            }
            void Help<TX>(optim.Optimizer o) { o.Clear(); }
        }
        partial class T { partial void Reset(optim.Optimizer o) { o.zero_grad(); } public partial void Extended(optim.Optimizer o) { } }
        """, OutputKind.DynamicallyLinkedLibrary)]
    [InlineData("Null receivers, conditional access, tuples, anonymous types, dynamic, deconstruction", """
        class T
        {
            optim.Optimizer? Opt { get; set; }
            void Train(Linear model, (optim.Optimizer o, Linear m) pair, dynamic d)
            {
                var anon = new { Opt = optim.SGD(model.parameters(), 0.1) };
                var (o2, _) = pair;
                foreach (var x in new[] { ones(2) })
                {
                    model.call(x).sum().backward();
                    this?.Opt?.step();
                    pair.o.step();
                    anon.Opt.step();
                    o2.step();
                    d.zero_grad();
                    x.grad?.zero_();
                    model.parameters().First().grad = null;
                    (model.parameters().First().grad) = null!;
                }
            }
        }
        """, OutputKind.DynamicallyLinkedLibrary)]
    [InlineData("Records and primary constructors holding the optimizer", """
        record R(optim.Optimizer Opt);
        class P(Linear model, optim.Optimizer opt)
        {
            optim.Optimizer Field = opt;
            void Train(R r)
            {
                foreach (var x in new[] { ones(2) }) { model.call(x).sum().backward(); r.Opt.step(); Field.step(); opt.step(); }
            }
        }
        """, OutputKind.DynamicallyLinkedLibrary)]
    [InlineData("Broken code: error types, missing members, missing bodies, invalid operations", """
        class T : Missing
        {
            Unknown opt = optim.SGD(model.parameters());
            void Helper(optim.Optimizer o);
            void Train(Linear model, Nope n)
            {
                foreach (var x in n.Items)
                {
                    model.call(x).sum().backward();
                    opt.step();
                    n.step();
                    Helper(opt);
                    Helper(undefined);
                    optim.SGD().step();
                    new optim.Optimizer().step();
                    x.grad = ;
                    x.grad.zero_(
                    (opt as optim.Optimizer).step();
                    missing.zero_grad();
                    model.zero_grad(1, 2, 3);
                }
                while () { model.call().backward(); Helper(opt).step(); }
                for (;;) model.
            }
        }
        """, OutputKind.DynamicallyLinkedLibrary)]
    [InlineData("Broken code: a loop with no body and unbalanced braces", """
        class T
        {
            void Train(Linear model, optim.Optimizer opt)
            {
                foreach (var x in
                for (int i = 0; i < 3; i++)
                    model.call(ones(2)).sum().backward(); opt.step();
                do model.call(ones(2)).sum().backward(); while
        """, OutputKind.DynamicallyLinkedLibrary)]
    public async Task Odd_and_broken_code_is_analysed_without_an_analyzer_exception(string what, string source, OutputKind kind)
    {
        var compilation = CSharpCompilation.Create(
            "Test",
            new[] { CSharpSyntaxTree.ParseText(TorchSharpSources.Usings + source, new CSharpParseOptions(LanguageVersion.Latest), path: "Test.cs") },
            References,
            new CSharpCompilationOptions(kind, nullableContextOptions: NullableContextOptions.Enable));
        var analyzer = new GradientsNotClearedAnalyzer();
        var diagnostics = await compilation
            .WithAnalyzers(ImmutableArray.Create<DiagnosticAnalyzer>(analyzer), new CompilationWithAnalyzersOptions(
                new AnalyzerOptions(ImmutableArray<AdditionalText>.Empty), onAnalyzerException: null, concurrentAnalysis: false, logAnalyzerExecutionTime: false))
            .GetAnalyzerDiagnosticsAsync();

        var failures = diagnostics.Where(d => d.Id == "AD0001").Select(d => d.ToString()).ToList();
        Assert.True(failures.Count == 0, what + ": " + string.Join(Environment.NewLine, failures));
    }

    /// <summary>
    /// A left-deep expression (here 20,000 operands: Roslyn binds it on a 1 MB stack)
    /// must not be walked by recursion: a stack overflow would end the IDE's process, not just report AD0001.
    /// </summary>
    [Fact]
    public void Very_deep_expression_in_a_training_loop_is_walked_without_recursion()
    {
        var sum = string.Join(" + ", Enumerable.Repeat("x", 20_000));
        var source = $$"""
            class T
            {
                void Train(Linear model, optim.Optimizer opt, IEnumerable<int> batches)
                {
                    foreach (var x in batches)
                    {
                        var total = {{sum}};
                        model.call(ones(2) * total).sum().backward();
                        opt.step();
                    }
                }
            }
            """;
        var compilation = CSharpCompilation.Create(
            "Deep",
            new[] { CSharpSyntaxTree.ParseText(TorchSharpSources.Usings + source, new CSharpParseOptions(LanguageVersion.Latest), path: "Deep.cs") },
            References,
            new CSharpCompilationOptions(OutputKind.DynamicallyLinkedLibrary));

        // On a thread with a small stack, like the IDE's analysis threads, so the test shows the problem on any host.
        var diagnostics = ImmutableArray<Diagnostic>.Empty;
        var thread = new System.Threading.Thread(
            () => diagnostics = compilation
                .WithAnalyzers(ImmutableArray.Create<DiagnosticAnalyzer>(new GradientsNotClearedAnalyzer()))
                .GetAnalyzerDiagnosticsAsync().GetAwaiter().GetResult(),
            maxStackSize: 1024 * 1024);
        thread.Start();
        thread.Join();

        Assert.Empty(diagnostics.Where(d => d.Id == "AD0001"));
        Assert.Single(diagnostics, d => d.Id == "MLP001");
    }
}
