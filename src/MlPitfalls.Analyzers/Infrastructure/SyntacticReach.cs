using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Linq;
using System.Runtime.CompilerServices;
using System.Threading;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp.Syntax;

namespace MlPitfalls.Analyzers.Infrastructure;

/// <summary>
/// Whether a source method may reach something a question looks for (a mode switch, an optimizer step), read from
/// syntax alone, through the calls it makes. It answers before the method's body is bound, which is the cost the
/// driver charges to a rule that follows a helper: a model's parts, data loading and metrics are ruled out by their
/// text. A method may reach the thing when its text has a marker, or when it calls, or hands over as a method group, a
/// source method of the same name as one that may. Names stand for every overload and every type's method of that name,
/// so the answer errs towards "may"; a "may not" is certain, as far as calls go by name.
/// </summary>
internal sealed class SyntacticReach
{
    private readonly ConditionalWeakTable<AnalysisServices, ConcurrentDictionary<string, bool>> _byName = new();
    private readonly Func<CallText, bool> _isMarker;

    /// <param name="isMarker">True for code whose text reaches the thing by itself (names <c>step</c>, has a lambda).</param>
    /// <param name="unseenCodeReaches">
    /// True when code the syntax cannot follow counts as reaching: a virtual, abstract or interface method, a delegate
    /// field or property called, an <c>Invoke</c>. False when it counts as not reaching (the question ignores it). A call
    /// of a variable the code's member declares (<c>callback(x)</c>: a delegate, maybe a lambda of the member) always may.
    /// </param>
    /// <param name="sourceCreationsReach">True when creating an object of a source type with arguments reaches (its constructor may use them).</param>
    /// <param name="onlyVoidOverridablesAreUnseen">
    /// With <paramref name="unseenCodeReaches"/>: a virtual, abstract or interface method counts as unseen code only when it
    /// returns nothing (a hook a subclass fills in); one that returns a value (a module's <c>forward</c>) is read like any
    /// other method, by its own body. For a question whose analysis follows such a call into the method's own body.
    /// </param>
    /// <param name="overridablesAreReadByBody">
    /// A virtual or interface method with a body is read by that body, whatever it returns, and one without a body answers
    /// <paramref name="unseenCodeReaches"/>: for a question whose analysis reads such a call by the body it binds to, and
    /// for which an override elsewhere changes nothing (a step is where some text calls it).
    /// </param>
    public SyntacticReach(
        Func<CallText, bool> isMarker, bool unseenCodeReaches, bool sourceCreationsReach, bool onlyVoidOverridablesAreUnseen = false, bool overridablesAreReadByBody = false)
    {
        OverridablesAreReadByBody = overridablesAreReadByBody;
        _isMarker = isMarker;
        UnseenCodeReaches = unseenCodeReaches;
        SourceCreationsReach = sourceCreationsReach;
        OnlyVoidOverridablesAreUnseen = onlyVoidOverridablesAreUnseen;
    }

    private bool UnseenCodeReaches { get; }

    private bool OnlyVoidOverridablesAreUnseen { get; }

    private bool OverridablesAreReadByBody { get; }

    private bool SourceCreationsReach { get; }

    /// <summary>False when nothing <paramref name="method"/> can run reaches the thing; true when it may (or has no source).</summary>
    public bool MayReach(AnalysisServices services, IMethodSymbol method, CancellationToken cancellationToken)
    {
        var names = _byName.GetValue(services, static _ => new ConcurrentDictionary<string, bool>());
        return MayReach(services, method, names, new Search(), cancellationToken);
    }

    private readonly ConditionalWeakTable<AnalysisServices, ConcurrentDictionary<IMethodSymbol, bool>> _byMethod = new();

    /// <summary>
    /// Memoised per method, like <see cref="NameMayReach"/> per name, once the answer no longer rests on a name still
    /// being decided (see <see cref="Search"/>).
    /// </summary>
    private bool MayReach(AnalysisServices services, IMethodSymbol method, ConcurrentDictionary<string, bool> names, Search search, CancellationToken cancellationToken)
    {
        var byMethod = _byMethod.GetValue(services, static _ => new ConcurrentDictionary<IMethodSymbol, bool>(SymbolEqualityComparer.Default));
        if (byMethod.TryGetValue(method, out var known))
        {
            return known;
        }

        var start = search.Enter();
        var result = ComputeMayReach(services, method, names, search, cancellationToken);
        if (search.Leave(start, result))
        {
            byMethod.TryAdd(method, result);
        }

        return result;
    }

