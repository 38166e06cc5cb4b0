using System;
using System.Collections.Generic;
using System.Linq;
using System.Threading;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp.Syntax;

namespace MlPitfalls.Analyzers.Infrastructure;

/// <summary>
/// What a piece of code's text shows the name gates (<see cref="SyntacticReach"/>): the names it calls and how, the names
/// it hands over as arguments, mentions and creates, and the constructs that run code no call names (a lambda, a
/// <c>finally</c>, a <c>using</c>). Read in one walk per member declaration or loop and kept in the compilation's services
/// (<see cref="AnalysisServices.CallTextOf"/>): six gates ask their questions about the same text, and each only looks its
/// markers up here.
/// </summary>
internal sealed class CallText
{
    private static readonly HashSet<string> NoNames = new(StringComparer.Ordinal);

    private CallText()
    {
    }

    /// <summary>
    /// The marker names the gates look for that the text writes as an identifier anywhere (<c>step</c> in
    /// <c>optimizer.step()</c> or <c>opt.step</c>, <c>train</c>, <c>backward</c>): a set of every identifier was most of
    /// the cost of reading a text.
    /// </summary>
    public MarkerNames Mentions { get; private set; }

    /// <summary>The names of the methods called, however written (<c>F()</c>, <c>x.F()</c>, <c>x?.F()</c>, <c>A.F()</c>).</summary>
    public HashSet<string> Called { get; private set; } = NoNames;

    /// <summary>The names called by a simple name, <c>F()</c>: a source method, a delegate variable, or a library's <c>using static</c> member.</summary>
    public HashSet<string> SimplyCalled { get; private set; } = NoNames;

    /// <summary>The names called on a receiver, <c>x.F()</c> or <c>x?.F()</c>.</summary>
    public HashSet<string> CalledOnReceiver { get; private set; } = NoNames;

    /// <summary>True when a member named <c>grad</c> is read on a receiver (<c>p.grad</c>, <c>x?.grad</c>).</summary>
    public bool ReadsGrad { get; private set; }

    /// <summary>The names passed as arguments (<c>F(Name)</c>): a method group becomes a delegate the callee may run.</summary>
    public HashSet<string> Arguments { get; private set; } = NoNames;

    /// <summary>The names of the types created with arguments (<c>new Guard(model)</c>).</summary>
    public HashSet<string> CreatedWithArguments { get; private set; } = NoNames;

    /// <summary>True when an object of an unwritten type is created with arguments (<c>new(model)</c>).</summary>
    public bool CreatesUnnamedWithArguments { get; private set; }

    /// <summary>True when it writes a lambda or an anonymous method.</summary>
    public bool HasLambda { get; private set; }

    /// <summary>True when it has a <c>finally</c> clause.</summary>
    public bool HasFinally { get; private set; }

    /// <summary>
    /// True when a <c>using</c> disposes of something other than one of TorchSharp's own scopes (<c>torch.NewDisposeScope()</c>,
    /// <c>no_grad()</c>, <c>enable_grad()</c>, <c>inference_mode()</c> with no arguments, made knowing no module): a guard
    /// whose <c>Dispose</c> may run anything.
    /// </summary>
    public bool DisposesOtherThanTorchScope { get; private set; }

    /// <summary>The text of <paramref name="code"/>, every descendant included (lambdas and local functions too).</summary>
    public static CallText Read(SyntaxNode code, CancellationToken cancellationToken)
    {
        var text = new CallText();
        foreach (var node in code.DescendantNodesAndSelf())
        {
            cancellationToken.ThrowIfCancellationRequested();
            switch (node)
            {
                case IdentifierNameSyntax identifier:
                    text.Mentions |= MarkerOf(identifier.Identifier.ValueText);
                    break;
                case InvocationExpressionSyntax { Expression: var callee } when SyntacticReach.NameOf(callee) is { } name:
                    text.Called = Add(text.Called, name);
                    if (callee is SimpleNameSyntax)
                    {
                        text.SimplyCalled = Add(text.SimplyCalled, name);
                    }
                    else if (callee is MemberAccessExpressionSyntax or MemberBindingExpressionSyntax)
                    {
                        text.CalledOnReceiver = Add(text.CalledOnReceiver, name);
                    }

                    break;
                case MemberAccessExpressionSyntax { Name.Identifier.ValueText: "grad" } or MemberBindingExpressionSyntax { Name.Identifier.ValueText: "grad" }:
                    text.ReadsGrad = true;
                    break;
                case ArgumentSyntax { Expression: var argument } when SyntacticReach.NameOf(argument) is { } group:
                    text.Arguments = Add(text.Arguments, group);
                    break;
                case ObjectCreationExpressionSyntax { ArgumentList.Arguments.Count: > 0, Type: var type } when SyntacticReach.NameOf(type) is { } typeName:
                    text.CreatedWithArguments = Add(text.CreatedWithArguments, typeName);
                    break;
                case ImplicitObjectCreationExpressionSyntax { ArgumentList.Arguments.Count: > 0 }:
                    text.CreatesUnnamedWithArguments = true;
                    break;
                case AnonymousFunctionExpressionSyntax:
                    text.HasLambda = true;
                    break;
                case FinallyClauseSyntax:
                    text.HasFinally = true;
                    break;
                case UsingStatementSyntax statement when !IsTorchScope(statement.Expression ?? OnlyInitializer(statement.Declaration)):
                    text.DisposesOtherThanTorchScope = true;
                    break;
                case LocalDeclarationStatementSyntax { UsingKeyword.RawKind: not 0 } declaration when !IsTorchScope(OnlyInitializer(declaration.Declaration)):
                    text.DisposesOtherThanTorchScope = true;
                    break;
            }
        }

        return text;
    }

