using System;
using System.Collections.Generic;
using System.Linq;
using System.Text;
using MlPitfalls.Runtime.Internal;

namespace MlPitfalls.Runtime.NonFinite
{
    /// <summary>Where a non-finite value was found.</summary>
    public enum NonFiniteKind
    {
        /// <summary>The output of a module in the forward pass.</summary>
        ModuleOutput,

        /// <summary>The input given to the root module.</summary>
        ModelInput,

        /// <summary>Gradients of parameters after backward().</summary>
        Gradient,

        /// <summary>A tensor checked explicitly (a loss or a metric).</summary>
        Tensor,

        /// <summary>An autograd function in backward() (anomaly detection).</summary>
        Backward,
    }

    /// <summary>A parameter whose gradient holds NaN or Inf.</summary>
    public sealed class NonFiniteGradient
    {
        internal NonFiniteGradient(string name, long[] shape, long nan, long posInf, long negInf, bool parameterNonFinite)
        {
            Name = name;
            Shape = shape;
            NaNCount = nan;
            PosInfCount = posInf;
            NegInfCount = negInf;
            ParameterIsNonFinite = parameterNonFinite;
        }

        /// <summary>The parameter's name from named_parameters(), e.g. <c>encoder.fc.weight</c>.</summary>
        public string Name { get; }

        /// <summary>The gradient's shape.</summary>
        public long[] Shape { get; }

        /// <summary>Number of NaN elements.</summary>
        public long NaNCount { get; }

        /// <summary>Number of +Inf elements.</summary>
        public long PosInfCount { get; }

        /// <summary>Number of -Inf elements.</summary>
        public long NegInfCount { get; }

        /// <summary>True when the parameter's own values are already non-finite.</summary>
        public bool ParameterIsNonFinite { get; }
    }

    /// <summary>One detection of NaN/Inf values, with everything needed to find where they came from.</summary>
    public sealed class NonFiniteEvent
    {
        internal NonFiniteEvent(NonFiniteKind kind, long step, string name, string typeName, long[] shape, string dtype, long nan, long posInf, long negInf,
            bool inputWasNonFinite, string? lastFiniteModule, IReadOnlyList<string> nonFiniteParameters, IReadOnlyList<NonFiniteGradient> gradients, string message)
        {
            Kind = kind;
            Step = step;
            Name = name;
            TypeName = typeName;
            Shape = shape;
            DType = dtype;
            NaNCount = nan;
            PosInfCount = posInf;
            NegInfCount = negInf;
            InputWasNonFinite = inputWasNonFinite;
            LastFiniteModule = lastFiniteModule;
            NonFiniteParameters = nonFiniteParameters;
            Gradients = gradients;
            Message = message;
        }

        /// <summary>What was checked.</summary>
        public NonFiniteKind Kind { get; }

        /// <summary>The guard's step number (1-based) when it was found.</summary>
        public long Step { get; }

        /// <summary>The module path (<c>encoder.block2.bn</c>; <c>&lt;root Net&gt;</c> for the model itself) or the tensor's name.</summary>
        public string Name { get; }

        /// <summary>The module's type name, or <c>Tensor</c>.</summary>
        public string TypeName { get; }

        /// <summary>The shape of the non-finite tensor.</summary>
        public long[] Shape { get; }

        /// <summary>Its dtype.</summary>
        public string DType { get; }

        /// <summary>Number of NaN elements.</summary>
        public long NaNCount { get; }

        /// <summary>Number of +Inf elements.</summary>
        public long PosInfCount { get; }

        /// <summary>Number of -Inf elements.</summary>
        public long NegInfCount { get; }

        /// <summary>True when the module's input was already non-finite: the values were born before this module.</summary>
        public bool InputWasNonFinite { get; }

        /// <summary>The last module whose output was checked and finite earlier in the same forward pass, if any.</summary>
        public string? LastFiniteModule { get; }

        /// <summary>The module's own parameters that already hold NaN/Inf (a bad earlier optimizer step).</summary>
        public IReadOnlyList<string> NonFiniteParameters { get; }

        /// <summary>For <see cref="NonFiniteKind.Gradient"/>: every parameter with a non-finite gradient.</summary>
        public IReadOnlyList<NonFiniteGradient> Gradients { get; }

        /// <summary>The full explanation (also the exception message in throw mode).</summary>
        public string Message { get; }

        /// <inheritdoc />
        public override string ToString() => Message;

        internal static string Counts(long nan, long pos, long neg, long[] shape)
        {
            long numel = shape.Aggregate(1L, (a, b) => a * b);
            return Finite.Describe((nan, pos, neg), numel);
        }

        internal static string Join(IEnumerable<string> lines)
        {
            var sb = new StringBuilder();
            foreach (var l in lines)
            {
                if (sb.Length > 0) sb.AppendLine();
                sb.Append(l);
            }
            return sb.ToString();
        }

        internal static string StepText(long step) => step > 0 ? FormattableString.Invariant($" at step {step}") : "";
    }

    /// <summary>NaN or Inf found by a <see cref="NonFiniteGuard"/> or <see cref="NonFiniteExtensions.AssertFinite"/>.</summary>
    public sealed class NonFiniteValueException : RuntimeCheckException
    {
        internal NonFiniteValueException(NonFiniteEvent e, Exception? inner = null) : base(e.Message, inner) => Event = e;

        /// <summary>The detection, with module path, counts, shape, dtype and step.</summary>
        public NonFiniteEvent Event { get; }
    }
}
