using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text;
using System.Threading;

namespace MlPitfalls.Runtime.Shapes
{
    /// <summary>Where a dimension name got its value: the tensor expression, axis and call site of the check that bound it.</summary>
    public readonly struct DimBinding
    {
        internal DimBinding(long value, string? source, int axis, string? file, int line)
        {
            Value = value;
            Source = source;
            Axis = axis;
            File = file;
            Line = line;
        }

        /// <summary>The bound size.</summary>
        public long Value { get; }

        /// <summary>The expression of the tensor that bound it (from <c>CallerArgumentExpression</c>), or null for <see cref="ShapeScope.Bind"/>.</summary>
        public string? Source { get; }

        /// <summary>The axis of that tensor, or -1 when bound explicitly (-2 for a size given to a module contract).</summary>
        public int Axis { get; }

        internal const int ContractSize = -2;

        /// <summary>Source file of the check that bound it.</summary>
        public string? File { get; }

        /// <summary>Line of the check that bound it.</summary>
        public int Line { get; }

        /// <summary>
        /// How the size was bound, phrased to follow "bound": <c>by 'x' dim 0 at Train.cs:42</c>, or
        /// <c>explicitly with ShapeScope.Bind at Train.cs:40</c>.
        /// </summary>
        public string Describe()
        {
            var where = File is null ? "" : $" at {Path.GetFileName(File)}:{Line}";
            return Axis == ContractSize ? $"by the sizes given to ExpectContract{where}"
                : Source is null ? $"explicitly with ShapeScope.Bind{where}"
                : $"by '{Source}' dim {Axis}{where}";
        }
    }

    /// <summary>
    /// Holds dimension bindings (<c>batch = 64</c>) shared by every shape check made against it, like a jaxtyping memo.
    /// Use an explicit instance (<c>var dims = new ShapeScope(); x.ExpectShape("batch 784", dims);</c>) or an ambient one
    /// (<c>using var dims = ShapeScope.Begin();</c>, after which checks without a scope argument use it).
    /// </summary>
    /// <remarks>A scope is not thread-safe; the ambient scope flows with the async context.</remarks>
    public sealed class ShapeScope : IDisposable
    {
        private static readonly AsyncLocal<ShapeScope?> Ambient = new();

        [ThreadStatic] private static ShapeScope? t_scratch;

        private readonly Dictionary<string, DimBinding> _bindings = new(StringComparer.Ordinal);
        private readonly ShapeScope? _previous;
        private readonly bool _isAmbient;
        private bool _disposed;

        /// <summary>Creates an explicit scope with no bindings. It does not become the ambient scope.</summary>
        public ShapeScope()
        {
        }

        private ShapeScope(ShapeScope? previous)
        {
            _previous = previous;
            _isAmbient = true;
        }

        /// <summary>The ambient scope opened by <see cref="Begin"/>, or null.</summary>
        public static ShapeScope? Current => Ambient.Value;

        /// <summary>Opens an ambient scope; checks without an explicit scope bind into it until it is disposed.</summary>
        public static ShapeScope Begin()
        {
            var scope = new ShapeScope(Ambient.Value);
            Ambient.Value = scope;
            return scope;
        }

        /// <summary>The current bindings with where each was bound.</summary>
        public IReadOnlyDictionary<string, DimBinding> Bindings => _bindings;

        /// <summary>The size bound to <paramref name="name"/>.</summary>
        /// <exception cref="KeyNotFoundException">The name is not bound; the message lists the bound names.</exception>
        public long this[string name] =>
            _bindings.TryGetValue(name, out var b)
                ? b.Value
                : throw new KeyNotFoundException($"Dimension '{name}' is not bound in this shape scope. Bound: {(_bindings.Count == 0 ? "(none)" : string.Join(", ", _bindings.Keys))}.");

        /// <summary>Tries to get the size bound to <paramref name="name"/>.</summary>
        public bool TryGet(string name, out long value)
        {
            if (_bindings.TryGetValue(name, out var b))
            {
                value = b.Value;
                return true;
            }
            value = 0;
            return false;
        }

        /// <summary>Binds a name explicitly (for sizes known from configuration, e.g. the number of classes).</summary>
        /// <exception cref="ArgumentException">The name is not a dimension name, or is already bound to a different value.</exception>
        /// <exception cref="ArgumentOutOfRangeException">The value is negative.</exception>
        public ShapeScope Bind(string name, long value, [System.Runtime.CompilerServices.CallerFilePath] string file = "", [System.Runtime.CompilerServices.CallerLineNumber] int line = 0)
        {
            // A binding no spec can refer to ("heads*dim", "_") would be silently ignored by every check.
            if (name is null || name == "_" || !ShapeSpec.IsName(name))
            {
                throw new ArgumentException($"{(name is null ? "null" : $"'{name}'")} is not a dimension name: bind a single name such as 'heads' (letters, digits, '_'; not '_' alone). " +
                                            "Products and quotients like 'heads*dim' are solved from their names, so bind the names.", nameof(name));
            }
            if (value < 0) throw new ArgumentOutOfRangeException(nameof(value), value, $"Dimension '{name}' cannot be bound to a negative size.");
            if (_bindings.TryGetValue(name, out var existing) && existing.Value != value)
            {
                throw new ArgumentException($"Dimension '{name}' is already bound to {existing.Value} (bound {existing.Describe()}); cannot bind it to {value}.", nameof(name));
            }
            _bindings[name] = new DimBinding(value, null, -1, file, line);
            return this;
        }

        /// <summary>Removes every binding.</summary>
        public void Clear() => _bindings.Clear();

        /// <summary>Lists the bindings, one per line, with where each was bound.</summary>
        public override string ToString() => Format(_bindings);

        /// <summary>Closes the scope; for an ambient scope the previous ambient scope becomes current again.</summary>
        public void Dispose()
        {
            if (_disposed) return;
            _disposed = true;
            if (_isAmbient && ReferenceEquals(Ambient.Value, this)) Ambient.Value = _previous;
        }

        internal bool TryGetBinding(string name, out DimBinding binding) => _bindings.TryGetValue(name, out binding);

        internal void SetBinding(string name, DimBinding binding) => _bindings[name] = binding;

        internal void RemoveBinding(string name) => _bindings.Remove(name);

        internal IReadOnlyDictionary<string, long> Snapshot() => _bindings.ToDictionary(kv => kv.Key, kv => kv.Value.Value, StringComparer.Ordinal);

        /// <summary>A per-thread scope used when a check has neither an explicit nor an ambient scope; cleared around each check.</summary>
        internal static ShapeScope Scratch => t_scratch ??= new ShapeScope();

        internal static string Format(IReadOnlyDictionary<string, DimBinding> bindings)
        {
            if (bindings.Count == 0) return "  (no bindings)";
            int width = bindings.Keys.Max(k => k.Length);
            var sb = new StringBuilder();
            foreach (var kv in bindings.OrderBy(k => k.Key, StringComparer.Ordinal))
            {
                if (sb.Length > 0) sb.AppendLine();
                sb.Append("  ").Append(kv.Key.PadRight(width)).Append(" = ").Append(kv.Value.Value).Append("  (bound ").Append(kv.Value.Describe()).Append(')');
            }
            return sb.ToString();
        }
    }
}
