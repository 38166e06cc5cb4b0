using System.Collections.Generic;
using System.Collections.Immutable;
using System.Linq;
using System.Threading;
using MlPitfalls.Analyzers.Infrastructure;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Operations;

namespace MlPitfalls.Analyzers.Analyses.Gradients;

/// <summary>
/// Where the optimizers a body uses were created, as far as the code shows it: the single creation expression
/// (<c>torch.optim.Adam(generator.parameters())</c>) assigned to a local in the body, or to a field or property there, in
/// the type's constructors or in its initializer, through copies (<c>var current = optimizer;</c>). Lets the gradient
/// analysis keep the buffers of one creation together, tell two optimizers apart, and relate an optimizer to the modules
/// whose parameters it holds; anything less than plain is "unknown", which never makes a finding.
/// </summary>
internal sealed class OptimizerOrigins
{
    private readonly IOperation _methodBody;
    private readonly AnalysisServices _services;
    private readonly TorchSymbols _torch;
    private readonly CancellationToken _cancellationToken;
    private readonly System.Collections.Concurrent.ConcurrentDictionary<ISymbol, IOperation?> _creations = new(SymbolEqualityComparer.Default);

    private static readonly System.Runtime.CompilerServices.ConditionalWeakTable<IOperation, OptimizerOrigins> ByBody = new();

    /// <summary>
    /// The origins for the body <paramref name="insideMethod"/> stands in, shared by every analysis of it (a loop's later
    /// iterations, a conditional clear left out). Found without cancellation: the work is bounded and the answers are shared.
    /// </summary>
    public static OptimizerOrigins For(IOperation insideMethod, AnalysisServices services)
    {
        return ByBody.GetValue(insideMethod.Root(), body => new OptimizerOrigins(body, services, CancellationToken.None));
    }

    private OptimizerOrigins(IOperation insideMethod, AnalysisServices services, CancellationToken cancellationToken)
    {
        _methodBody = insideMethod;
        while (_methodBody.Parent is not null)
        {
            _methodBody = _methodBody.Parent;
        }

        _services = services;
        _torch = services.Torch;
        _cancellationToken = cancellationToken;
    }

    /// <summary>True only when both optimizers have a known creation and it is not the same one.</summary>
    public bool AreProvablyDifferent(ISymbol? first, ISymbol? second)
    {
        if (first is null || second is null || SymbolEqualityComparer.Default.Equals(first, second))
        {
            return false;
        }

        var firstCreation = Creation(first);
        var secondCreation = Creation(second);
        return firstCreation is not null && secondCreation is not null && firstCreation.Syntax != secondCreation.Syntax;
    }

    /// <summary>
    /// The modules whose parameters() the optimizer was built from, with their owners: for
    /// <c>SGD(model.head.parameters())</c> that is <c>head</c> and <c>model</c> (clearing either clears the head).
    /// Default (unknown) when the creation is not visible or takes its parameters from elsewhere.
    /// </summary>
    public ImmutableArray<ISymbol> ModulesHoldingParameters(ISymbol? optimizer) => ModulesBuiltFrom(Creation(optimizer));

    /// <summary>The single creation expression of <paramref name="optimizer"/>, when the code shows one; null otherwise.</summary>
    public IOperation? CreationOf(ISymbol? optimizer) => Creation(optimizer);

    /// <summary>The modules whose parameters() <paramref name="creation"/> builds an optimizer from (see <see cref="ModulesHoldingParameters"/>).</summary>
    public ImmutableArray<ISymbol> ModulesBuiltFrom(IOperation? creation)
    {
        var arguments = creation switch
        {
            IInvocationOperation invocation => invocation.Arguments,
            IObjectCreationOperation construction => construction.Arguments,
            _ => ImmutableArray<IArgumentOperation>.Empty,
        };
        foreach (var argument in arguments)
        {
            if (argument.Value.WithoutConversions() is IInvocationOperation call && _torch.IsModuleParameters(call.TargetMethod))
            {
                return call.ResolvedReceiver().ReferencedSymbols();
            }
        }

        return default;
    }

    private IOperation? Creation(ISymbol? symbol)
    {
        if (symbol is null)
        {
            return null;
        }

        if (!_creations.TryGetValue(symbol, out var creation))
        {
            creation = FindCreation(symbol);
            _creations.TryAdd(symbol, creation);
        }

        return creation;
    }

