using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Linq;
using System.Runtime.CompilerServices;
using System.Threading;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using Microsoft.CodeAnalysis.FlowAnalysis;
using Microsoft.CodeAnalysis.Operations;
using MlPitfalls.Analyzers.Analyses.Composition;

namespace MlPitfalls.Analyzers.Infrastructure;

/// <summary>
/// The analysis core's per-compilation caches, shared by every analyzer (one <see cref="ConditionalWeakTable{TKey,TValue}"/>
/// entry per compilation, like <see cref="TorchSymbols"/>): source method bodies with the bound root a graph is built
/// from, their control-flow graphs, memoised method summaries for each analysis, and the module-composition model.
/// Everything is computed lazily on first request and is safe to call from concurrent analyzer callbacks; two threads
/// racing for the same entry may both compute it, and one result wins (cheaper than locks that could deadlock when two
/// summaries need each other).
/// </summary>
internal sealed class AnalysisServices
{
    /// <summary>How many summaries may be under computation at once on one thread (helper calling helper ...).</summary>
    internal const int MaxSummaryDepth = 6;

    /// <summary>Bodies with more basic blocks than this get an unknown summary: generated or pathological code.</summary>
    internal const int MaxSummaryBlocks = 4000;

    private static readonly ConditionalWeakTable<Compilation, AnalysisServices> Cache = new();

    [ThreadStatic]
    private static List<SummaryFrame>? t_inProgress;

    private readonly ConcurrentDictionary<SyntaxTree, SemanticModel> _models = new();
    private readonly ConcurrentDictionary<SyntaxTree, string> _treeTexts = new();
    // Whether a tree's text could spell a name another way (see TokensNaming), found once per tree.
    private readonly ConcurrentDictionary<SyntaxTree, bool> _spelledOtherwise = new();
    private readonly ConcurrentDictionary<IMethodSymbol, ControlFlowGraph?> _graphs = new(SymbolEqualityComparer.Default);
    // Each summary is cached with its height: how many summaries deep its computation went. Read from a depth where that
    // height would cross the cap, it counts as cut, exactly as if it were computed there, so that what a rule sees never
    // depends on which summaries happened to be computed first.
    private readonly ConcurrentDictionary<(string Analysis, IMethodSymbol Method), (object? Summary, int Height)> _summaries = new(SummaryKeyComparer.Instance);

    private AnalysisServices(Compilation compilation, TorchSymbols torch)
    {
        Compilation = compilation;
        Torch = torch;
        Modules = new ModuleComposition(this);
        CallSites = new CallSiteArguments(this);
    }

    public Compilation Compilation { get; }

    public TorchSymbols Torch { get; }

    /// <summary>What module-typed expressions and fields are: created type, <c>Sequential</c> children, <c>forward</c>.</summary>
    public ModuleComposition Modules { get; }

    /// <summary>What a <c>bool</c> parameter is at every call the compilation shows (<c>bias = true</c>, never passed).</summary>
    public CallSiteArguments CallSites { get; }

    /// <summary>
    /// What the text of <paramref name="code"/> (a member's declaration, a loop) calls, names and runs, read once for every
    /// name gate that asks.
    /// </summary>
    public CallText CallTextOf(SyntaxNode code, CancellationToken cancellationToken)
        => _callTexts.TryGetValue(code, out var text) ? text : _callTexts.GetOrAdd(code, CallText.Read(code, cancellationToken));

    private readonly ConcurrentDictionary<SyntaxNode, CallText> _callTexts = new();

    /// <summary>The compilation's source members by name, from their declarations (made on first use).</summary>
    public SourceMemberNames MemberNames(CancellationToken cancellationToken)
    {
        // Two threads racing may both build it; one wins, as for every cache here.
        var names = Volatile.Read(ref _memberNames);
        if (names is null)
        {
            names = new SourceMemberNames(Compilation, cancellationToken);
            names = Interlocked.CompareExchange(ref _memberNames, names, null) ?? names;
        }

        return names;
    }

    private SourceMemberNames? _memberNames;

    /// <summary>The services of <paramref name="compilation"/>, or null when it does not reference TorchSharp.</summary>
    public static AnalysisServices? For(Compilation compilation)
        => TorchSymbols.For(compilation) is { } torch ? Cache.GetValue(compilation, c => new AnalysisServices(c, torch)) : null;

