using System.Collections.Immutable;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using Microsoft.CodeAnalysis.Diagnostics;
using Microsoft.CodeAnalysis.Testing;
using MlPitfalls.Analyzers.Architecture;
using MlPitfalls.Analyzers.Infrastructure;
using MlPitfalls.Analyzers.Tests.AllRules;
using Xunit;
using Mlp005 = MlPitfalls.Analyzers.Tests.Verifiers.Verify<
    MlPitfalls.Analyzers.Architecture.BiasBeforeNormalizationAnalyzer,
    MlPitfalls.CodeFixes.Architecture.DisableBiasCodeFix>;
using Mlp006 = MlPitfalls.Analyzers.Tests.Verifiers.Verify<
    MlPitfalls.Analyzers.Architecture.OutputLayerWithoutBiasAnalyzer,
    MlPitfalls.CodeFixes.Architecture.RestoreBiasCodeFix>;

namespace MlPitfalls.Analyzers.Tests.Review;

/// <summary>
/// Third independent review: MLP005's wrapper-module path (WrappedLayer), the shared token search
/// (AnalysisServices.TokensNaming) and MLP006 after its review fixes. Each test states the correct behaviour; a failing
/// test shows a defect. W* wrapper path, T* TokensNaming, M* MLP006, R* robustness (AD0001, hangs).
/// </summary>
public class ThirdReviewTests
{
    private static DiagnosticResult MLP005(int marker = 0) => Mlp005.DiagnosticAnyMessage(Descriptors.MLP005_BiasBeforeNormalization).WithLocation(marker);

    private static DiagnosticResult MLP006(int marker = 0) => Mlp006.DiagnosticAnyMessage(Descriptors.MLP006_OutputLayerWithoutBias).WithLocation(marker);

    private const string UseBefore = """

        class Models
        {
            Module<Tensor, Tensor> Build() => Sequential({|#0:new ConvWrapper()|}, BatchNorm2d(16), ReLU());
        }
        """;

    private const string UseBeforeQuiet = """

        class Models
        {
            Module<Tensor, Tensor> Build() => Sequential(new ConvWrapper(), BatchNorm2d(16), ReLU());
        }
        """;

    // ================================================================ W: MLP005's wrapper path — true positives that must stay

    [Fact]
    public Task W01_a_verbatim_field_name_is_the_same_field_and_the_wrapper_is_reported()
        => Mlp005.AnalyzerAsync("""
            class ConvWrapper : Module<Tensor, Tensor>
            {
                private readonly Conv2d @conv;
                public ConvWrapper() : base("w") { @conv = Conv2d(3, 16, 3); RegisterComponents(); }
                public override Tensor forward(Tensor x) => conv.call(x);
            }
            """ + UseBefore, MLP005());

    [Fact]
    public Task W02_a_field_reached_through_this_is_reported()
        => Mlp005.AnalyzerAsync("""
            class ConvWrapper : Module<Tensor, Tensor>
            {
                private readonly Conv2d conv;
                public ConvWrapper() : base("w") { this.conv = Conv2d(3, 16, 3); RegisterComponents(); }
                public override Tensor forward(Tensor x) { return this.conv.call(x); }
            }
            """ + UseBefore, MLP005());

    [Fact]
    public Task W03_a_primary_constructor_wrapper_is_reported()
        => Mlp005.AnalyzerAsync("""
            class ConvWrapper(long i, long o) : Module<Tensor, Tensor>("w")
            {
                private readonly Conv2d conv = Conv2d(i, o, 3);
                public override Tensor forward(Tensor x) => conv.call(x);
            }

            class Models
            {
                Module<Tensor, Tensor> Build() => Sequential({|#0:new ConvWrapper(3, 16)|}, BatchNorm2d(16), ReLU());
            }
            """, MLP005());

    [Fact]
    public Task W04_a_comment_or_doc_comment_naming_the_field_does_not_hide_the_wrapper()
        => Mlp005.AnalyzerAsync("""
            /// <summary>Wraps <see cref="conv"/>.</summary>
            class ConvWrapper : Module<Tensor, Tensor>
            {
                // conv is the only layer; conv conv conv
                private readonly Conv2d conv = Conv2d(3, 16, 3); /* conv */
                public ConvWrapper() : base("w") => RegisterComponents();
            #if NEVER_DEFINED
                public Tensor Raw(Tensor x) => conv.call(x);
            #endif
                public override Tensor forward(Tensor x) => conv.call(x);
            }
            """ + UseBefore, MLP005());

