using System.Collections.Generic;
using System.Linq;
using System.Threading.Tasks;
using Microsoft.CodeAnalysis.CSharp;
using MlPitfalls.Analyzers.Tests.Repository;
using Xunit;

namespace MlPitfalls.Analyzers.Tests.AllRules;

/// <summary>Incomplete and odd code, every language version: no analyzer may throw (AD0001).</summary>
public class RobustnessTests
{
    private const string LossCode = """
        class Net : Module<Tensor, Tensor>
        {
            private readonly Module<Tensor, Tensor> head = nn.Sequential(nn.Linear(4, 3), nn.Softmax(1));
            private Net Self => this;
            public Net() : base("net") { RegisterComponents(); }
            public override Tensor forward(Tensor x) => flag ? head.call(x) : Self.call(x).softmax(1);
            private bool flag;
            Tensor Recursive(Tensor t, int n) => n == 0 ? t.softmax(1) : Recursive(t, n - 1);
            Tensor Loss(Tensor x, Tensor y)
            {
                Func<Tensor, Tensor> f = null;
                f = t => f(t).softmax(1);
                Tensor Local(Tensor t) => Local(t).log_softmax(1);
                var seq = nn.Sequential();
                for (int i = 0; i < 3; i++) seq.append(nn.Softmax(1));
                try { x = x.softmax(1); } catch (Exception) { x = x.sigmoid(); } finally { y = y.view(-1); }
                var q = x?.softmax(1) ?? y;
                return functional.cross_entropy(f(x), y) + functional.nll_loss(Local(x), y) + functional.kl_div(Recursive(x, 3), q)
                     + nn.CrossEntropyLoss().call(seq.call(x), y) + nn.KLDivLoss().forward(this.call(x), q.softmax(1));
            }
        }
        """;

    public static IEnumerable<object[]> LanguageVersions()
        => new[] { LanguageVersion.CSharp7_3, LanguageVersion.CSharp8, LanguageVersion.CSharp9, LanguageVersion.CSharp10, LanguageVersion.CSharp11, LanguageVersion.CSharp12, LanguageVersion.Latest }
            .Select(v => new object[] { v });

    [Theory]
    [MemberData(nameof(LanguageVersions))]
    public async Task Every_language_version_is_analysed_without_an_analyzer_exception(LanguageVersion version)
    {
        var diagnostics = await AllAnalyzers.RunAsync(AllAnalyzers.Compile(version, addUsings: true, LossCode));
        Assert.DoesNotContain(diagnostics, d => d.Id == "AD0001");
    }

    [Fact]
    public async Task Code_cut_off_anywhere_is_analysed_without_an_analyzer_exception()
    {
        var sources = new[] { LossCode, RepositoryFiles.Read("samples", "TrainingLoop", "Program.cs"), RepositoryFiles.Read("samples", "TrainingLoop", "DigitClassifier.cs") };
        foreach (var source in sources)
        {
            for (var cut = 0; cut < source.Length; cut += 23)
            {
                var truncated = source.Substring(0, cut);
                var withHole = source.Remove(cut, System.Math.Min(7, source.Length - cut));
                foreach (var text in new[] { truncated, withHole })
                {
                    var diagnostics = await AllAnalyzers.RunAsync(AllAnalyzers.Compile(LanguageVersion.Latest, addUsings: source == LossCode, text));
                    Assert.False(diagnostics.Any(d => d.Id == "AD0001"), $"AD0001 at cut {cut}: {string.Join("; ", diagnostics.Where(d => d.Id == "AD0001"))}");
                }
            }
        }
    }

    [Fact]
    public async Task Error_types_and_missing_members_are_analysed_without_an_analyzer_exception()
    {
        var diagnostics = await AllAnalyzers.RunAsync(AllAnalyzers.Compile(LanguageVersion.Latest, addUsings: true, """
            class C
            {
                Missing model = nn.Sequential(nn.Linear(4, 3), nn.NoSuchLayer(1));
                Tensor Loss(Tensor x, Tensor y) => functional.cross_entropy(model.call(x).softmax(), y) + nn.CrossEntropyLoss().call(x.softmax(1)) + functional.kl_div(x, y, log_target: maybe);
                Tensor Other(Tensor x) => functional.cross_entropy(x.softmax(1), x.nothing);
            }
            """));
        Assert.DoesNotContain(diagnostics, d => d.Id == "AD0001");
    }
}