    private bool ComputeMayReach(AnalysisServices services, IMethodSymbol method, ConcurrentDictionary<string, bool> names, Search search, CancellationToken cancellationToken)
    {
        if (method.DeclaringSyntaxReferences.IsEmpty)
        {
            return true;
        }

        var inInterface = method.ContainingType?.TypeKind == TypeKind.Interface;
        if (ForOverridable(method.IsAbstract || method.IsVirtual || method.IsOverride || inInterface, method.IsAbstract || inInterface, method.ReturnsVoid, method.IsAbstract) is { } answer)
        {
            return answer;
        }

        // A local function or lambda asked about by its symbol sees the variables and local functions of its member.
        var declarations = method.DeclaringSyntaxReferences.Select(r => r.GetSyntax(cancellationToken)).ToList();
        return CodeMayReach(services, declarations, declarations.Select(ScopeOf).Distinct().ToList(), names, search, cancellationToken);
    }

    private readonly ConditionalWeakTable<AnalysisServices, ConcurrentDictionary<SyntaxNode, bool>> _byDeclaration = new();

    /// <summary>What a source method named in a call may reach, from its declaration (memoised per declaration, see <see cref="MayReach(AnalysisServices, IMethodSymbol, ConcurrentDictionary{string, bool}, Search, CancellationToken)"/>).</summary>
    private bool MayReach(AnalysisServices services, SourceMember member, ConcurrentDictionary<string, bool> names, Search search, CancellationToken cancellationToken)
    {
        var declaration = member.Method!;
        var byDeclaration = _byDeclaration.GetValue(services, static _ => new ConcurrentDictionary<SyntaxNode, bool>());
        if (byDeclaration.TryGetValue(declaration, out var known))
        {
            return known;
        }

        var start = search.Enter();
        var result = ForOverridable(member.IsOverridable, member.IsAbstractOrInInterface, member.ReturnsVoid, declaration.Body is null && declaration.ExpressionBody is null)
                     ?? CodeMayReach(services, new[] { declaration }, new[] { declaration }, names, search, cancellationToken);
        if (search.Leave(start, result))
        {
            byDeclaration.TryAdd(declaration, result);
        }

        return result;
    }

    /// <summary>
    /// The answer for a method whose call may run another body (an override elsewhere), or null when its own body
    /// decides: with <see cref="OnlyVoidOverridablesAreUnseen"/>, a virtual method that returns a value is read by its body.
    /// </summary>
    private bool? ForOverridable(bool isOverridable, bool isAbstractOrInInterface, bool returnsVoid, bool hasNoBody)
    {
        if (OverridablesAreReadByBody)
        {
            return isOverridable && hasNoBody ? UnseenCodeReaches : null;
        }

        return isOverridable && (!OnlyVoidOverridablesAreUnseen || returnsVoid || isAbstractOrInInterface)
            ? UnseenCodeReaches && (!OnlyVoidOverridablesAreUnseen || returnsVoid)
            : null;
    }

    /// <summary>
    /// False when nothing <paramref name="code"/> (a statement, a loop) runs can reach the thing, through the source
    /// methods it calls; true when it may. Not memoised for the code itself (its callees' answers are).
    /// </summary>
    public bool MayReach(AnalysisServices services, SyntaxNode code, CancellationToken cancellationToken)
    {
        var names = _byName.GetValue(services, static _ => new ConcurrentDictionary<string, bool>());
        return CodeMayReach(services, new[] { code }, new[] { ScopeOf(code) }, names, new Search(), cancellationToken);
    }

    /// <summary>
    /// Where the variables and local functions code may call are declared: its member. Top-level statements are one body
    /// (a global statement is not a member of its own).
    /// </summary>
    private static SyntaxNode ScopeOf(SyntaxNode code)
        => code.AncestorsAndSelf().FirstOrDefault(n => n is MemberDeclarationSyntax and not GlobalStatementSyntax or CompilationUnitSyntax) ?? code;