    [Fact]
    public Task W05_a_string_equal_to_the_field_name_does_not_hide_the_wrapper()
        // The module's name "conv" is a string, not a use of the field: TokensNaming's contract says strings are skipped.
        => Mlp005.AnalyzerAsync("""
            class ConvWrapper : Module<Tensor, Tensor>
            {
                private readonly Conv2d conv = Conv2d(3, 16, 3);
                public ConvWrapper() : base("conv") => RegisterComponents();
                public override Tensor forward(Tensor x) => conv.call(x);
            }
            """ + UseBefore, MLP005());

    [Fact]
    public Task W06_a_generic_wrapper_is_reported()
        => Mlp005.AnalyzerAsync("""
            class ConvWrapper<T> : Module<Tensor, Tensor>
            {
                private readonly Conv2d conv = Conv2d(3, 16, 3);
                public ConvWrapper() : base("w") => RegisterComponents();
                public override Tensor forward(Tensor x) => conv.call(x);
            }

            class Models
            {
                Module<Tensor, Tensor> Build() => Sequential({|#0:new ConvWrapper<int>()|}, BatchNorm2d(16), ReLU());
            }
            """, MLP005());

    // ================================================================ W: MLP005's wrapper path — must not be reported

    [Fact]
    public Task W10_a_second_use_spelled_with_a_unicode_escape_is_seen()
        => Mlp005.AnalyzerAsync("""
            class ConvWrapper : Module<Tensor, Tensor>
            {
                private readonly Conv2d conv = Conv2d(3, 16, 3);
                public ConvWrapper() : base("w") => RegisterComponents();
                public override Tensor forward(Tensor x) => conv.call(x);
                public Tensor Features(Tensor x) => \u0063onv.call(x);
            }
            """ + UseBeforeQuiet);

    [Fact]
    public Task W11_a_second_use_spelled_with_a_formatting_character_is_seen()
        // C# drops formatting characters (Unicode Cf, here U+200D) from identifiers: "co\u200Dnv" IS the field conv.
        => Mlp005.AnalyzerAsync("""
            class ConvWrapper : Module<Tensor, Tensor>
            {
                private readonly Conv2d conv = Conv2d(3, 16, 3);
                public ConvWrapper() : base("w") => RegisterComponents();
                public override Tensor forward(Tensor x) => conv.call(x);
                public Tensor Features(Tensor x) => 
            """ + "co\u200Dnv" + """
            .call(x);
            }
            """ + UseBeforeQuiet);

    [Fact]
    public Task W12_a_wrapper_with_a_forward_hook_on_itself_is_not_reported()
        // The hook replaces the wrapper's output by relu(conv(x)): the bias is not cancelled by the BatchNorm after it.
        => Mlp005.AnalyzerAsync("""
            class ConvWrapper : Module<Tensor, Tensor>
            {
                private readonly Conv2d conv = Conv2d(3, 16, 3);
                public ConvWrapper() : base("w")
                {
                    RegisterComponents();
                    register_forward_hook((m, input, output) => functional.relu(output));
                }
                public override Tensor forward(Tensor x) => conv.call(x);
            }
            """ + UseBeforeQuiet);

    [Fact]
    public Task W13_a_layer_shared_through_a_static_field_is_not_reported()
        // Every wrapper runs the same static layer, which the class also runs unnormalized elsewhere.
        => Mlp005.AnalyzerAsync("""
            class ConvWrapper : Module<Tensor, Tensor>
            {
                private static readonly Conv2d Shared = Conv2d(3, 16, 3);
                private readonly Conv2d conv = Shared;
                public ConvWrapper() : base("w") => RegisterComponents();
                public override Tensor forward(Tensor x) => conv.call(x);
                public static Tensor Features(Tensor x) => Shared.call(x);
            }
            """ + UseBeforeQuiet);

