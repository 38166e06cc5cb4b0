using System;
using System.Collections.Generic;
using System.Threading;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;

namespace MlPitfalls.Analyzers.Infrastructure;

/// <summary>
/// The compilation's source members by name, read from the declarations' syntax once per compilation (bodies are not
/// walked): what a call by name may run, for <see cref="SyntacticReach"/>. The same members
/// <c>Compilation.GetSymbolsWithName(name, SymbolFilter.Member)</c> gives, without its search of the declaration tree and
/// the symbols it builds on every call (a question asked for every name a model's code calls).
/// </summary>
internal sealed class SourceMemberNames
{
    private static readonly IReadOnlyList<SourceMember> None = Array.Empty<SourceMember>();

    private readonly Dictionary<string, List<SourceMember>> _byName = new(StringComparer.Ordinal);

    public SourceMemberNames(Compilation compilation, CancellationToken cancellationToken)
    {
        foreach (var tree in compilation.SyntaxTrees)
        {
            foreach (var node in tree.GetRoot(cancellationToken).DescendantNodes(static n => n is CompilationUnitSyntax or BaseNamespaceDeclarationSyntax or TypeDeclarationSyntax or EnumDeclarationSyntax))
            {
                cancellationToken.ThrowIfCancellationRequested();
                switch (node)
                {
                    // An explicit interface implementation's name is the interface's and the method's (I.Run): no call names it.
                    case MethodDeclarationSyntax { ExplicitInterfaceSpecifier: null } method:
                        Add(method.Identifier.ValueText, new SourceMember(method, IsOverridable(method), IsAbstract(method), method.ReturnType is PredefinedTypeSyntax { Keyword.RawKind: (int)SyntaxKind.VoidKeyword }));
                        break;
                    case BaseFieldDeclarationSyntax field: // fields and field-like events
                        foreach (var variable in field.Declaration.Variables)
                        {
                            Add(variable.Identifier.ValueText, SourceMember.NotAMethod);
                        }

                        break;
                    case PropertyDeclarationSyntax { ExplicitInterfaceSpecifier: null } property:
                        Add(property.Identifier.ValueText, SourceMember.NotAMethod);
                        break;
                    case EventDeclarationSyntax { ExplicitInterfaceSpecifier: null } @event:
                        Add(@event.Identifier.ValueText, SourceMember.NotAMethod);
                        break;
                    case EnumMemberDeclarationSyntax member:
                        Add(member.Identifier.ValueText, SourceMember.NotAMethod);
                        break;
                    case RecordDeclarationSyntax { ParameterList: { } positional }: // record R(Func<int> Run): a property
                        foreach (var parameter in positional.Parameters)
                        {
                            Add(parameter.Identifier.ValueText, SourceMember.NotAMethod);
                        }

                        break;
                }
            }
        }
    }

    /// <summary>Every source member named <paramref name="name"/> (every overload, every type's).</summary>
    public IReadOnlyList<SourceMember> Named(string name) => _byName.TryGetValue(name, out var members) ? members : None;

    private void Add(string name, SourceMember member)
    {
        if (!_byName.TryGetValue(name, out var members))
        {
            _byName[name] = members = new List<SourceMember>(1);
        }

        members.Add(member);
    }

    /// <summary>Abstract, virtual, an override, or an interface's member: another body may run where it is called.</summary>
    private static bool IsOverridable(MethodDeclarationSyntax method)
        => method.Parent is InterfaceDeclarationSyntax
           || method.Modifiers.Any(SyntaxKind.AbstractKeyword) || method.Modifiers.Any(SyntaxKind.VirtualKeyword) || method.Modifiers.Any(SyntaxKind.OverrideKeyword);

    private static bool IsAbstract(MethodDeclarationSyntax method)
        => method.Parent is InterfaceDeclarationSyntax || method.Modifiers.Any(SyntaxKind.AbstractKeyword);
}

/// <summary>A source member as <see cref="SourceMemberNames"/> lists it: a method's declaration, or a member that is not a method.</summary>
internal readonly struct SourceMember
{
    public static readonly SourceMember NotAMethod = default;

    public SourceMember(MethodDeclarationSyntax method, bool isOverridable, bool isAbstractOrInInterface, bool returnsVoid)
    {
        Method = method;
        IsOverridable = isOverridable;
        IsAbstractOrInInterface = isAbstractOrInInterface;
        ReturnsVoid = returnsVoid;
    }

    /// <summary>The method's declaration; null for a field, property, event or enum member (called by name only as a delegate).</summary>
    public MethodDeclarationSyntax? Method { get; }

    public bool IsOverridable { get; }

    public bool IsAbstractOrInInterface { get; }

    public bool ReturnsVoid { get; }
}