    private IOperation? FindCreation(ISymbol symbol)
    {
        var values = new List<IOperation>();
        CollectAssignedValues(_methodBody, symbol, values);
        if (symbol is IFieldSymbol or IPropertySymbol)
        {
            foreach (var constructor in symbol.ContainingType.InstanceConstructors.Concat(symbol.ContainingType.StaticConstructors))
            {
                if (_services.GetBody(constructor, _cancellationToken) is { } body)
                {
                    CollectAssignedValues(body, symbol, values);
                }
            }

            // `Optimizer opt = Adam(...);` / `Optimizer Opt { get; } = Adam(...);`: the `= ...` clause binds to an initializer.
            foreach (var reference in symbol.DeclaringSyntaxReferences)
            {
                foreach (var clause in reference.GetSyntax(_cancellationToken).ChildNodes())
                {
                    if (_services.SemanticModel(clause.SyntaxTree)?.GetOperation(clause, _cancellationToken) is ISymbolInitializerOperation initializer)
                    {
                        values.Add(initializer.Value);
                    }
                }
            }
        }

        // A null is no optimizer (lazy ??= Adam(...) after `Optimizer? lazy = null`), and a copy has its source's creation.
        var distinct = values
            .Select(v => v.WithoutConversions())
            .Where(v => v?.ConstantValue is not { HasValue: true, Value: null })
            .Select(v => v is ILocalReferenceOperation or IParameterReferenceOperation or IFieldReferenceOperation or IPropertyReferenceOperation
                         && v.ReferencedSymbol() is { } source && !SymbolEqualityComparer.Default.Equals(source, symbol)
                ? CopiedCreation(source)
                : v)
            .Distinct()
            .ToList();
        return distinct.Count == 1 && distinct[0] is IInvocationOperation or IObjectCreationOperation && _torch.IsOptimizer(distinct[0]!.Type)
            ? distinct[0]
            : null;
    }

    /// <summary>The creation of the optimizer a copy was taken from; null while that one is being found (a cycle of copies).</summary>
    private IOperation? CopiedCreation(ISymbol source)
    {
        if (_creations.TryGetValue(source, out var known))
        {
            return known;
        }

        var following = t_following ??= new HashSet<ISymbol>(SymbolEqualityComparer.Default);
        if (!following.Add(source))
        {
            return null; // a cycle of copies: none of them shows a creation
        }

        try
        {
            return FindCreation(source); // not kept: found inside a chain of copies, it may lack what the chain's start knows
        }
        finally
        {
            following.Remove(source);
        }
    }

    [System.ThreadStatic]
    private static HashSet<ISymbol>? t_following;

    private static void CollectAssignedValues(IOperation root, ISymbol symbol, List<IOperation> values)
    {
        if (AssignmentsIn(root).TryGetValue(symbol, out var assigned))
        {
            values.AddRange(assigned);
        }
    }

    /// <summary>
    /// Every value a body assigns to a variable, field or property (initializers included), by symbol: found by one walk
    /// of the body, shared by every analysis of it (a long method with a hundred loops asks for each of them).
    /// </summary>
    private static Dictionary<ISymbol, List<IOperation>> AssignmentsIn(IOperation root)
        => Assignments.GetValue(root, static body =>
        {
            var index = new Dictionary<ISymbol, List<IOperation>>(SymbolEqualityComparer.Default);
            foreach (var operation in body.Descendants())
            {
                var (symbol, value) = operation switch
                {
                    IVariableDeclaratorOperation { Initializer: { } initializer } declarator => (declarator.Symbol, initializer.Value),
                    IAssignmentOperation assignment when assignment.Target.ReferencedSymbol() is { } target => (target, assignment.Value),
                    _ => (null, null),
                };

                if (symbol is not null && value is not null)
                {
                    if (!index.TryGetValue(symbol, out var values))
                    {
                        index[symbol] = values = new List<IOperation>();
                    }

                    values.Add(value);
                }
            }

            return index;
        });

    private static readonly System.Runtime.CompilerServices.ConditionalWeakTable<IOperation, Dictionary<ISymbol, List<IOperation>>> Assignments = new();
}