    [Fact]
    public Task W14_a_layer_made_by_a_helper_that_also_keeps_it_is_not_reported()
        => Mlp005.AnalyzerAsync("""
            class ConvWrapper : Module<Tensor, Tensor>
            {
                private static Conv2d kept;
                private readonly Conv2d conv = Make();
                public ConvWrapper() : base("w") => RegisterComponents();
                private static Conv2d Make() { var c = Conv2d(3, 16, 3); kept = c; return c; }
                public override Tensor forward(Tensor x) => conv.call(x);
                public static Tensor Features(Tensor x) => kept.call(x);
            }
            """ + UseBeforeQuiet);

    [Fact]
    public Task W15_several_constructors_assigning_different_layers_are_not_reported()
        => Mlp005.AnalyzerAsync("""
            class ConvWrapper : Module<Tensor, Tensor>
            {
                private readonly Conv2d conv;
                public ConvWrapper() : base("w") { conv = Conv2d(3, 16, 3); RegisterComponents(); }
                public ConvWrapper(int k) : base("w") { conv = Conv2d(3, 16, k, bias: false); RegisterComponents(); }
                public override Tensor forward(Tensor x) => conv.call(x);
            }
            """ + UseBeforeQuiet);

    [Fact]
    public Task W16_a_partial_wrapper_whose_other_part_uses_the_field_is_not_reported()
        => Mlp005.AnalyzerAsync("""
            partial class ConvWrapper : Module<Tensor, Tensor>
            {
                private readonly Conv2d conv = Conv2d(3, 16, 3);
                public ConvWrapper() : base("w") => RegisterComponents();
                public override Tensor forward(Tensor x) => conv.call(x);
            }
            partial class ConvWrapper
            {
                public Tensor Features(Tensor x) => conv.call(x);
            }
            """ + UseBeforeQuiet);

    [Fact]
    public Task W17_a_nested_class_that_reaches_the_field_is_not_reported()
        => Mlp005.AnalyzerAsync("""
            class ConvWrapper : Module<Tensor, Tensor>
            {
                private readonly Conv2d conv = Conv2d(3, 16, 3);
                public ConvWrapper() : base("w") => RegisterComponents();
                public override Tensor forward(Tensor x) => conv.call(x);
                public sealed class Probe { public Tensor Raw(ConvWrapper w, Tensor x) => w.conv.call(x); }
            }
            """ + UseBeforeQuiet);

    [Fact]
    public Task W18_nameof_and_interpolation_of_the_field_are_mentions_and_not_reported()
        => Mlp005.AnalyzerAsync("""
            class ConvWrapper : Module<Tensor, Tensor>
            {
                private readonly Conv2d conv = Conv2d(3, 16, 3);
                public ConvWrapper() : base("w") => RegisterComponents();
                public override Tensor forward(Tensor x) => conv.call(x);
                public override string ToString() => $"{nameof(conv)}: {conv}";
            }
            """ + UseBeforeQuiet);

    [Fact]
    public Task W19_a_forward_hidden_by_new_is_not_the_forward_that_runs()
        => Mlp005.AnalyzerAsync("""
            class Base : Module<Tensor, Tensor>
            {
                protected Base() : base("b") { }
                public override Tensor forward(Tensor x) => functional.relu(x);
            }
            class ConvWrapper : Base
            {
                private readonly Conv2d conv = Conv2d(3, 16, 3);
                public ConvWrapper() => RegisterComponents();
                public new Tensor forward(Tensor x) => conv.call(x);
            }
            """ + UseBeforeQuiet);

    [Fact]
    public Task W20_a_wrapper_whose_layer_comes_from_a_constructor_argument_is_not_reported()
        => Mlp005.AnalyzerAsync("""
            class ConvWrapper : Module<Tensor, Tensor>
            {
                private readonly Module<Tensor, Tensor> conv;
                public ConvWrapper() : this(Conv2d(3, 16, 3, bias: false)) { }
                public ConvWrapper(Module<Tensor, Tensor> inner) : base("w") { conv = inner; RegisterComponents(); }
                public override Tensor forward(Tensor x) => conv.call(x);
            }
            """ + UseBeforeQuiet);

