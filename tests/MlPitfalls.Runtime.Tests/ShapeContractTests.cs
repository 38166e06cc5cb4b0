using System;
using MlPitfalls.Runtime.Shapes;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace MlPitfalls.Runtime.Tests
{
    [Collection(TorchCollection.Name)]
    public class ShapeContractTests
    {
        [Fact]
        public void Matching_shapes_bind_names_and_pass()
        {
            using var scope = NewDisposeScope();
            var dims = new ShapeScope();
            var x = zeros(8, 1, 28, 28);
            var logits = zeros(8, 10);

            Assert.Same(x, x.ExpectShape("batch 1 28 28", dims));
            logits.ExpectShape("batch classes", dims);

            Assert.Equal(8, dims["batch"]);
            Assert.Equal(10, dims["classes"]);
            Assert.Equal("x", dims.Bindings["batch"].Source);
            Assert.Equal(0, dims.Bindings["batch"].Axis);
        }

        [Fact]
        public void Conflicting_binding_names_tensor_expected_actual_and_where_bound()
        {
            using var scope = NewDisposeScope();
            var dims = new ShapeScope();
            var images = zeros(8, 1, 28, 28);
            var labels = zeros(new long[] { 7 }, dtype: int64);
            images.ExpectShape("batch 1 28 28", dims);

            var ex = Assert.Throws<ShapeContractException>(() => labels.ExpectShape("batch", dims));

            Assert.Equal("labels", ex.Tensor);
            Assert.Contains("Shape check failed for 'labels'", ex.Message);
            Assert.Contains("dim 0 'batch' should be 8 (bound by 'images' dim 0 at ShapeContractTests.cs:", ex.Message);
            Assert.Contains("but is 7", ex.Message);
            Assert.Contains("expected: \"batch\"", ex.Message);
            Assert.Contains("actual:   [7]", ex.Message);
            Assert.Contains("batch = 8", ex.Message);
            Assert.Contains("What to check:", ex.Message);
            Assert.Equal(new long[] { 7 }, ex.ActualShape);
            Assert.Equal(8, ex.Bindings["batch"]);
        }

        [Fact]
        public void Rank_mismatch_and_fixed_size_mismatch_are_reported()
        {
            using var scope = NewDisposeScope();
            var flat = zeros(4, 784);
            var ex = Assert.Throws<ShapeContractException>(() => flat.ExpectShape("batch 1 28 28"));
            Assert.Contains("has 2 dimensions but the spec has 4", ex.Message);

            var wrong = zeros(4, 3, 28, 28);
            var ex2 = Assert.Throws<ShapeContractException>(() => wrong.ExpectShape("batch 1 28 28"));
            Assert.Contains("dim 1 should be 1 but is 3", ex2.Message);
            Assert.Contains("[4, 3, 28, 28]", ex2.Message);
        }

        [Fact]
        public void Wildcards_and_ellipsis()
        {
            using var scope = NewDisposeScope();
            var dims = new ShapeScope();
            zeros(2, 3, 4, 5).ExpectShape("batch ... 5", dims);
            zeros(2, 5).ExpectShape("batch ... 5", dims);
            zeros(9, 2, 7).ExpectShape("_ batch _", dims);
            Assert.Throws<ShapeContractException>(() => zeros(3).ExpectShape("batch ... 5", dims));
            Assert.Throws<ShapeContractException>(() => zeros(2, 3, 4).ExpectShape("batch ... 5", dims));
        }

        [Fact]
        public void Products_and_quotients_check_and_solve()
        {
            using var scope = NewDisposeScope();
            var dims = new ShapeScope();
            var q = zeros(2, 16, 64);
            q.ExpectShape("batch seq model", dims);
            var heads = zeros(2, 8, 16, 8);
            heads.ExpectShape("batch heads seq model/heads", dims);
            Assert.Equal(8, dims["heads"]);

            var merged = zeros(2, 16, 64);
            merged.ExpectShape("batch seq heads*head_dim", dims.Bind("head_dim", 8));

            var bad = zeros(2, 16, 60);
            var ex = Assert.Throws<ShapeContractException>(() => bad.ExpectShape("batch seq heads * head_dim", dims));
            Assert.Contains("'heads*head_dim' should be 64 (heads=8, head_dim=8) but is 60", ex.Message);

            // Solving one unknown: hidden = 48 / 3.
            var d2 = new ShapeScope().Bind("k", 3);
            zeros(48).ExpectShape("k*hidden", d2);
            Assert.Equal(16, d2["hidden"]);
            Assert.Throws<ShapeContractException>(() => zeros(47).ExpectShape("k*other", d2));
        }

        [Fact]
        public void Failed_check_leaves_scope_unchanged()
        {
            using var scope = NewDisposeScope();
            var dims = new ShapeScope();
            var t = zeros(5, 6);
            Assert.Throws<ShapeContractException>(() => t.ExpectShape("rows 7", dims));
            Assert.False(dims.TryGet("rows", out _));
        }

        [Fact]
        public void Same_name_twice_in_one_spec_must_agree()
        {
            using var scope = NewDisposeScope();
            zeros(3, 3).ExpectShape("n n");
            var ex = Assert.Throws<ShapeContractException>(() => zeros(3, 4).ExpectShape("n n"));
            Assert.Contains("'n' should be 3", ex.Message);
        }

        [Fact]
        public void Dtype_and_device_expectations()
        {
            using var scope = NewDisposeScope();
            var x = zeros(new long[] { 2, 3 }, dtype: float64);
            x.ExpectShape("a b", dtype: ScalarType.Float64, device: DeviceType.CPU);
            var ex = Assert.Throws<ShapeContractException>(() => x.ExpectShape("a b", dtype: ScalarType.Float32));
            Assert.Contains("dtype should be Float32 but is Float64", ex.Message);
        }

        [Fact]
        public void Ambient_scope_is_used_and_restored()
        {
            using var scope = NewDisposeScope();
            Assert.Null(ShapeScope.Current);
            using (var outer = ShapeScope.Begin())
            {
                zeros(4, 2).ExpectShape("batch features");
                Assert.Equal(4, outer["batch"]);
                Assert.Throws<ShapeContractException>(() => zeros(5).ExpectShape("batch"));
                using (var inner = ShapeScope.Begin())
                {
                    zeros(5).ExpectShape("batch");
                    Assert.Same(inner, ShapeScope.Current);
                }
                Assert.Same(outer, ShapeScope.Current);
            }
            Assert.Null(ShapeScope.Current);
        }

        [Fact]
        public void Invalid_specs_are_rejected_with_the_token()
        {
            var ex = Assert.Throws<FormatException>(() => ShapeSpec.Parse("batch 3x"));
            Assert.Contains("'3x'", ex.Message);
            Assert.Throws<FormatException>(() => ShapeSpec.Parse("... a ..."));
            Assert.Throws<FormatException>(() => ShapeSpec.Parse("a/0"));
            Assert.Same(ShapeSpec.Parse("batch 10"), ShapeSpec.Parse("batch 10"));
        }

        [Fact]
        public void Global_switch_turns_checks_off()
        {
            using var scope = NewDisposeScope();
            var t = zeros(2, 2);
            ShapeChecks.Enabled = false;
            try
            {
                t.ExpectShape("a b c");
            }
            finally
            {
                ShapeChecks.Enabled = true;
            }
            Assert.Throws<ShapeContractException>(() => t.ExpectShape("a b c"));
        }

        [Fact]
        public void Module_contract_checks_every_call_and_detaches()
        {
            using var scope = NewDisposeScope();
            var model = nn.Sequential(nn.Linear(784, 32), nn.ReLU(), nn.Linear(32, 10));
            int hooksBefore = Hooks.CountAll(model);
            using (var contract = model.ExpectContract("batch 784 -> batch 10"))
            {
                model.call(zeros(3, 784));
                model.call(zeros(5, 784));
                Assert.Equal(2, contract.CallsChecked);

                var ex = Assert.Throws<ShapeContractException>(() => model.call(zeros(3, 1, 28, 28)));
                Assert.Contains("input of model (Sequential)", ex.Message);
                Assert.Contains("has 4 dimensions but the spec has 2", ex.Message);
            }

            var wrongOut = nn.Linear(784, 9);
            using (wrongOut.ExpectContract("batch 784 -> batch 10"))
            {
                var ex = Assert.Throws<ShapeContractException>(() => wrongOut.call(zeros(3, 784)));
                Assert.Contains("output of wrongOut (Linear)", ex.Message);
                Assert.Contains("dim 1 should be 10 but is 9", ex.Message);
                Assert.Contains("batch = 3", ex.Message);
            }

            Assert.Equal(hooksBefore, Hooks.CountAll(model));
            Assert.Equal(0, Hooks.Count(wrongOut));
            // Hooks removed: the bad input now goes straight to the model (and fails inside TorchSharp instead).
            wrongOut.call(zeros(2, 784));
            Assert.ThrowsAny<Exception>(() => model.call(zeros(3, 1, 28, 28)));
            Assert.Throws<FormatException>(() => model.ExpectContract("batch 784"));
        }

        [Fact]
        public void Passing_checks_leak_no_tensors()
        {
            var x = zeros(8, 3, 4);
            var dims = new ShapeScope();
            x.ExpectShape("b c d", dims);
            long before = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
            for (int i = 0; i < 50; i++) x.ExpectShape("b c d", dims);
            Assert.Throws<ShapeContractException>(() => x.ExpectShape("b c 5", dims));
            Assert.Equal(before, DisposeScopeManager.Statistics.ThreadTotalLiveCount);
            x.Dispose();
        }

        [Fact]
        public void Failed_dtype_check_leaves_scope_unchanged()
        {
            using var scope = NewDisposeScope();
            var dims = new ShapeScope();
            var t = zeros(5, 6);
            Assert.Throws<ShapeContractException>(() => t.ExpectShape("rows cols", dims, dtype: ScalarType.Float64));
            Assert.False(dims.TryGet("rows", out _));
            Assert.False(dims.TryGet("cols", out _));
        }

        [Fact]
        public void Empty_dimensions_in_products_bind_and_check_like_plain_names()
        {
            using var scope = NewDisposeScope();
            var dims = new ShapeScope();
            zeros(0, 3, 4).ExpectShape("batch seq d", dims);          // an empty batch binds batch = 0
            zeros(0, 4).ExpectShape("batch*seq d", dims);              // 0 * 3 = 0
            zeros(0, 4).ExpectShape("batch*tokens d", dims);           // 0 * anything = 0: tokens cannot be solved, and need not be
            Assert.False(dims.TryGet("tokens", out _));
            var ex = Assert.Throws<ShapeContractException>(() => zeros(5, 4).ExpectShape("batch*tokens d", dims));
            Assert.Contains("'batch*tokens' should be 0 (batch=0, tokens=?) but is 5", ex.Message);

            var d2 = new ShapeScope().Bind("heads", 4);
            zeros(0).ExpectShape("heads*head_dim", d2);                 // an empty dimension solves to 0, as a plain name would bind 0
            Assert.Equal(0, d2["head_dim"]);
        }

        [Fact]
        public void Spec_cache_is_bounded_for_specs_built_at_run_time()
        {
            for (int i = 0; i < ShapeSpec.MaxCachedSpecs + 100; i++)
            {
                Assert.Equal(2, ShapeSpec.Parse($"batch {i}").FixedRank);
            }
            Assert.InRange(ShapeSpec.CachedCount, 1, ShapeSpec.MaxCachedSpecs);
        }

        [Fact]
        public void Binding_something_no_spec_can_use_is_rejected()
        {
            var dims = new ShapeScope();
            var ex = Assert.Throws<ArgumentException>(() => dims.Bind("heads*dim", 64));
            Assert.Contains("'heads*dim' is not a dimension name", ex.Message);
            Assert.Throws<ArgumentException>(() => dims.Bind("_", 3));
            Assert.Throws<ArgumentOutOfRangeException>(() => dims.Bind("batch", -1));
            Assert.Empty(dims.Bindings);
            Assert.Equal(0, dims.Bind("empty", 0)["empty"]);
        }
    }
}