    /// <summary>The text of <paramref name="tree"/> as one string, made once per tree, for the text searches that spare syntax walks.</summary>
    public string TextOf(SyntaxTree tree, CancellationToken cancellationToken)
        => _treeTexts.GetOrAdd(tree, t => t.GetText(cancellationToken).ToString());

    /// <summary>
    /// The identifier and keyword tokens inside <paramref name="scope"/> whose value is <paramref name="name"/> (<c>@name</c>
    /// included; string and character literals are not names), found from where the name occurs in the tree's text: a
    /// search and a token lookup per occurrence instead of a walk over every node. A tree whose text could spell the name
    /// another way (a Unicode escape, or a formatting character, which C# drops from identifiers) has its scope's tokens
    /// walked instead. Occurrences in comments, strings and longer names are skipped.
    /// </summary>
    public List<SyntaxToken> TokensNaming(SyntaxNode scope, string name, CancellationToken cancellationToken)
    {
        var found = new List<SyntaxToken>();
        if (name.Length == 0)
        {
            return found;
        }

        var text = TextOf(scope.SyntaxTree, cancellationToken);
        int start = scope.SpanStart, end = scope.Span.End;
        if (_spelledOtherwise.GetOrAdd(scope.SyntaxTree, _ => MaySpellNamesOtherwise(text, 0, text.Length))
            && MaySpellNamesOtherwise(text, start, end))
        {
            foreach (var token in scope.DescendantTokens())
            {
                cancellationToken.ThrowIfCancellationRequested();
                if (IsName(token, name))
                {
                    found.Add(token);
                }
            }

            return found;
        }

        for (var at = text.IndexOf(name, start, end - start, StringComparison.Ordinal); at >= 0;
             at = at + name.Length < end ? text.IndexOf(name, at + name.Length, end - at - name.Length, StringComparison.Ordinal) : -1)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var token = scope.FindToken(at);
            if (token.Span.Contains(at) && IsName(token, name) && (found.Count == 0 || found[found.Count - 1] != token))
            {
                found.Add(token);
            }
        }