    [Fact]
    public Task W21_a_wrapper_whose_bias_flag_is_a_public_constructor_parameter_given_false_is_not_reported()
        => Mlp005.AnalyzerAsync("""
            class ConvWrapper : Module<Tensor, Tensor>
            {
                private readonly Conv2d conv;
                public ConvWrapper(bool bias = true) : base("w") { conv = Conv2d(3, 16, 3, bias: bias); RegisterComponents(); }
                public override Tensor forward(Tensor x) => conv.call(x);
            }

            class Models
            {
                Module<Tensor, Tensor> Build() => Sequential(new ConvWrapper(false), BatchNorm2d(16), ReLU());
            }
            """);

    [Fact]
    public Task W22_a_private_constructor_given_false_here_and_true_elsewhere_is_not_reported_here()
        => Mlp005.AnalyzerAsync("""
            class ConvWrapper : Module<Tensor, Tensor>
            {
                private readonly Conv2d conv;
                private ConvWrapper(bool bias) : base("w") { conv = Conv2d(3, 16, 3, bias: bias); RegisterComponents(); }
                public override Tensor forward(Tensor x) => conv.call(x);
                public static Module<Tensor, Tensor> A() => Sequential(new ConvWrapper(false), BatchNorm2d(16));
                public static Module<Tensor, Tensor> B() => Sequential(new ConvWrapper(true), ReLU());
            }
            """);

    // ================================================================ T: AnalysisServices.TokensNaming

    private static (AnalysisServices Services, SyntaxNode Root) Parse(string source)
    {
        var compilation = AllAnalyzers.Compile(LanguageVersion.Latest, addUsings: true, source);
        return (AnalysisServices.For(compilation)!, compilation.SyntaxTrees.Single().GetRoot());
    }

    private static string[] Found(string source, string name, System.Func<SyntaxNode, SyntaxNode>? scope = null)
    {
        var (services, root) = Parse(source);
        return services.TokensNaming(scope?.Invoke(root) ?? root, name, CancellationToken.None)
            .Select(t => t.Kind() + ":" + t.Text).ToArray();
    }

    [Fact]
    public void T01_a_name_at_the_very_start_and_end_of_the_scope_is_found()
    {
        const string source = "class C { int conv; int M() => conv; }";
        // scope = the expression body's expression: the identifier "conv" alone (starts and ends the scope)
        Assert.Equal(new[] { "IdentifierToken:conv" },
            Found(source, "conv", root => root.DescendantNodes().OfType<ArrowExpressionClauseSyntax>().Single().Expression));
        // scope = "this.conv": the name ends the scope
        Assert.Equal(new[] { "IdentifierToken:conv" },
            Found("class C { int conv; int M() => this.conv; }", "conv",
                root => root.DescendantNodes().OfType<MemberAccessExpressionSyntax>().Single()));
        // scope = the field declaration "int conv;"
        Assert.Equal(new[] { "IdentifierToken:conv" },
            Found(source, "conv", root => root.DescendantNodes().OfType<FieldDeclarationSyntax>().Single()));
    }

    [Fact]
    public void T02_longer_names_and_repeated_occurrences_are_not_tokens_of_the_name()
    {
        Assert.Empty(Found("class C { int convconv; int xconv; int conv_; }", "conv"));
        Assert.Equal(new[] { "IdentifierToken:conv", "IdentifierToken:conv" }, Found("class C { int convconv, conv; int M() => convconv + conv; }", "conv"));
        Assert.Equal(new[] { "IdentifierToken:aa", "IdentifierToken:aa" }, Found("class C { int aaa, aa; int M() => aaa+aa; }", "aa"));
    }

    [Fact]
    public void T03_verbatim_identifiers_are_found_once_each()
        => Assert.Equal(new[] { "IdentifierToken:@conv", "IdentifierToken:conv", "IdentifierToken:@conv" },
            Found("class C { int @conv; int M() => conv + @conv; }", "conv"));

    [Fact]
    public void T04_identifiers_inside_interpolations_are_found()
        => Assert.Equal(new[] { "IdentifierToken:conv", "IdentifierToken:conv", "IdentifierToken:conv" },
            Found("class C { int conv; string M() => $\"conv={conv} {nameof(conv)}\"; }", "conv"));