    /// <summary>The text of several pieces of code as one (a partial method's declarations).</summary>
    public static CallText Union(IReadOnlyList<CallText> texts)
    {
        if (texts.Count == 1)
        {
            return texts[0];
        }

        var union = new CallText();
        foreach (var text in texts)
        {
            union.Mentions |= text.Mentions;
            union.Called = AddAll(union.Called, text.Called);
            union.SimplyCalled = AddAll(union.SimplyCalled, text.SimplyCalled);
            union.CalledOnReceiver = AddAll(union.CalledOnReceiver, text.CalledOnReceiver);
            union.ReadsGrad |= text.ReadsGrad;
            union.Arguments = AddAll(union.Arguments, text.Arguments);
            union.CreatedWithArguments = AddAll(union.CreatedWithArguments, text.CreatedWithArguments);
            union.CreatesUnnamedWithArguments |= text.CreatesUnnamedWithArguments;
            union.HasLambda |= text.HasLambda;
            union.HasFinally |= text.HasFinally;
            union.DisposesOtherThanTorchScope |= text.DisposesOtherThanTorchScope;
        }

        return union;
    }

    private static MarkerNames MarkerOf(string identifier) => identifier switch
    {
        "step" => MarkerNames.Step,
        "backward" => MarkerNames.Backward,
        "train" => MarkerNames.Train,
        "eval" => MarkerNames.Eval,
        "apply" => MarkerNames.Apply,
        _ => MarkerNames.None,
    };

    /// <summary>The value of a declaration's one variable; null for none or several (<c>using (var a = F(), b = G())</c>).</summary>
    private static ExpressionSyntax? OnlyInitializer(VariableDeclarationSyntax? declaration)
        => declaration is { Variables.Count: 1 } ? declaration.Variables[0].Initializer?.Value : null;

    /// <summary>
    /// <c>torch.NewDisposeScope()</c>, <c>torch.no_grad()</c> and the like, the <c>using</c> of nearly every model's
    /// <c>forward</c>: TorchSharp's scopes, made knowing no module, dispose of tensors or restore gradient mode, never a
    /// module's mode. The call itself is still read like any other (a source method of that name is followed).
    /// </summary>
    private static bool IsTorchScope(ExpressionSyntax? resource)
        => resource is InvocationExpressionSyntax { ArgumentList.Arguments.Count: 0 } call
           && SyntacticReach.NameOf(call.Expression) is "NewDisposeScope" or "no_grad" or "enable_grad" or "inference_mode";

    // Most texts name nothing of a kind: the shared empty set stands for it until a name comes.
    private static HashSet<string> Add(HashSet<string> names, string name)
    {
        if (ReferenceEquals(names, NoNames))
        {
            names = new HashSet<string>(StringComparer.Ordinal);
        }

        names.Add(name);
        return names;
    }

    private static HashSet<string> AddAll(HashSet<string> names, HashSet<string> more)
    {
        foreach (var name in more)
        {
            names = Add(names, name);
        }

        return names;
    }
}

/// <summary>The identifiers name gates look for (<see cref="CallText.Mentions"/>).</summary>
[Flags]
internal enum MarkerNames
{
    None = 0,
    Step = 1,
    Backward = 2,
    Train = 4,
    Eval = 8,
    Apply = 16,
}
