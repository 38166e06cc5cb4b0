using System;
using System.Linq;
using MlPitfalls.Runtime.NonFinite;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace MlPitfalls.Runtime.Tests
{
    /// <summary>Defects found by using the library on realistic models, each reproduced as reported.</summary>
    [Collection(TorchCollection.Name)]
    public class IssueDefectTests
    {
        [Fact]
        public void Coverage_after_a_throw_on_the_first_pass_describes_what_ran()
        {
            manual_seed(1);
            var m = nn.Sequential(("fc", nn.Linear(4, 4)), ("log", new LogLayer()), ("head", nn.Linear(4, 2)));
            using var guard = NonFiniteGuard.Attach(m);
            Assert.Throws<NonFiniteValueException>(() => m.call(-ones(8, 4) * 10));

            var coverage = guard.Coverage();
            var text = coverage.ToString();
            Assert.Contains(coverage.Observed, o => o.Contains("fc"));
            Assert.Contains(coverage.Observed, o => o.Contains("log"));
            Assert.DoesNotContain("never invoked through call()", text);
            Assert.DoesNotContain("never observed either", text);
            var head = Assert.Single(coverage.NeverObserved);
            Assert.StartsWith("head", head.Path);
            Assert.Contains("'log'", head.Reason);
            Assert.Contains("stopped", head.Reason);
        }

        [Fact]
        public void Coverage_after_a_non_finite_model_input_on_the_first_pass_says_the_pass_stopped_there()
        {
            var m = nn.Sequential(("fc", nn.Linear(4, 4)), ("head", nn.Linear(4, 2)));
            using var guard = NonFiniteGuard.Attach(m);
            Assert.Throws<NonFiniteValueException>(() => m.call(full(8, 4, float.NaN)));

            var coverage = guard.Coverage();
            Assert.Equal(2, coverage.NeverObserved.Count);
            Assert.All(coverage.NeverObserved, u => Assert.Contains("stopped the only forward pass so far (step 1) at the non-finite model input", u.Reason));
        }
    }
}