    [Fact]
    public void T05_string_and_character_literals_are_not_tokens_naming_the_name()
    {
        // The doc comment of TokensNaming: "Occurrences in comments, strings and longer names are not tokens of that value".
        Assert.Equal(new[] { "IdentifierToken:conv" }, Found("class C { int conv; string M() => \"conv\"; }", "conv"));
        Assert.Equal(new[] { "IdentifierToken:conv" }, Found("class C { int conv; string M() => $\"conv{1}\"; }", "conv"));
        Assert.Equal(new[] { "IdentifierToken:conv" }, Found("class C { int conv; string M() => @\"conv\"; }", "conv"));
        Assert.Equal(new[] { "IdentifierToken:c" }, Found("class C { int c; char M() => 'c'; }", "c"));
    }

    [Fact]
    public void T06_comments_doc_comments_and_disabled_code_are_skipped()
        => Assert.Equal(new[] { "IdentifierToken:conv" }, Found("""
            class C
            {
                /// <summary><see cref="conv"/> conv</summary>
                int conv; // conv
                /* conv */
            #if false
                int M() => conv;
            #endif
            #region conv
            #endregion
            }
            """, "conv"));

    [Fact]
    public void T07_a_name_spelled_with_a_unicode_escape_is_found_and_an_escape_elsewhere_changes_nothing()
    {
        Assert.Equal(new[] { "IdentifierToken:conv", "IdentifierToken:\\u0063onv" },
            Found("class C { int conv; int M() => \\u0063onv; }", "conv"));
        // an escape in a string inside the scope: the walk gives the same answer as the search
        Assert.Equal(new[] { "IdentifierToken:conv", "IdentifierToken:conv" },
            Found("class C { int conv; string M() => \"\\u0041\" + conv; }", "conv"));
        // an escape outside the scope, in another class
        Assert.Equal(new[] { "IdentifierToken:conv", "IdentifierToken:conv" },
            Found("class C { int conv; int M() => conv; } class D { string S = \"\\u0041\"; }", "conv",
                root => root.DescendantNodes().OfType<ClassDeclarationSyntax>().First()));
    }

    [Fact]
    public void T08_a_name_with_a_formatting_character_is_found()
    {
        // U+200D (a Unicode Cf character) is allowed in identifiers and ignored: "co\u200Dnv" has the value "conv".
        var source = "class C { int conv; int M() => co\u200Dnv; }";
        var (_, root) = Parse(source);
        Assert.Equal(2, root.DescendantTokens().Count(t => t.ValueText == "conv")); // the language's view
        Assert.Equal(2, Found(source, "conv").Length);
    }

    [Fact]
    public async Task T09_an_empty_name_terminates()
    {
        // Latent: no caller was found to pass "" (nameless classes keep no members), but the loop never ends and ignores cancellation.
        var (services, root) = Parse("class C { int conv; }");
        var search = Task.Run(() => services.TokensNaming(root, "", CancellationToken.None).Count);
        var finished = await Task.WhenAny(search, Task.Delay(System.TimeSpan.FromSeconds(10)));
        Assert.True(finished == search, "TokensNaming(scope, \"\") does not return");
        Assert.Equal(0, await search);
    }

    [Fact]
    public void T10_keywords_are_returned_only_when_asked_for_by_their_name()
        // CallSiteArguments relies on finding "new", "base" and "this" keywords; a field named @base is found with them.
        => Assert.Equal(new[] { "BaseKeyword:base", "IdentifierToken:@base" },
            Found("class B { public B(int i) { } } class C : B { int @base; public C() : base(1) => @base = 2; }", "base",
                root => root.DescendantNodes().OfType<ConstructorDeclarationSyntax>().Last()));

    // ================================================================ M: MLP006

    [Fact]
    public Task M01_a_head_module_after_a_LayerNorm_in_a_Sequential_built_outside_a_module_is_not_reported()
        // "A normalization right before the layer": the head's class names none, but the Sequential around it puts one there.
        => Mlp006.AnalyzerAsync("""
            class Head : Module<Tensor, Tensor>
            {
                private readonly Linear fc = nn.Linear(128, 10, hasBias: false);
                public Head() : base("head") => RegisterComponents();
                public override Tensor forward(Tensor x) => fc.call(x);
            }

            class Trainer
            {
                void Train(Tensor x, Tensor y)
                {
                    var model = nn.Sequential(nn.Linear(784, 128), nn.ReLU(), nn.LayerNorm(128), new Head());
                    var loss = functional.cross_entropy(model.call(x), y);
                }
            }
            """);

