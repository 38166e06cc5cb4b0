using System.Collections.Immutable;
using Microsoft.CodeAnalysis;

namespace MlPitfalls.Analyzers.Analyses.Composition;

/// <summary>
/// What a module-typed value is, as far as the code shows: the type created, where, and for a <c>Sequential</c> its
/// children in order. Built by <see cref="ModuleComposition"/>; a value the code does not pin down has no model at all.
/// </summary>
internal sealed class ModuleModel
{
    public ModuleModel(
        INamedTypeSymbol type, IOperation? creation, ImmutableArray<ModuleChild> children, bool hasForwardHooks = false,
        ImmutableArray<ModuleModel> elements = default, ImmutableArray<ModuleModel> alternatives = default)
    {
        Type = type;
        Creation = creation;
        Children = children;
        HasForwardHooks = hasForwardHooks;
        Elements = elements;
        Alternatives = alternatives;
    }

    /// <summary>True when code registers a forward hook on this module: a hook may replace its output.</summary>
    public bool HasForwardHooks { get; }

    /// <summary>The module's type: the class created, or the static type when that is concrete and no creation is seen.</summary>
    public INamedTypeSymbol Type { get; }

    /// <summary>The expression that creates the module (<c>nn.Linear(64, 10)</c>, <c>new Classifier()</c>), when one is known.</summary>
    public IOperation? Creation { get; }

    /// <summary>
    /// For a <c>Sequential</c>: its children in order, including those added later by <c>append</c>. Default when the
    /// module is no <c>Sequential</c> or when its children are not all known.
    /// </summary>
    public ImmutableArray<ModuleChild> Children { get; }

    /// <summary>
    /// For a <c>ModuleList</c>: the modules it holds, in no particular order (added in loops, often). Default when not all
    /// are known.
    /// </summary>
    public ImmutableArray<ModuleModel> Elements { get; }

    /// <summary>
    /// For an element read by index (<c>convs[i]</c>): the modules it may be, all of <see cref="Type"/>; default otherwise.
    /// </summary>
    public ImmutableArray<ModuleModel> Alternatives { get; }

    public ModuleModel WithChildren(ImmutableArray<ModuleChild> children) => new(Type, Creation, children, HasForwardHooks, Elements, Alternatives);

    public ModuleModel WithForwardHooks() => new(Type, Creation, Children, hasForwardHooks: true, Elements, Alternatives);

    public ModuleModel WithElements(ImmutableArray<ModuleModel> elements) => new(Type, Creation, Children, HasForwardHooks, elements, Alternatives);
}

/// <summary>One child of a <c>Sequential</c>: its name when it was given one, the expression that supplies it, and its model.</summary>
internal sealed class ModuleChild
{
    public ModuleChild(string? name, IOperation expression, ModuleModel? model)
    {
        Name = name;
        Expression = expression;
        Model = model;
    }

    public string? Name { get; }

    /// <summary>The argument that supplies the child (<c>nn.Softmax(1)</c> in <c>("probs", nn.Softmax(1))</c>).</summary>
    public IOperation Expression { get; }

    public ModuleModel? Model { get; }
}
