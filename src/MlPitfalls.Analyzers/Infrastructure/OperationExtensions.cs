using System.Collections.Generic;
using System.Collections.Immutable;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Operations;

namespace MlPitfalls.Analyzers.Infrastructure;

/// <summary>Small questions about operations that several rules ask.</summary>
internal static class OperationExtensions
{
    /// <summary>The operation at the top of <paramref name="operation"/>'s tree: the body it stands in.</summary>
    public static IOperation Root(this IOperation operation)
    {
        while (operation.Parent is not null)
        {
            operation = operation.Parent;
        }

        return operation;
    }

    /// <summary>Strips conversions and parentheses, which never change what a value is bound to.</summary>
    public static IOperation? WithoutConversions(this IOperation? operation)
    {
        while (true)
        {
            switch (operation)
            {
                case IConversionOperation conversion:
                    operation = conversion.Operand;
                    break;
                case IParenthesizedOperation parenthesized:
                    operation = parenthesized.Operand;
                    break;
                default:
                    return operation;
            }
        }
    }

    /// <summary>
    /// The receiver of an instance call, seen through <c>?.</c>: for <c>p.grad?.zero_()</c> that is <c>p.grad</c>.
    /// </summary>
    public static IOperation? ResolvedReceiver(this IInvocationOperation invocation)
    {
        var instance = invocation.Instance.WithoutConversions();
        if (instance is IConditionalAccessInstanceOperation)
        {
            for (var parent = invocation.Parent; parent is not null; parent = parent.Parent)
            {
                if (parent is IConditionalAccessOperation access)
                {
                    return access.Operation.WithoutConversions();
                }
            }

            return null;
        }

        return instance;
    }

    /// <summary>
    /// The <c>bool</c> argument <paramref name="call"/> gives the parameter named <paramref name="parameterName"/>: the
    /// parameter's default when the argument is omitted, or a constant; null when it is computed or there is no such parameter.
    /// </summary>
    public static bool? BooleanArgument(this IInvocationOperation call, string parameterName) => call.Arguments.BooleanArgument(parameterName);

    /// <summary>
    /// <see cref="BooleanArgument(IInvocationOperation, string)"/> for the arguments of any call or creation
    /// (<c>new Block(16, false)</c>).
    /// </summary>
    public static bool? BooleanArgument(this ImmutableArray<IArgumentOperation> arguments, string parameterName)
    {
        foreach (var argument in arguments)
        {
            if (argument.Parameter is { } parameter && parameter.Name == parameterName)
            {
                if (argument.ArgumentKind == ArgumentKind.DefaultValue)
                {
                    return parameter.HasExplicitDefaultValue && parameter.ExplicitDefaultValue is bool byDefault ? byDefault : null;
                }

                return argument.Value.ConstantValue is { HasValue: true, Value: bool given } ? given : null;
            }
        }

        return null;
    }

    /// <summary>
    /// True when <paramref name="reference"/> (a reference to a variable, field or property) is written where it stands:
    /// the target of an assignment (also compound, and inside a deconstruction's tuple), the operand of <c>++</c>/<c>--</c>,
    /// or a <c>ref</c>/<c>out</c> argument.
    /// </summary>
    public static bool IsWrittenTo(this IOperation reference)
    {
        var target = reference;
        while (target.Parent is ITupleOperation tuple)
        {
            target = tuple;
        }

        return target.Parent switch
        {
            IAssignmentOperation assignment => assignment.Target == target,
            IIncrementOrDecrementOperation => true,
            IArgumentOperation { Parameter.RefKind: not RefKind.None } => true,
            _ => false,
        };
    }

