using System.Collections.Generic;
using System.Collections.Immutable;
using System.Linq;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Operations;
using MlPitfalls.Analyzers.Infrastructure;

namespace MlPitfalls.Analyzers.FlowAnalysis;

/// <summary>
/// The two sides of a method summary's names: what a summary may name on entry (its parameters and the storage of the
/// object it runs on), and what a name in it is at one call (a parameter becomes the argument, a field the receiver's).
/// Shared by the analyses that summarise what a method does to the objects its caller can name (modes, gradients).
/// </summary>
internal static class SummaryPaths
{
    /// <summary>
    /// The instance fields and storage properties (auto-properties declared in source) of <paramref name="type"/> and of its
    /// base types declared in source, with their types: what a method of the type can change on its object.
    /// </summary>
    public static IEnumerable<(ISymbol Member, ITypeSymbol Type)> InstanceStorage(INamedTypeSymbol type)
    {
        for (var current = type; current is not null && !current.DeclaringSyntaxReferences.IsEmpty; current = current.BaseType)
        {
            foreach (var member in current.GetMembers())
            {
                var memberType = member switch
                {
                    IFieldSymbol { IsStatic: false, IsImplicitlyDeclared: false } field => field.Type,
                    IPropertySymbol { IsStatic: false } property when AccessPath.IsStorage(property) => property.Type,
                    _ => null,
                };

                if (memberType is not null)
                {
                    yield return (member, memberType);
                }
            }
        }
    }

    /// <summary>
    /// The caller's name for <paramref name="calleePath"/>, a path a summary names, at a call on <paramref name="receiver"/>
    /// with <paramref name="arguments"/>: a parameter becomes the argument passed for it, a member of the callee's object
    /// the receiver's member (itself for a call on <c>this</c> or a static member), the callee's <c>this</c>
    /// <paramref name="receiverPath"/>. Null when the caller cannot name it (an argument that is computed).
    /// <paramref name="resolve"/> sees through what the caller's graph made of an operand (a flow capture).
    /// </summary>
    public static AccessPath? MapToCaller(
        AccessPath calleePath, IOperation? receiver, ImmutableArray<IArgumentOperation> arguments, AccessPath? receiverPath, System.Func<IOperation?, IOperation?> resolve)
    {
        switch (calleePath.Root)
        {
            case IParameterSymbol parameter:
                var argument = arguments.FirstOrDefault(a => a.Parameter?.Ordinal == parameter.Ordinal);
                return argument is null ? null : AccessPath.Of(resolve(argument.Value))?.Append(calleePath.Members);
            case INamedTypeSymbol when calleePath.IsThis:
                return receiverPath;
            case IFieldSymbol or IPropertySymbol:
                var instance = resolve(receiver).WithoutConversions();
                if (instance is null or IInstanceReferenceOperation || calleePath.Root.IsStatic)
                {
                    return calleePath; // the same object: its fields are the caller's fields
                }

                return AccessPath.Of(instance)?.Append(new[] { calleePath.Root! }.Concat(calleePath.Members));
            default:
                return null;
        }
    }
}
