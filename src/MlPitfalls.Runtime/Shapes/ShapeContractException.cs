using System.Collections.Generic;

namespace MlPitfalls.Runtime.Shapes
{
    /// <summary>A tensor did not match its shape spec, or its dtype/device expectation.</summary>
    public sealed class ShapeContractException : RuntimeCheckException
    {
        internal ShapeContractException(string message, string tensor, string spec, long[] actualShape, IReadOnlyDictionary<string, long> bindings)
            : base(message)
        {
            Tensor = tensor;
            Spec = spec;
            ActualShape = actualShape;
            Bindings = bindings;
        }

        /// <summary>The tensor as the caller wrote it (its argument expression), or a module-contract label.</summary>
        public string Tensor { get; }

        /// <summary>The spec that was expected.</summary>
        public string Spec { get; }

        /// <summary>The tensor's actual shape.</summary>
        public long[] ActualShape { get; }

        /// <summary>The bindings in scope when the check failed (before the failing check).</summary>
        public IReadOnlyDictionary<string, long> Bindings { get; }
    }
}
