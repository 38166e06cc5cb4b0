using System;
using System.Collections.Generic;
using MlPitfalls.Runtime.Shapes;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace MlPitfalls.Runtime.Tests
{
    /// <summary>Module contracts on every arity and on tuple outputs, with sizes from configuration.</summary>
    [Collection(TorchCollection.Name)]
    public class ModuleContractArityTests
    {
        [Fact]
        public void A_gru_contract_checks_every_element_of_its_tuple_output()
        {
            manual_seed(1);
            var gru = nn.GRU(8, 16, numLayers: 2, batchFirst: true);
            using var contract = gru.ExpectContract("batch seq 8 -> batch seq hidden, layers batch hidden", new { layers = 2 });
            gru.call(randn(4, 5, 8));
            Assert.Equal(1, contract.CallsChecked);
            Assert.Equal(2, contract.Outputs.Count);

        }

        [Fact]
        public void A_wrong_element_of_a_tuple_output_is_named_with_its_position()
        {
            manual_seed(2);
            var gru = nn.GRU(8, 16, numLayers: 3, batchFirst: true);
            using var contract = gru.ExpectContract("batch seq 8 -> batch seq hidden, layers batch hidden", new { layers = 2 });
            var ex = Assert.Throws<ShapeContractException>(() => gru.call(randn(4, 5, 8)));
            Assert.Contains("output 2 of gru (GRU)", ex.Message);
            Assert.Contains("'layers' should be 2 (bound by the sizes given to ExpectContract at", ex.Message);
        }

        [Fact]
        public void A_two_input_module_checks_both_inputs_against_one_scope()
        {
            var bilinear = nn.Bilinear(3, 5, 7);
            using var contract = bilinear.ExpectContract("batch 3, batch 5 -> batch 7");
            bilinear.call(randn(2, 3), randn(2, 5));
            var ex = Assert.Throws<ShapeContractException>(() => bilinear.call(randn(2, 3), randn(4, 5)));
            Assert.Contains("input 2 of bilinear (Bilinear)", ex.Message);
            Assert.Contains("'batch' should be 2", ex.Message);
        }

        [Fact]
        public void Sizes_from_configuration_solve_products_and_a_missing_size_is_advised_as_a_contract_size()
        {
            var attention = nn.MultiheadAttention(16, 4);
            using (var contract = attention.ExpectContract("seq batch heads*dim, seq batch heads*dim, seq batch heads*dim -> seq batch heads*dim, batch seq seq",
                       new Dictionary<string, long> { ["heads"] = 4 }))
            {
                var x = randn(5, 2, 16);
                attention.call(x, x, x);
                Assert.Equal(1, contract.CallsChecked);
            }

            var linear = nn.Linear(16, 16);
            using var unsolvable = linear.ExpectContract("batch heads*dim -> batch 16");
            var ex = Assert.Throws<ShapeContractException>(() => linear.call(randn(2, 16)));
            Assert.Contains("Give one of them in the contract's sizes", ex.Message);
            Assert.DoesNotContain("ShapeScope.Bind", ex.Message);
        }

        [Fact]
        public void A_spec_count_that_does_not_match_the_tensors_says_so()
        {
            var gru = nn.GRU(8, 16, batchFirst: true);
            using var contract = gru.ExpectContract("batch seq 8 -> batch seq 16");
            var ex = Assert.Throws<ShapeContractException>(() => gru.call(randn(4, 5, 8)));
            Assert.Contains("lists 1 output spec, but the module returned 2 tensors", ex.Message);
        }

        [Fact]
        public void Bad_sizes_are_rejected_when_the_contract_is_made()
        {
            var linear = nn.Linear(4, 4);
            Assert.Throws<ArgumentException>(() => linear.ExpectContract("batch 4 -> batch 4", new Dictionary<string, long> { ["heads*dim"] = 4 }));
            Assert.Throws<ArgumentOutOfRangeException>(() => linear.ExpectContract("batch 4 -> batch 4", new { heads = -1 }));
            Assert.Throws<ArgumentException>(() => linear.ExpectContract("batch 4 -> batch 4", new { heads = 2.5 }));
            Assert.Throws<FormatException>(() => linear.ExpectContract("batch 4, -> batch 4"));
        }

        [Fact]
        public void Disposing_a_contract_on_any_arity_removes_its_hooks()
        {
            var gru = nn.GRU(8, 16, batchFirst: true);
            var before = Hooks.Count(gru);
            var contract = gru.ExpectContract("batch seq 8 -> batch seq 16, 1 batch 16");
            Assert.Equal(before + 2, Hooks.Count(gru));
            contract.Dispose();
            Assert.Equal(before, Hooks.Count(gru));
        }
    }
}