        return found;
    }

    private static bool IsName(SyntaxToken token, string name)
        => token.ValueText == name && (token.IsKind(SyntaxKind.IdentifierToken) || SyntaxFacts.IsKeywordKind(token.Kind()));

    /// <summary>True when the text between <paramref name="start"/> and <paramref name="end"/> has a <c>\u</c> escape or a formatting character (Unicode category Cf).</summary>
    private static bool MaySpellNamesOtherwise(string text, int start, int end)
    {
        if (text.IndexOf("\\u", start, end - start, StringComparison.OrdinalIgnoreCase) >= 0)
        {
            return true;
        }

        for (var i = start; i < end; i++)
        {
            if (IsFormatCharacter(text[i]))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>A formatting character (Unicode category Cf), which C# drops from a name: classified as the compiler does, by <see cref="System.Globalization.CharUnicodeInfo"/>.</summary>
    internal static bool IsFormatCharacter(char c)
        => c > 0x7F && System.Globalization.CharUnicodeInfo.GetUnicodeCategory(c) == System.Globalization.UnicodeCategory.Format;

    /// <summary>
    /// True when <paramref name="text"/> occurs in the source of <paramref name="type"/> (every part of it): a filter that
    /// lets a rule skip, before any binding, a class that cannot contain what it looks for.
    /// </summary>
    public bool MentionsInItsText(INamedTypeSymbol type, string text, CancellationToken cancellationToken)
    {
        foreach (var reference in type.DeclaringSyntaxReferences)
        {
            var source = TextOf(reference.SyntaxTree, cancellationToken);
            if (source.IndexOf(text, reference.Span.Start, reference.Span.Length, StringComparison.Ordinal) >= 0)
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>Counts how many method bodies were analysed for a summary (tests check that each is analysed once).</summary>
    internal int SummariesComputed;

    /// <summary>
    /// The control-flow graph of a source method's body (method, constructor, accessor, operator), built once per
    /// compilation; null for metadata, abstract, extern and partial-without-body methods and for local functions (those
    /// live inside their container's graph).
    /// </summary>
    public ControlFlowGraph? GetGraph(IMethodSymbol method, CancellationToken cancellationToken)
    {
        var definition = SourceMethodBodies.DefinitionWithBody(method);
        if (_graphs.TryGetValue(definition, out var cached))
        {
            return cached;
        }

        var graph = BuildGraph(definition, cancellationToken);
        return _graphs.GetOrAdd(definition, graph);
    }

    /// <summary>
    /// True when every declaration of <paramref name="symbol"/> is in this compilation's trees (and it has one): its
    /// code can be bound here. A symbol of a referenced compilation (a project reference in the IDE) has declarations
    /// that cannot.
    /// </summary>
    public bool DeclaredHere(ISymbol symbol)
        => !symbol.DeclaringSyntaxReferences.IsEmpty && symbol.DeclaringSyntaxReferences.All(r => Compilation.ContainsSyntaxTree(r.SyntaxTree));

    /// <summary>
    /// The semantic model for <paramref name="tree"/> (bodies in other files are bound through it, once, for caches); null
    /// for a tree of another compilation: in the IDE a project reference is a compilation, and its symbols' declarations
    /// point into trees this compilation cannot bind (asking for them throws). Their code is read as a library's.
    /// </summary>
    public SemanticModel? SemanticModel(SyntaxTree tree)
#pragma warning disable RS1030 // Following a call into another file needs that file's semantic model; what is bound through it is cached.
        => Compilation.ContainsSyntaxTree(tree) ? _models.GetOrAdd(tree, t => Compilation.GetSemanticModel(t)) : null;
#pragma warning restore RS1030

    /// <summary>
    /// The memoised summary <paramref name="analysis"/> computes for <paramref name="method"/>'s body. Returns
    /// <paramref name="unknown"/> (not cached) for a method with no graph, a body too large, a call chain deeper than
    /// <see cref="MaxSummaryDepth"/>, or recursion back into a summary being computed; a summary that saw such a cut
    /// is returned but not cached, so what is cached never depends on the order in which rules asked.
    /// <paramref name="withoutGraph"/>, when given, is tried first on the bound body: an analysis that can read the
    /// summary off the operation tree (a body whose returns need no flow) spares the graph and the fixed point, and
    /// returns false to have <paramref name="compute"/> run on the graph instead.
    /// </summary>
    public TSummary GetSummary<TSummary>(
        string analysis, IMethodSymbol method, Func<ControlFlowGraph, CancellationToken, TSummary> compute, TSummary unknown, CancellationToken cancellationToken)
        => GetSummary(analysis, method, withoutGraph: null, compute, unknown, cancellationToken);

    /// <inheritdoc cref="GetSummary{TSummary}(string, IMethodSymbol, Func{ControlFlowGraph, CancellationToken, TSummary}, TSummary, CancellationToken)"/>
    public TSummary GetSummary<TSummary>(
        string analysis,
        IMethodSymbol method,
        SummaryWithoutGraph<TSummary>? withoutGraph,
        Func<ControlFlowGraph, CancellationToken, TSummary> compute,
        TSummary unknown,
        CancellationToken cancellationToken)
    {
        var definition = SourceMethodBodies.DefinitionWithBody(method);
        var key = (analysis, definition);
        var frames = t_inProgress ??= new List<SummaryFrame>();
        if (_summaries.TryGetValue(key, out var cached))
        {
            if (frames.Count + cached.Height > MaxSummaryDepth)
            {
                MarkAllIncomplete(frames);
                return unknown;
            }

            NoteHeight(frames, cached.Height);
            return (TSummary)cached.Summary!;
        }

        foreach (var frame in frames)
        {
            if (frame.Analysis == analysis && SymbolEqualityComparer.Default.Equals(frame.Method, definition))
            {
                MarkAllIncomplete(frames);
                return unknown; // recursion
            }
        }

        if (frames.Count >= MaxSummaryDepth)
        {
            MarkAllIncomplete(frames);
            return unknown;
        }

        var body = withoutGraph is null ? null : GetBody(definition, cancellationToken);
        var graph = body is null ? GetGraph(definition, cancellationToken) : null;
        if (body is null && (graph is null || graph.Blocks.Length > MaxSummaryBlocks))
        {
            _summaries.TryAdd(key, (unknown, 0));
            return unknown;
        }

        var current = new SummaryFrame(analysis, definition);
        frames.Add(current);
        TSummary summary;
        var computed = true;
        try
        {
            Interlocked.Increment(ref SummariesComputed);
            if (body is null || !withoutGraph!(body, cancellationToken, out summary))
            {
                graph ??= GetGraph(definition, cancellationToken);
                computed = graph is not null && graph.Blocks.Length <= MaxSummaryBlocks;
                summary = computed ? compute(graph!, cancellationToken) : unknown;
            }
        }
        finally
        {
            frames.RemoveAt(frames.Count - 1);
        }

        if (!computed)
        {
            _summaries.TryAdd(key, (unknown, 0));
            return unknown;
        }

        var height = current.HeightBelow + 1;
        NoteHeight(frames, height);
        if (!current.Incomplete)
        {
            _summaries.TryAdd(key, (summary, height));
        }

        return summary;
    }

    /// <summary>The frame computing now needed a summary of this height below it.</summary>
    private static void NoteHeight(List<SummaryFrame> frames, int height)
    {
        if (frames.Count > 0 && frames[frames.Count - 1].HeightBelow < height)
        {
            frames[frames.Count - 1].HeightBelow = height;
        }
    }

    private static void MarkAllIncomplete(List<SummaryFrame> frames)
    {
        foreach (var frame in frames)
        {
            frame.Incomplete = true;
        }
    }

    /// <summary>
    /// The bound body of a source method (method, constructor or accessor body) that its graph is, or would be, built
    /// from, without building the graph; null when it has none the compiler can see (see <see cref="GetGraph"/>).
    /// </summary>
    public IOperation? GetBody(IMethodSymbol method, CancellationToken cancellationToken)
    {
        method = SourceMethodBodies.DefinitionWithBody(method);
        if (method.MethodKind == MethodKind.LocalFunction || method.IsAbstract || method.IsExtern || method.DeclaringSyntaxReferences.Length == 0)
        {
            return null;
        }

        if (_graphs.TryGetValue(method, out var graph))
        {
            return graph?.OriginalOperation;
        }

        var syntax = method.DeclaringSyntaxReferences[0].GetSyntax(cancellationToken);
        if (syntax is not (BaseMethodDeclarationSyntax or AccessorDeclarationSyntax or ArrowExpressionClauseSyntax))
        {
            return null;
        }

        return SemanticModel(syntax.SyntaxTree)?.GetOperation(syntax, cancellationToken) switch
        {
            IMethodBodyOperation body => body,
            IConstructorBodyOperation body => body,
            IBlockOperation { Parent: null } block => block,
            _ => null,
        };
    }

    private ControlFlowGraph? BuildGraph(IMethodSymbol method, CancellationToken cancellationToken)
        => GetBody(method, cancellationToken) switch
        {
            IMethodBodyOperation body => ControlFlowGraph.Create(body, cancellationToken),
            IConstructorBodyOperation body => ControlFlowGraph.Create(body, cancellationToken),
            IBlockOperation block => ControlFlowGraph.Create(block, cancellationToken),
            _ => null,
        };

    private sealed class SummaryFrame
    {
        public SummaryFrame(string analysis, IMethodSymbol method)
        {
            Analysis = analysis;
            Method = method;
        }

        public string Analysis { get; }

        public IMethodSymbol Method { get; }

        public bool Incomplete { get; set; }

        /// <summary>The height of the tallest summary this one used (0 when it used none).</summary>
        public int HeightBelow { get; set; }
    }

    private sealed class SummaryKeyComparer : IEqualityComparer<(string Analysis, IMethodSymbol Method)>
    {
        public static readonly SummaryKeyComparer Instance = new();

        public bool Equals((string Analysis, IMethodSymbol Method) x, (string Analysis, IMethodSymbol Method) y)
            => x.Analysis == y.Analysis && SymbolEqualityComparer.Default.Equals(x.Method, y.Method);

        public int GetHashCode((string Analysis, IMethodSymbol Method) obj)
            => unchecked((obj.Analysis.GetHashCode() * 397) ^ SymbolEqualityComparer.Default.GetHashCode(obj.Method));
    }
}

/// <summary>
/// A summary read off a bound body without its graph (see <see cref="AnalysisServices.GetSummary{TSummary}(string, IMethodSymbol, SummaryWithoutGraph{TSummary}, System.Func{ControlFlowGraph, CancellationToken, TSummary}, TSummary, CancellationToken)"/>);
/// false when the body needs the dataflow.
/// </summary>
internal delegate bool SummaryWithoutGraph<TSummary>(IOperation body, CancellationToken cancellationToken, out TSummary summary);
