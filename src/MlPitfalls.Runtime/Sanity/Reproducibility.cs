using System;
using System.Collections.Generic;
using TorchSharp;

namespace MlPitfalls.Runtime.Sanity
{
    /// <summary>
    /// Seeding in one call, as Karpathy's recipe asks ("make the test reproducible by setting the seed of the random number
    /// generator"): TorchSharp's generator (which also drives layer initialisation and dropout masks), every CUDA device
    /// when present, a fresh <see cref="System.Random"/> for the program's own shuffling, and on request the settings that
    /// make CPU results repeatable.
    /// </summary>
    public static class Reproducibility
    {
        /// <summary>The CUDA setting cuBLAS needs for repeatable results; it takes effect only if set before CUDA starts.</summary>
        private const string CublasWorkspaceConfig = "CUBLAS_WORKSPACE_CONFIG";

        /// <summary>
        /// Seeds TorchSharp (CPU, and all CUDA devices when CUDA is available) and returns what was done, with a new
        /// <see cref="System.Random"/> seeded from <paramref name="seed"/> (a <c>System.Random</c> cannot be reseeded in place:
        /// use the returned one, or create yours with the same seed).
        /// </summary>
        /// <param name="seed">The seed.</param>
        /// <param name="deterministic">Also make results repeatable where TorchSharp allows it: one intra-op thread on the CPU
        /// (parallel reductions may add in a different order), and <c>CUBLAS_WORKSPACE_CONFIG=:4096:8</c> for cuBLAS when it is not
        /// set. TorchSharp 0.107.0 does not implement <c>use_deterministic_algorithms</c>, so some CUDA kernels (scatter/index_add,
        /// some convolutions' backward) stay nondeterministic whatever is set.</param>
        public static SeedResult Seed(int seed, bool deterministic = false)
        {
            Internal.TorchLoad.EnsureLoaded(); // often the program's first TorchSharp call: explain a native load failure
            var actions = new List<string>();
            torch.manual_seed(seed);
            actions.Add($"torch.manual_seed({seed}): layer initialisation, rand/randn and dropout masks on the CPU");
            bool cuda = torch.cuda.is_available();
            if (cuda)
            {
                torch.cuda.manual_seed_all(seed);
                actions.Add($"torch.cuda.manual_seed_all({seed}): every CUDA device");
            }

            if (deterministic)
            {
                torch.set_num_threads(1);
                actions.Add("torch.set_num_threads(1): one intra-op thread, so CPU reductions add in one order (slower on many cores)");
                if (Environment.GetEnvironmentVariable(CublasWorkspaceConfig) is null)
                {
                    Environment.SetEnvironmentVariable(CublasWorkspaceConfig, ":4096:8");
                    actions.Add($"{CublasWorkspaceConfig}=:4096:8 for cuBLAS (effective only if CUDA had not started yet)");
                }
            }

            return new SeedResult(seed, new Random(seed), cuda, actions);
        }
    }

    /// <summary>What <see cref="Reproducibility.Seed"/> set.</summary>
    public sealed class SeedResult
    {
        internal SeedResult(int seed, Random random, bool cuda, IReadOnlyList<string> actions)
        {
            SeedValue = seed;
            Random = random;
            CudaSeeded = cuda;
            Actions = actions;
        }

        /// <summary>The seed used.</summary>
        public int SeedValue { get; }

        /// <summary>A <see cref="System.Random"/> seeded with the same seed, for the program's own shuffling and sampling.</summary>
        public Random Random { get; }

        /// <summary>True when CUDA was available and every device was seeded.</summary>
        public bool CudaSeeded { get; }

        /// <summary>What was set, one line each.</summary>
        public IReadOnlyList<string> Actions { get; }

        /// <inheritdoc />
        public override string ToString() => $"Seeded with {SeedValue}:{Environment.NewLine}  " + string.Join(Environment.NewLine + "  ", Actions);
    }
}
