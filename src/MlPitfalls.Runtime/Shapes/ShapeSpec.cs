using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Globalization;
using System.Text.RegularExpressions;

namespace MlPitfalls.Runtime.Shapes
{
    /// <summary>
    /// A parsed shape specification such as <c>"batch 1 28 28"</c>, <c>"batch ... heads*dim"</c> or <c>"_ seq dim/heads"</c>.
    /// </summary>
    /// <remarks>
    /// Grammar (dimensions separated by spaces):
    /// <list type="bullet">
    /// <item><description>a name (<c>batch</c>): bound to the size the first time it is seen in a scope, checked afterwards;</description></item>
    /// <item><description>an integer (<c>28</c>): that exact size;</description></item>
    /// <item><description><c>_</c>: any single dimension;</description></item>
    /// <item><description><c>...</c>: any number of dimensions (at most once per spec);</description></item>
    /// <item><description>a product or quotient of names and integers (<c>heads*dim</c>, <c>dim/heads</c>, <c>2*hidden</c>): checked when its
    /// names are bound; when exactly one name is unbound it is solved for (a quotient must divide exactly).</description></item>
    /// </list>
    /// Specs are parsed once and cached (up to 1024 distinct specs), so passing the same string literal again costs a dictionary lookup.
    /// </remarks>
    public sealed class ShapeSpec
    {
        /// <summary>Specs built at run time (<c>$"batch {n}"</c>) would otherwise grow the cache without bound in a long-running process.</summary>
        internal const int MaxCachedSpecs = 1024;

        private static readonly ConcurrentDictionary<string, ShapeSpec> Cache = new(StringComparer.Ordinal);
        private static readonly Regex OperatorSpacing = new(@"\s*([*/])\s*", RegexOptions.CultureInvariant);

        internal readonly DimTerm[] Terms;
        internal readonly int EllipsisIndex;

        /// <summary>The spec text as written.</summary>
        public string Text { get; }

        /// <summary>Number of dimensions the spec describes, not counting <c>...</c>.</summary>
        public int FixedRank => EllipsisIndex < 0 ? Terms.Length : Terms.Length - 1;

        /// <summary>True when the spec contains <c>...</c>.</summary>
        public bool HasEllipsis => EllipsisIndex >= 0;

        private ShapeSpec(string text, DimTerm[] terms, int ellipsisIndex)
        {
            Text = text;
            Terms = terms;
            EllipsisIndex = ellipsisIndex;
        }

        /// <summary>Parses (or returns the cached parse of) a spec.</summary>
        /// <exception cref="FormatException">The spec is not valid; the message says which token and why.</exception>
        public static ShapeSpec Parse(string spec)
        {
            if (spec is null) throw new ArgumentNullException(nameof(spec));
            if (Cache.TryGetValue(spec, out var cached)) return cached;
            var parsed = ParseUncached(spec);
            return Cache.Count < MaxCachedSpecs ? Cache.GetOrAdd(spec, parsed) : parsed;
        }

        internal static int CachedCount => Cache.Count;

        /// <inheritdoc />
        public override string ToString() => Text;

        private static ShapeSpec ParseUncached(string text)
        {
            var normalized = OperatorSpacing.Replace(text.Trim(), "$1");
            var tokens = normalized.Length == 0 ? Array.Empty<string>() : normalized.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
            var terms = new DimTerm[tokens.Length];
            int ellipsis = -1;
            for (int i = 0; i < tokens.Length; i++)
            {
                var token = tokens[i];
                if (token == "...")
                {
                    if (ellipsis >= 0) throw new FormatException($"Shape spec \"{text}\" uses '...' twice; at most one '...' is allowed because the split between them would be ambiguous.");
                    ellipsis = i;
                    terms[i] = DimTerm.Ellipsis;
                }
                else
                {
                    terms[i] = ParseTerm(token, text);
                }
            }
            return new ShapeSpec(text, terms, ellipsis);
        }

        private static DimTerm ParseTerm(string token, string text)
        {
            if (token == "_") return DimTerm.Any;
            if (token.IndexOf('*') < 0 && token.IndexOf('/') < 0)
            {
                if (TryParseInt(token, out long value)) return DimTerm.Fixed(value, token);
                if (IsName(token)) return DimTerm.Named(token);
                throw Bad(token, text);
            }

            var factors = new List<Factor>();
            int start = 0;
            bool divide = false;
            for (int i = 0; i <= token.Length; i++)
            {
                if (i < token.Length && token[i] != '*' && token[i] != '/') continue;
                var part = token.Substring(start, i - start);
                if (part.Length == 0) throw Bad(token, text);
                if (TryParseInt(part, out long v))
                {
                    if (v == 0 && divide) throw new FormatException($"Shape spec \"{text}\": '{token}' divides by zero.");
                    factors.Add(new Factor(null, v, divide));
                }
                else if (IsName(part) && part != "_")
                {
                    factors.Add(new Factor(part, 0, divide));
                }
                else
                {
                    throw Bad(token, text);
                }
                if (i < token.Length) divide = token[i] == '/';
                start = i + 1;
            }
            return DimTerm.Expression(token, factors.ToArray());
        }

        private static FormatException Bad(string token, string text) =>
            new($"Shape spec \"{text}\": '{token}' is not a dimension. Use a name (batch), an integer (28), '_' (any one), '...' (any number), or a product/quotient of names and integers (heads*dim, dim/heads).");

        private static bool TryParseInt(string s, out long value) =>
            long.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out value);

        internal static bool IsName(string s)
        {
            if (s.Length == 0 || !(char.IsLetter(s[0]) || s[0] == '_')) return false;
            foreach (var c in s)
            {
                if (!(char.IsLetterOrDigit(c) || c == '_')) return false;
            }
            return true;
        }
    }

    internal enum DimKind
    {
        Fixed,
        Any,
        Ellipsis,
        Name,
        Expression,
    }

    internal readonly struct Factor
    {
        public readonly string? Name;
        public readonly long Constant;
        public readonly bool Divide;

        public Factor(string? name, long constant, bool divide)
        {
            Name = name;
            Constant = constant;
            Divide = divide;
        }
    }

    internal sealed class DimTerm
    {
        public static readonly DimTerm Any = new(DimKind.Any, "_", 0, null, null);
        public static readonly DimTerm Ellipsis = new(DimKind.Ellipsis, "...", 0, null, null);

        public readonly DimKind Kind;
        public readonly string Text;
        public readonly long Value;
        public readonly string? Name;
        public readonly Factor[]? Factors;

        private DimTerm(DimKind kind, string text, long value, string? name, Factor[]? factors)
        {
            Kind = kind;
            Text = text;
            Value = value;
            Name = name;
            Factors = factors;
        }

        public static DimTerm Fixed(long value, string text) => new(DimKind.Fixed, text, value, null, null);

        public static DimTerm Named(string name) => new(DimKind.Name, name, 0, name, null);

        public static DimTerm Expression(string text, Factor[] factors) => new(DimKind.Expression, text, 0, null, factors);
    }
}