    /// <summary>True when some operation in <paramref name="body"/> writes <paramref name="symbol"/> (see <see cref="IsWrittenTo"/>).</summary>
    public static bool WritesTo(this IOperation body, ISymbol symbol)
    {
        foreach (var operation in body.Descendants())
        {
            if (operation is ILocalReferenceOperation or IParameterReferenceOperation or IFieldReferenceOperation or IPropertyReferenceOperation
                && SymbolEqualityComparer.Default.Equals(operation.ReferencedSymbol(), symbol) && operation.IsWrittenTo())
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>The <c>return</c> (and <c>yield</c>) operations of <paramref name="body"/> itself, not those of its lambdas and local functions.</summary>
    public static IEnumerable<IReturnOperation> OwnReturns(this IOperation body)
    {
        foreach (var operation in body.DescendantsAndSelf())
        {
            if (operation is IReturnOperation @return && operation.ContainingFunction() is null)
            {
                yield return @return;
            }
        }
    }

    /// <summary>
    /// The variable, parameter, field or property a value is read from, or null when the value is computed
    /// (a call, an element access, ...). This is the identity rules compare, never the variable's name.
    /// </summary>
    public static ISymbol? ReferencedSymbol(this IOperation? operation)
        => operation.WithoutConversions() switch
        {
            ILocalReferenceOperation local => local.Local,
            IParameterReferenceOperation parameter => parameter.Parameter,
            IFieldReferenceOperation field => field.Field,
            IPropertyReferenceOperation { Arguments.Length: 0 } property => property.Property,
            _ => null,
        };

    /// <summary>The object a field or property is read from (null for a static member or anything else).</summary>
    public static IOperation? MemberInstance(this IOperation? operation)
        => operation.WithoutConversions() switch
        {
            IFieldReferenceOperation field => field.Instance.WithoutConversions(),
            IPropertyReferenceOperation property => property.Instance.WithoutConversions(),
            _ => null,
        };

    /// <summary>
    /// Every name a plain reference reads, innermost first: <c>model.head</c> gives head, model; <c>this.opt</c> gives opt.
    /// Default when any part is not a plain variable, field or property (a call, an element access, ...).
    /// </summary>
    public static ImmutableArray<ISymbol> ReferencedSymbols(this IOperation? operation)
    {
        // Asked for nearly every operation a flow analysis meets: count first, so the common answers (none, one name)
        // allocate nothing or one exact array rather than a builder.
        var length = 0;
        for (var current = operation.WithoutConversions(); current is not null and not IInstanceReferenceOperation; current = current.MemberInstance())
        {
            if (current.ReferencedSymbol() is null)
            {
                return default;
            }

            length++;
        }

        if (length == 0)
        {
            return default;
        }

        var chain = ImmutableArray.CreateBuilder<ISymbol>(length);
        for (var current = operation.WithoutConversions(); current is not null and not IInstanceReferenceOperation; current = current.MemberInstance())
        {
            chain.Add(current.ReferencedSymbol()!);
        }

        return chain.MoveToImmutable();
    }

    /// <summary>
    /// True when reading the value has no side effects and can be repeated in the same scope:
    /// <c>opt</c>, <c>this.opt</c>, <c>trainer.Optimizer</c>.
    /// </summary>
    public static bool IsSimpleReference(this IOperation? operation)
        => operation.WithoutConversions() switch
        {
            ILocalReferenceOperation or IParameterReferenceOperation => true,
            IFieldReferenceOperation field => field.Instance is null or IInstanceReferenceOperation || field.Instance.IsSimpleReference(),
            IPropertyReferenceOperation { Arguments.Length: 0 } property
                => property.Instance is null or IInstanceReferenceOperation || property.Instance.IsSimpleReference(),
            _ => false,
        };

    /// <summary>
    /// The innermost for/foreach/while/do loop around <paramref name="operation"/> in the same method body.
    /// The search stops at a lambda or local function, whose body runs when it is called, not where it stands.
    /// </summary>
    public static ILoopOperation? EnclosingLoop(this IOperation operation)
    {
        for (var parent = operation.Parent; parent is not null; parent = parent.Parent)
        {
            switch (parent)
            {
                case ILoopOperation loop:
                    return loop;
                case IAnonymousFunctionOperation or ILocalFunctionOperation:
                    return null;
            }
        }

        return null;
    }

    /// <summary>The lambda or local function <paramref name="operation"/> stands in, or null when it is in the member body itself.</summary>
    public static IMethodSymbol? ContainingFunction(this IOperation operation)
    {
        for (var parent = operation.Parent; parent is not null; parent = parent.Parent)
        {
            switch (parent)
            {
                case IAnonymousFunctionOperation lambda:
                    return lambda.Symbol;
                case ILocalFunctionOperation localFunction:
                    return localFunction.Symbol;
            }
        }

        return null;
    }
}