    [Fact]
    public Task M02_a_head_whose_features_are_normalized_by_a_base_class_helper_is_not_reported()
        => Mlp006.AnalyzerAsync("""
            abstract class Backbone : Module<Tensor, Tensor>
            {
                private readonly LayerNorm ln = nn.LayerNorm(128);
                private readonly Linear body = nn.Linear(784, 128);
                protected Backbone(string name) : base(name) { }
                protected Tensor Features(Tensor x) => ln.call(functional.relu(body.call(x)));
            }
            sealed class Classifier : Backbone
            {
                private readonly Linear head = nn.Linear(128, 10, hasBias: false);
                public Classifier() : base("c") => RegisterComponents();
                public override Tensor forward(Tensor x) => head.call(Features(x));
            }
            class Trainer
            {
                void Train(Classifier model, Tensor x, Tensor y) => functional.cross_entropy(model.call(x), y);
            }
            """);

    [Fact]
    public Task M03_a_head_in_a_class_named_by_another_module_only_in_a_string_is_still_reported()
        // IsNamedByAnotherModule counts a string literal equal to the class name as naming it.
        => Mlp006.AnalyzerAsync("""
            sealed class Classifier : Module<Tensor, Tensor>
            {
                private readonly Linear hidden = nn.Linear(784, 128);
                private readonly Linear head = nn.Linear(128, 10, hasBias: false);
                public Classifier() : base("c") => RegisterComponents();
                public override Tensor forward(Tensor x) => head.call(functional.relu(hidden.call(x)));
            }
            sealed class Logger : Module<Tensor, Tensor>
            {
                public Logger() : base("Classifier") { }
                public override Tensor forward(Tensor x) => x;
            }
            class Trainer
            {
                void Train(Classifier model, Tensor x, Tensor y) { var loss = functional.cross_entropy({|#0:model.call(x)|}, y); }
            }
            """, MLP006());

    [Fact]
    public Task M04_the_rule_pages_classifier_is_reported()
        => Mlp006.AnalyzerAsync("""
            sealed class Classifier : Module<Tensor, Tensor>
            {
                private readonly Linear hidden = nn.Linear(784, 128);
                private readonly Linear head = nn.Linear(128, 10, hasBias: false);
                public Classifier() : base(nameof(Classifier)) => RegisterComponents();
                public override Tensor forward(Tensor x) => head.call(functional.relu(hidden.call(x)));
            }
            class Trainer
            {
                void Train(Classifier model, Tensor x, Tensor y) { var output = model.call(x); var loss = functional.cross_entropy({|#0:output|}, y); }
            }
            """, MLP006());

    // ================================================================ R: robustness (AD0001 and hangs)

    private static async Task<ImmutableArray<Diagnostic>> RunAllWithTimeoutAsync(params string[] sources)
    {
        var compilation = AllAnalyzers.Compile(LanguageVersion.Latest, addUsings: true, sources);
        var run = AllAnalyzers.RunAsync(compilation);
        var finished = await Task.WhenAny(run, Task.Delay(System.TimeSpan.FromSeconds(60)));
        Assert.True(finished == run, "the analyzers did not finish within 60 s");
        return await run;
    }

    [Fact]
    public async Task R01_a_nameless_module_class_computing_its_own_loss_does_not_hang_the_analyzers()
    {
        // Broken code while typing: "class : Module<...>" has a type whose Name is "" (IsNamedByAnotherModule would search for
        // it). Checked: the parser leaves the body outside the nameless class, so this path does not reach TokensNaming("").
        var diagnostics = await RunAllWithTimeoutAsync("""
            class : Module<Tensor, Tensor>
            {
                private readonly Linear head = nn.Linear(8, 2, hasBias: false);
                public override Tensor forward(Tensor x) => head.call(x);
                Tensor Train(Tensor x, Tensor y) => functional.cross_entropy(nn.Linear(8, 2, hasBias: false).call(x), y);
            }
            """);
        Assert.DoesNotContain(diagnostics, d => d.Id == "AD0001");
    }