    /// <param name="scopes">Where the variables <paramref name="code"/> may call are declared: its member (a lambda held in a local before a loop).</param>
    private bool CodeMayReach(
        AnalysisServices services, IReadOnlyList<SyntaxNode> code, IEnumerable<SyntaxNode> scopes, ConcurrentDictionary<string, bool> names, Search search,
        CancellationToken cancellationToken)
    {
        var text = code.Count == 1 ? services.CallTextOf(code[0], cancellationToken) : CallText.Union(code.Select(c => services.CallTextOf(c, cancellationToken)).ToList());
        if (_isMarker(text) || (UnseenCodeReaches && text.Called.Contains("Invoke")) || (SourceCreationsReach && text.CreatesUnnamedWithArguments))
        {
            return true;
        }

        // callback(x) on a delegate local or parameter may run anything: a lambda of the member, or code no text shows; a
        // local function is read by its body. A simple call that names neither a variable, a local function nor a source
        // method is a library's (using static TorchSharp.torch: cat(...), randperm(...)).
        if (text.SimplyCalled.Count > 0 && SimpleCallMayReach(services, scopes, text.SimplyCalled, names, search, cancellationToken))
        {
            return true;
        }

        if (SourceCreationsReach && text.CreatedWithArguments.Any(type => services.Compilation.GetSymbolsWithName(type, SymbolFilter.Type, cancellationToken).Any()))
        {
            return true;
        }

        foreach (var name in text.Called)
        {
            if (NameMayReach(services, name, text.SimplyCalled.Contains(name) ? Use.SimpleCall : Use.Call, names, search, cancellationToken))
            {
                return true;
            }
        }

        foreach (var name in text.Arguments)
        {
            if (!text.Called.Contains(name)
                && (NameMayReach(services, name, Use.MethodGroup, names, search, cancellationToken)
                    || LocalFunctionNamedMayReach(services, scopes, name, names, search, cancellationToken)))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>How a body names a member: <c>x.Name()</c>, <c>Name()</c>, or <c>F(Name)</c> (an argument that may be a method group).</summary>
    private enum Use
    {
        Call,
        SimpleCall,
        MethodGroup,
    }

    /// <summary>True when some source member named <paramref name="name"/> may reach the thing (memoised per name once its cycle is decided, see <see cref="Search"/>).</summary>
    private bool NameMayReach(
        AnalysisServices services, string name, Use use, ConcurrentDictionary<string, bool> names, Search search, CancellationToken cancellationToken)
    {
        var key = use switch { Use.SimpleCall => name + "()", Use.MethodGroup => name + "&", _ => name };
        if (names.TryGetValue(key, out var known))
        {
            return known;
        }

        if (search.Reached(key))
        {
            return false; // a call back into a name being decided: the cycle itself reaches nothing (see Search)
        }

        var mark = search.Push(key);
        var result = false;
        foreach (var member in services.MemberNames(cancellationToken).Named(name))
        {
            result = member.Method is null
                ? UnseenCodeReaches && use != Use.MethodGroup // a delegate field or property called by name (an argument that names one only passes it)
                : MayReach(services, member, names, search, cancellationToken);

            if (result)
            {
                break;
            }
        }

        search.Pop(mark, result, names);
        return result;
    }

    /// <summary>
    /// True when a simple call of <paramref name="called"/> may reach the thing through what <paramref name="scopes"/>
    /// declare with that name: a parameter, local, lambda parameter or pattern variable (a delegate, which may run a lambda
    /// of the member or code no text shows), or a local function whose body may (read like a method's, and decided with
    /// the names in one search: local functions calling each other are a cycle like any other). The declarations are found
    /// from where each name occurs in the scope's text (a search and a token lookup per occurrence), not from a walk over
    /// every node of the member, which every loop of a member that calls something by a simple name
    /// (<c>using static TorchSharp.torch</c>: <c>cat(...)</c>) asks about.
    /// </summary>
    private bool SimpleCallMayReach(
        AnalysisServices services, IEnumerable<SyntaxNode> scopes, HashSet<string> called, ConcurrentDictionary<string, bool> names, Search search,
        CancellationToken cancellationToken)
    {
        foreach (var name in called)
        {
            if (DeclaresVariable(services, scopes, name, cancellationToken)
                || LocalFunctionNamedMayReach(services, scopes, name, names, search, cancellationToken))
            {
                return true;
            }
        }

        return false;
    }

    private static bool DeclaresVariable(AnalysisServices services, IEnumerable<SyntaxNode> scopes, string name, CancellationToken cancellationToken)
    {
        foreach (var scope in scopes)
        {
            if (DeclaredIn(services, scope, name, cancellationToken).Variable)
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>
    /// True when <paramref name="name"/> names a local function of <paramref name="scopes"/> that may reach the thing: called
    /// by its simple name, or handed over as an argument (<c>batches.ForEach(Update)</c>).
    /// </summary>
    private bool LocalFunctionNamedMayReach(
        AnalysisServices services, IEnumerable<SyntaxNode> scopes, string name, ConcurrentDictionary<string, bool> names, Search search, CancellationToken cancellationToken)
    {
        foreach (var scope in scopes)
        {
            foreach (var function in DeclaredIn(services, scope, name, cancellationToken).LocalFunctions)
            {
                if (LocalFunctionMayReach(services, function, names, search, cancellationToken))
                {
                    return true;
                }
            }
        }

        return false;
    }

    /// <summary>
    /// What <paramref name="scope"/> declares with <paramref name="name"/>. Kept per scope and name: every loop of a member
    /// asks again for each gate, and a member whose text has a Unicode escape (a string such as "\u2192") has its tokens
    /// walked for each search.
    /// </summary>
    private static Declared DeclaredIn(AnalysisServices services, SyntaxNode scope, string name, CancellationToken cancellationToken)
    {
        var known = DeclaredNames.GetValue(services, static _ => new ConcurrentDictionary<(SyntaxNode, string), Declared>());
        if (!known.TryGetValue((scope, name), out var declared))
        {
            declared = Declared.Among(services.TokensNaming(scope, name, cancellationToken));
            known.TryAdd((scope, name), declared);
        }

        return declared;
    }

    /// <summary>
    /// What a local function's body may reach, as a name of the search (memoised once its cycle is decided), with the
    /// variables and local functions of its own member in view, whoever calls it.
    /// </summary>
    private bool LocalFunctionMayReach(
        AnalysisServices services, LocalFunctionStatementSyntax function, ConcurrentDictionary<string, bool> names, Search search, CancellationToken cancellationToken)
    {
        var key = LocalFunctionKeys.GetValue(services, static _ => new LocalFunctionKeyTable()).For(function);
        if (names.TryGetValue(key, out var known))
        {
            return known;
        }

        if (search.Reached(key))
        {
            return false; // a call back into a local function being decided (see Search)
        }

        var mark = search.Push(key);
        var result = CodeMayReach(services, new[] { function }, new[] { ScopeOf(function) }, names, search, cancellationToken);
        search.Pop(mark, result, names);
        return result;
    }

    private static readonly ConditionalWeakTable<AnalysisServices, ConcurrentDictionary<(SyntaxNode, string), Declared>> DeclaredNames = new();

    private static readonly ConditionalWeakTable<AnalysisServices, LocalFunctionKeyTable> LocalFunctionKeys = new();

    /// <summary>A key per local function declaration, with a character no name has (two local functions of one name in different members are two).</summary>
    private sealed class LocalFunctionKeyTable
    {
        private readonly ConcurrentDictionary<SyntaxNode, string> _keys = new();
        private int _next;

        public string For(LocalFunctionStatementSyntax function)
            => _keys.GetOrAdd(function, _ => "\0" + Interlocked.Increment(ref _next).ToString(System.Globalization.CultureInfo.InvariantCulture));
    }

    /// <summary>What a scope declares with one name: a variable of some kind, and its local functions of that name.</summary>
    private sealed class Declared
    {
        private static readonly Declared Nothing = new(false, new List<LocalFunctionStatementSyntax>());

        private Declared(bool variable, List<LocalFunctionStatementSyntax> localFunctions)
        {
            Variable = variable;
            LocalFunctions = localFunctions;
        }

        public bool Variable { get; }

        public List<LocalFunctionStatementSyntax> LocalFunctions { get; }

        public static Declared Among(List<SyntaxToken> tokens)
        {
            var variable = false;
            List<LocalFunctionStatementSyntax>? functions = null;
            foreach (var token in tokens)
            {
                switch (token.Parent)
                {
                    case LocalFunctionStatementSyntax function when function.Identifier == token:
                        (functions ??= new List<LocalFunctionStatementSyntax>()).Add(function);
                        break;
                    case ParameterSyntax parameter when parameter.Identifier == token:
                    case VariableDeclaratorSyntax declarator when declarator.Identifier == token:
                    case SingleVariableDesignationSyntax designation when designation.Identifier == token:
                    case ForEachStatementSyntax loop when loop.Identifier == token:
                        variable = true;
                        break;
                }
            }

            return variable || functions is not null ? new Declared(variable, functions ?? Nothing.LocalFunctions) : Nothing;
        }
    }

    /// <summary>
    /// One search's state over the names it meets: Tarjan's strongly connected components. Names that call each other
    /// form a cycle (every module's <c>forward</c> calls <c>forward</c>), and a cycle by itself reaches nothing: a name may
    /// reach the thing when one of its members' text has a marker or calls a name that may, through the cycle or out of
    /// it. A name met again while it is being decided answers "no" for now; what rests on that answer is kept only when
    /// its whole cycle is decided: "may not" for all of it when its first name finds nothing, and "may" for every name on
    /// the stack as soon as one finds a marker (each of them leads back to a name that is still being decided, and a
    /// "may" ends the search all the way up, so all of those will answer "may").
    /// </summary>
    private sealed class Search
    {
        // The names being decided or waiting for their cycle, in the order they were met, and where each stands in it.
        private readonly List<string> _stack = new();
        private readonly Dictionary<string, int> _index = new(StringComparer.Ordinal);
        private int _next;

        // The earliest name still on the stack that the code being read has met: below the name being decided, the
        // answer waits for an earlier name's cycle.
        private int _low = int.MaxValue;

        /// <summary>True when <paramref name="key"/> is being decided or waiting for its cycle (noted as met).</summary>
        public bool Reached(string key)
        {
            if (!_index.TryGetValue(key, out var index))
            {
                return false;
            }

            _low = Math.Min(_low, index);
            return true;
        }

        /// <summary>Starts deciding <paramref name="key"/>.</summary>
        public Mark Push(string key)
        {
            var mark = Enter();
            _index.Add(key, _next++);
            _stack.Add(key);
            return mark;
        }

        /// <summary>Ends deciding the name pushed at <paramref name="mark"/>: keeps its answer, and its cycle's, when they are decided.</summary>
        public void Pop(Mark mark, bool result, ConcurrentDictionary<string, bool> names)
        {
            var low = _low;
            _low = Math.Min(mark.OuterLow, low);
            if (!result && low < mark.Next)
            {
                return; // waits on the stack for the earlier name its cycle leads back to
            }

            for (var i = mark.Depth; i < _stack.Count; i++)
            {
                names.TryAdd(_stack[i], result);
                _index.Remove(_stack[i]);
            }

            _stack.RemoveRange(mark.Depth, _stack.Count - mark.Depth);
        }

        /// <summary>Starts reading a member's code (<see cref="Leave"/> says whether its answer may be kept).</summary>
        public Mark Enter()
        {
            var mark = new Mark(_stack.Count, _next, _low);
            _low = int.MaxValue;
            return mark;
        }

        /// <summary>True when the answer for the code entered at <paramref name="mark"/> is decided: a "may", or a "may not" that rests on no name still waiting.</summary>
        public bool Leave(Mark mark, bool result)
        {
            var low = _low;
            _low = Math.Min(mark.OuterLow, low);
            return result || (low >= mark.Next && _stack.Count == mark.Depth);
        }
    }

    /// <summary>Where a search stood when a name or a member's code was entered.</summary>
    private readonly struct Mark
    {
        public Mark(int depth, int next, int outerLow)
        {
            Depth = depth;
            Next = next;
            OuterLow = outerLow;
        }

        public int Depth { get; }

        public int Next { get; }

        public int OuterLow { get; }
    }

    /// <summary>The member an expression names: <c>Name</c> of <c>Name</c>, <c>x.Name</c>, <c>?.Name</c>, <c>A.Name</c>; null otherwise.</summary>
    internal static string? NameOf(ExpressionSyntax expression) => expression switch
    {
        SimpleNameSyntax name => name.Identifier.ValueText,
        QualifiedNameSyntax qualified => qualified.Right.Identifier.ValueText,
        MemberAccessExpressionSyntax access => access.Name.Identifier.ValueText,
        MemberBindingExpressionSyntax binding => binding.Name.Identifier.ValueText,
        _ => null,
    };
}
