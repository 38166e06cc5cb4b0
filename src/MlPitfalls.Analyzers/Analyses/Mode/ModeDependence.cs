using System.Collections.Concurrent;
using System.Linq;
using System.Runtime.CompilerServices;
using System.Threading;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Operations;
using MlPitfalls.Analyzers.Analyses.Composition;
using MlPitfalls.Analyzers.Infrastructure;

namespace MlPitfalls.Analyzers.Analyses.Mode;

/// <summary>
/// Whether a module may compute something different in training and in evaluation mode: it contains dropout (any
/// variant, or functional dropout), batch normalization, instance normalization that tracks running statistics, a
/// recurrent or transformer layer with dropout, or a custom module that reads <c>training</c> or overrides
/// <c>train</c>. Read from the composition model; a module whose composition the code does not show may (the mode
/// rules then report, as a user would expect for an unknown model), one shown to hold none of these may not (they stay
/// quiet: its mode changes nothing).
/// </summary>
internal static class ModeDependence
{
    private const int MaxDepth = 6;

    // Text that, in a module class's source, may make its forward depend on the mode: the layers, functional dropout
    // (whose training flag defaults to true), an RNN's dropout argument, and reads of the training flag.
    private static readonly string[] ModeDependentText = { "Dropout", "dropout", "BatchNorm", "training", "Transformer", "MultiheadAttention" };

    private static readonly ConditionalWeakTable<AnalysisServices, ConcurrentDictionary<INamedTypeSymbol, bool>> SourceTypes = new();

    /// <summary>True when the module <paramref name="expression"/> evaluates to may depend on the mode.</summary>
    public static bool MayDependOnMode(AnalysisServices services, IOperation expression, CancellationToken cancellationToken)
    {
        var model = services.Modules.Describe(expression, cancellationToken);
        return model is null || MayDependOnMode(services, model, 0, cancellationToken);
    }

    private static bool MayDependOnMode(AnalysisServices services, ModuleModel? model, int depth, CancellationToken cancellationToken)
    {
        if (model is null || depth > MaxDepth)
        {
            return true;
        }

        if (!model.Alternatives.IsDefaultOrEmpty)
        {
            return model.Alternatives.Any(a => MayDependOnMode(services, a, depth + 1, cancellationToken));
        }

        var torch = services.Torch;
        var type = model.Type;
        if (!torch.IsInTorchSharp(type))
        {
            return type.DeclaringSyntaxReferences.IsEmpty
                || SourceTypes.GetValue(services, static _ => new ConcurrentDictionary<INamedTypeSymbol, bool>(SymbolEqualityComparer.Default))
                    .GetOrAdd(type, t => SourceTypeMayDepend(services, t, depth, cancellationToken));
        }

        var name = type.Name;
        if (name.StartsWith("BatchNorm", System.StringComparison.Ordinal))
        {
            return FlagArgument(model.Creation, "track_running_stats") != false; // without running statistics it uses the batch's in both modes
        }

        if (name.Contains("Dropout")
            || name.StartsWith("Transformer", System.StringComparison.Ordinal) || name == "MultiheadAttention")
        {
            return true;
        }

        if (name.StartsWith("InstanceNorm", System.StringComparison.Ordinal))
        {
            return FlagArgument(model.Creation, "track_running_stats") != false; // off by default; unknown when not shown
        }

        if (name is "LSTM" or "GRU" or "RNN")
        {
            return model.Creation is not IInvocationOperation creation
                || creation.Arguments.Any(a => a.Parameter?.Name == "dropout" && a.ArgumentKind != ArgumentKind.DefaultValue
                                               && !(a.Value.ConstantValue is { HasValue: true, Value: var value } && System.Convert.ToDouble(value, System.Globalization.CultureInfo.InvariantCulture) == 0));
        }

        if (name == "Sequential")
        {
            return model.Children.IsDefault || model.Children.Any(c => MayDependOnMode(services, c.Model, depth + 1, cancellationToken));
        }

        if (name.StartsWith("ModuleList", System.StringComparison.Ordinal) || name.StartsWith("ModuleDict", System.StringComparison.Ordinal))
        {
            return model.Elements.IsDefault || model.Elements.Any(e => MayDependOnMode(services, e, depth + 1, cancellationToken));
        }

        // Another TorchSharp module: a layer, activation, pooling or shape module (mode-independent), unless it is an
        // abstract module type that says nothing of what it holds.
        return type.IsAbstract || type.Name.StartsWith("Module", System.StringComparison.Ordinal);
    }

    private static bool SourceTypeMayDepend(AnalysisServices services, INamedTypeSymbol type, int depth, CancellationToken cancellationToken)
    {
        var torch = services.Torch;
        for (var current = type; current is not null && !current.DeclaringSyntaxReferences.IsEmpty; current = current.BaseType)
        {
            if (current.IsAbstract || ModeDependentText.Any(text => services.MentionsInItsText(current, text, cancellationToken))
                || current.GetMembers("train").Any(m => m is IMethodSymbol { IsOverride: true }))
            {
                return true;
            }

            foreach (var member in current.GetMembers())
            {
                var memberType = member switch
                {
                    IFieldSymbol { IsStatic: false, IsImplicitlyDeclared: false } field => field.Type,
                    IPropertySymbol { IsStatic: false } property when FlowAnalysis.AccessPath.IsStorage(property) => property.Type,
                    _ => null,
                };

                if (memberType is not null && torch.IsModule(memberType)
                    && MayDependOnMode(services, services.Modules.DescribeStored(member, cancellationToken), depth + 1, cancellationToken))
                {
                    return true;
                }
            }
        }

        return false;
    }

    private static bool? FlagArgument(IOperation? creation, string name)
    {
        if (creation is not IInvocationOperation invocation)
        {
            return null;
        }

        var argument = invocation.Arguments.FirstOrDefault(a => a.Parameter?.Name == name);
        if (argument is null || argument.ArgumentKind == ArgumentKind.DefaultValue)
        {
            return argument?.Parameter?.ExplicitDefaultValue as bool?;
        }

        return argument.Value.ConstantValue is { HasValue: true, Value: bool value } ? value : null;
    }
}