    private const string OddWrappers = """
        class W1 : Module<Tensor, Tensor>
        {
            private readonly Conv2d conv = Conv2d(3, 16, 3);
            public W1() : base("w") { }
            public override Tensor forward(Tensor x) => conv.call();
        }
        class W2 : Module<Tensor, Tensor>
        {
            private readonly Missing conv = Conv2d(3, 16, 3);
            public W2() : base("w") { }
            public override Tensor forward(Tensor x) => conv.call(x);
        }
        class W3 : Module<Tensor, Tensor>
        {
            private readonly Conv2d conv = Conv2d(3, 16, 3), conv = Conv2d(3, 16, 3);
            public W3() : base("w") { }
            public override Tensor forward(Tensor x) => conv.call(x);
        }
        class W4 : Module<Tensor, Tensor>
        {
            private readonly Conv2d  = Conv2d(3, 16, 3);
            public W4() : base("w") { }
            public override Tensor forward(Tensor x) => .call(x);
        }
        class W5 : Module<Tensor, Tensor>
        {
            private readonly Conv2d conv = Conv2d(3, 16, 3);
            public W5() : base("w") { }
            public override Tensor forward(Tensor x) => conv.call(y);
            public override Tensor forward(Tensor x) => conv.call(x);
        }
        class W6 : Module<Tensor, Tensor>
        {
            private readonly Conv2d conv;
            public W6() : base("w") { conv = ; }
            public override Tensor forward(Tensor x) => conv.call(x);
        }
        class W7 : Module<Tensor, Tensor>
        {
            private readonly Conv2d conv = Conv2d(3, 16, 3);
            public W7() : base("w") { }
            public override Tensor forward(Tensor x) { return conv.call(x) }
        }
        class W8<T> : Module<Tensor, Tensor> where T : Module<Tensor, Tensor>
        {
            private readonly T conv;
            public W8(T t) : base("w") { conv = t; }
            public override Tensor forward(Tensor x) => conv.call(x);
        }
        class W9 : Module<Tensor, Tensor>
        {
            private readonly Conv2d \u0063onv = Conv2d(3, 16, 3);
            public W9() : base("w") { }
            public override Tensor forward(Tensor x) => conv.call(x);
        }
        class : Module<Tensor, Tensor>
        {
            private readonly Conv2d conv = Conv2d(3, 16, 3);
            public override Tensor forward(Tensor x) => conv.call(x);
        }
        class Models
        {
            Module<Tensor, Tensor> Build() => Sequential(
                new W1(), BatchNorm2d(16), new W2(), BatchNorm2d(16), new W3(), BatchNorm2d(16), new W4(), BatchNorm2d(16),
                new W5(), BatchNorm2d(16), new W6(), BatchNorm2d(16), new W7(), BatchNorm2d(16), new W8<Conv2d>(Conv2d(3, 16, 3)), BatchNorm2d(16),
                new W9(), InstanceNorm2d(16), new W10(), BatchNorm2d(16), new W1, BatchNorm2d(16), new(), BatchNorm2d(16), new W1() { }, BatchNorm2d(16));
        }
        """;

    [Fact]
    public async Task R02_odd_and_broken_wrappers_raise_no_analyzer_exception()
    {
        var diagnostics = await RunAllWithTimeoutAsync(OddWrappers);
        Assert.DoesNotContain(diagnostics, d => d.Id == "AD0001");
    }

    [Fact]
    public async Task R03_odd_wrappers_cut_off_anywhere_raise_no_analyzer_exception()
    {
        for (var cut = 0; cut < OddWrappers.Length; cut += 41)
        {
            foreach (var text in new[] { OddWrappers.Substring(0, cut), OddWrappers.Remove(cut, System.Math.Min(4, OddWrappers.Length - cut)) })
            {
                var diagnostics = await RunAllWithTimeoutAsync(text);
                Assert.False(diagnostics.Any(d => d.Id == "AD0001"), $"AD0001 at cut {cut}: {string.Join("; ", diagnostics.Where(d => d.Id == "AD0001"))}");
            }
        }
    }
}
