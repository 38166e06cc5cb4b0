using System.Collections.Generic;
using System.Collections.Immutable;
using System.Composition;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CodeActions;
using Microsoft.CodeAnalysis.CodeFixes;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using Microsoft.CodeAnalysis.Operations;
using MlPitfalls.Analyzers;
using MlPitfalls.Analyzers.Losses;
using MlPitfalls.CodeFixes.Infrastructure;

namespace MlPitfalls.CodeFixes.Losses;

/// <summary>
/// Fixes for the loss-pairing rules (MLP002-MLP004). The analyzer lists in the diagnostic which fixes apply and where
/// (the diagnostic's own location, or additional location 0 for the loss); this class only rewrites syntax:
/// pass the logits, drop a final activation layer, softmax → log_softmax, switch BCE ↔ BCE-with-logits, apply
/// log_softmax to logits, add <c>log_target: false</c>.
/// </summary>
[ExportCodeFixProvider(LanguageNames.CSharp, Name = nameof(LossPairingCodeFix)), Shared]
public sealed class LossPairingCodeFix : CodeFixProvider
{
    public const string RemoveActivationKey = "MlPitfalls.Losses.RemoveActivation";
    public const string RemoveLayerKey = "MlPitfalls.Losses.RemoveLayer";
    public const string UseLogSoftmaxKey = "MlPitfalls.Losses.UseLogSoftmax";
    public const string SwitchLossKey = "MlPitfalls.Losses.SwitchLoss";
    public const string ApplyLogSoftmaxKey = "MlPitfalls.Losses.ApplyLogSoftmax";
    public const string LogTargetFalseKey = "MlPitfalls.Losses.LogTargetFalse";

    private static readonly Dictionary<string, string> SwitchedNames = new()
    {
        ["BCEWithLogitsLoss"] = "BCELoss",
        ["BCELoss"] = "BCEWithLogitsLoss",
        ["binary_cross_entropy_with_logits"] = "binary_cross_entropy",
        ["binary_cross_entropy"] = "binary_cross_entropy_with_logits",
    };

    public override ImmutableArray<string> FixableDiagnosticIds { get; } = ImmutableArray.Create(
        Descriptors.MLP002_LogitsLossGivenProbabilities.Id,
        Descriptors.MLP003_ProbabilityLossGivenWrongInput.Id,
        Descriptors.MLP004_KLDivTargetNotInLogSpace.Id);

    public override FixAllProvider GetFixAllProvider() => WellKnownFixAllProviders.BatchFixer;

    public override async Task RegisterCodeFixesAsync(CodeFixContext context)
    {
        var root = await context.Document.GetSyntaxRootAsync(context.CancellationToken).ConfigureAwait(false);
        if (root is null)
        {
            return;
        }

        foreach (var diagnostic in context.Diagnostics)
        {
            if (!diagnostic.Properties.TryGetValue(LossPairingAnalyzer.FixesProperty, out var fixes) || fixes is null)
            {
                continue;
            }

            // The activation or layer: the diagnostic's location, or additional location 1 when it was reported at the loss input.
            var origin = diagnostic.AdditionalLocations.Count > 1 ? diagnostic.AdditionalLocations[1] : diagnostic.Location;
            if (origin.SourceTree != root.SyntaxTree)
            {
                origin = diagnostic.Location;
            }

            var node = root.FindNode(origin.SourceSpan, getInnermostNodeForTie: true);
            var loss = diagnostic.AdditionalLocations.Count > 0 && diagnostic.AdditionalLocations[0].SourceTree == root.SyntaxTree
                ? root.FindNode(diagnostic.AdditionalLocations[0].SourceSpan, getInnermostNodeForTie: true)
                : null;
            var semanticModel = await context.Document.GetSemanticModelAsync(context.CancellationToken).ConfigureAwait(false);
            foreach (var fix in fixes.Split(','))
            {
                if (PlanFix(fix, node, loss, semanticModel, context.CancellationToken) is { } plan)
                {
                    context.RegisterCodeFix(
                        CodeAction.Create(plan.Title, ct => Apply(context.Document, root, plan), plan.Key),
                        diagnostic);
                }
            }
        }
    }

    private static Task<Document> Apply(Document document, SyntaxNode root, FixPlan plan)
        => Task.FromResult(document.WithSyntaxRoot(plan.Rewrite(root)));

    private sealed class FixPlan
    {
        public FixPlan(string title, string key, SyntaxNode target, SyntaxNode? replacement)
        {
            Title = title;
            Key = key;
            Target = target;
            Replacement = replacement;
        }

        public string Title { get; }

        public string Key { get; }

        public SyntaxNode Target { get; }

        /// <summary>The new node, or null to remove <see cref="Target"/> (an argument).</summary>
        public SyntaxNode? Replacement { get; }

        public SyntaxNode Rewrite(SyntaxNode root)
        {
            if (Replacement is not null)
            {
                return root.ReplaceNode(Target, Replacement.WithTriviaFrom(Target));
            }

            // Removing an argument takes its separator with it; the list keeps its closing parenthesis where it was.
            var list = (ArgumentListSyntax)Target.Parent!;
            return root.ReplaceNode(list, list.WithArguments(list.Arguments.Remove((ArgumentSyntax)Target)));
        }
    }

    private static FixPlan? PlanFix(string fix, SyntaxNode node, SyntaxNode? loss, SemanticModel? model, CancellationToken cancellationToken)
    {
        switch (fix)
        {
            case LossPairingAnalyzer.RemoveActivationFix when node is InvocationExpressionSyntax activation && TensorOperand(activation, model, cancellationToken) is { } logits:
                return new FixPlan($"Pass the logits to the loss (remove '{NameOf(activation)}')", RemoveActivationKey, activation, logits.WithoutTrivia());
            case LossPairingAnalyzer.RemoveLayerFix when ChildArgument(node) is { } child:
                var layer = node is InvocationExpressionSyntax creation ? NameOf(creation) : "activation";
                return new FixPlan(
                    $"Remove the final {layer} layer (inference code must now apply {layer.ToLowerInvariant()} to the model's output itself)",
                    RemoveLayerKey, child, null);
            case LossPairingAnalyzer.UseLogSoftmaxFix when node is InvocationExpressionSyntax { Expression: var layerName } softmaxLayer
                && (layerName is IdentifierNameSyntax { Identifier.ValueText: "Softmax" } or MemberAccessExpressionSyntax { Name.Identifier.ValueText: "Softmax" }):
                return Renamed(softmaxLayer, "LogSoftmax", model, cancellationToken) is { } logSoftmaxLayer
                    ? new FixPlan("Use a LogSoftmax layer instead of Softmax", UseLogSoftmaxKey, softmaxLayer, logSoftmaxLayer)
                    : null;
            case LossPairingAnalyzer.UseLogSoftmaxFix when node is InvocationExpressionSyntax softmax && LogSoftmaxOf(softmax, model, cancellationToken) is { } logSoftmax:
                return new FixPlan("Use log_softmax instead of softmax", UseLogSoftmaxKey, softmax, logSoftmax);
            case LossPairingAnalyzer.SwitchLossFix when loss is InvocationExpressionSyntax lossCall && Switched(lossCall, model, cancellationToken) is { } switched:
                return new FixPlan($"Use {NameOf(switched)} instead", SwitchLossKey, lossCall, switched);
            case LossPairingAnalyzer.ApplyLogSoftmaxFix when node is ExpressionSyntax input:
                return new FixPlan(
                    "Apply log_softmax over the class dimension (1) before the loss", ApplyLogSoftmaxKey, input,
                    SyntaxFactory.InvocationExpression(
                        SyntaxFactory.MemberAccessExpression(SyntaxKind.SimpleMemberAccessExpression, Receiver(input.WithoutTrivia()), SyntaxFactory.IdentifierName("log_softmax")),
                        SyntaxFactory.ArgumentList(SyntaxFactory.SingletonSeparatedList(SyntaxFactory.Argument(
                            SyntaxFactory.LiteralExpression(SyntaxKind.NumericLiteralExpression, SyntaxFactory.Literal(1)))))));
            case LossPairingAnalyzer.LogTargetFalseFix when loss is InvocationExpressionSyntax configured && WithLogTargetFalse(configured, model, cancellationToken) is { } withFalse:
                return new FixPlan("Pass log_target: false (the target holds probabilities)", LogTargetFalseKey, configured, withFalse);
            default:
                return null;
        }
    }

    private static string NameOf(InvocationExpressionSyntax invocation) => invocation.Expression switch
    {
        MemberAccessExpressionSyntax access => access.Name.Identifier.ValueText,
        IdentifierNameSyntax identifier => identifier.Identifier.ValueText,
        _ => invocation.Expression.ToString(),
    };

    /// <summary>
    /// The tensor an activation is applied to, read from the bound call (never from names): the receiver of
    /// <c>x.softmax(1)</c>, or the argument for the first parameter of <c>functional.softmax(x, 1)</c> / <c>torch.softmax(input: x, dim: 1)</c>.
    /// Null for an in-place activation (<c>x.sigmoid_()</c>), whose effect on <c>x</c> other code may read.
    /// </summary>
    private static ExpressionSyntax? TensorOperand(InvocationExpressionSyntax activation, SemanticModel? model, CancellationToken cancellationToken)
    {
        if (model?.GetOperation(activation, cancellationToken) is not IInvocationOperation call || call.TargetMethod.Name.EndsWith("_", System.StringComparison.Ordinal))
        {
            return null;
        }

        if (!call.TargetMethod.IsStatic)
        {
            return activation.Expression is MemberAccessExpressionSyntax access && call.Instance?.Syntax == access.Expression ? access.Expression : null;
        }

        return FirstParameterArgument(call, activation);
    }

    /// <summary>The argument syntax bound to the first parameter of a static call, or null.</summary>
    private static ExpressionSyntax? FirstParameterArgument(IInvocationOperation call, InvocationExpressionSyntax syntax)
    {
        foreach (var argument in call.Arguments)
        {
            if (argument.Parameter?.Ordinal == 0 && argument.Syntax is ArgumentSyntax { Expression: var expression } && syntax.ArgumentList.Arguments.Any(a => a.Expression == expression))
            {
                return expression;
            }
        }

        return null;
    }

    /// <summary>
    /// <c>x.softmax(d)</c> → <c>x.log_softmax(d)</c>; a static softmax (<c>functional.softmax(x, d)</c>, <c>torch.softmax(input: x, dim: d)</c>) →
    /// <c>x.log_softmax(d)</c>, keeping the other arguments (<c>dim</c>, <c>dtype</c>) as written.
    /// </summary>
    private static InvocationExpressionSyntax? LogSoftmaxOf(InvocationExpressionSyntax softmax, SemanticModel? model, CancellationToken cancellationToken)
    {
        if (model?.GetOperation(softmax, cancellationToken) is not IInvocationOperation call || call.TargetMethod.Name != "softmax")
        {
            return null;
        }

        if (!call.TargetMethod.IsStatic)
        {
            return softmax.Expression is MemberAccessExpressionSyntax access
                ? softmax.WithExpression(access.WithName(SyntaxFactory.IdentifierName("log_softmax").WithTriviaFrom(access.Name)))
                : null;
        }

        if (FirstParameterArgument(call, softmax) is not { } tensor)
        {
            return null;
        }

        var rest = softmax.ArgumentList.Arguments.Where(a => a.Expression != tensor).ToList();
        if (rest.Count == 0 || rest.Any(a => a.NameColon is not null && a.NameColon.Name.Identifier.ValueText is not ("dim" or "dtype")))
        {
            return null;
        }

        return SyntaxFactory.InvocationExpression(
            SyntaxFactory.MemberAccessExpression(SyntaxKind.SimpleMemberAccessExpression, Receiver(tensor.WithoutTrivia()), SyntaxFactory.IdentifierName("log_softmax")),
            SyntaxFactory.ArgumentList(SyntaxFactory.SeparatedList(rest)));
    }

    /// <summary>An expression usable as a member-access receiver: parenthesised unless it already is a primary expression.</summary>
    private static ExpressionSyntax Receiver(ExpressionSyntax expression)
        => expression is IdentifierNameSyntax or MemberAccessExpressionSyntax or InvocationExpressionSyntax or ElementAccessExpressionSyntax or ParenthesizedExpressionSyntax
            ? expression
            : SyntaxFactory.ParenthesizedExpression(expression);

    /// <summary>The argument (or the named tuple argument) that supplies a child of <c>nn.Sequential(...)</c>.</summary>
    private static ArgumentSyntax? ChildArgument(SyntaxNode node)
    {
        var argument = node.Parent as ArgumentSyntax;
        if (argument?.Parent is TupleExpressionSyntax tuple)
        {
            argument = tuple.Parent as ArgumentSyntax;
        }

        return argument?.Parent is ArgumentListSyntax { Parent: InvocationExpressionSyntax } ? argument : null;
    }

    /// <summary>The loss call or creation with its counterpart's name (BCE ↔ BCE with logits).</summary>
    private static InvocationExpressionSyntax? Switched(InvocationExpressionSyntax loss, SemanticModel? model, CancellationToken cancellationToken)
        => NameSyntaxOf(loss) is { } name && SwitchedNames.TryGetValue(name.Identifier.ValueText, out var counterpart)
            ? Renamed(loss, counterpart, model, cancellationToken)
            : null;

    private static SimpleNameSyntax? NameSyntaxOf(InvocationExpressionSyntax invocation) => invocation.Expression switch
    {
        MemberAccessExpressionSyntax access => access.Name,
        IdentifierNameSyntax identifier => identifier,
        _ => null,
    };

    /// <summary>
    /// <paramref name="call"/> calling <paramref name="newName"/> instead. Not offered when the result is stored where its
    /// concrete type is declared (<c>BCELoss criterion = nn.BCELoss();</c>, a field typed <c>Softmax</c>): that declaration
    /// would no longer compile. Used as a receiver, a <c>var</c> initializer or a <c>Sequential</c> child, it may change.
    /// </summary>
    private static InvocationExpressionSyntax? Renamed(InvocationExpressionSyntax call, string newName, SemanticModel? model, CancellationToken cancellationToken)
    {
        if (NameSyntaxOf(call) is not { } name || model is null)
        {
            return null;
        }

        var type = model.GetTypeInfo(call, cancellationToken);
        ExpressionSyntax outer = call;
        while (outer.Parent is ParenthesizedExpressionSyntax parenthesized)
        {
            outer = parenthesized;
        }

        var keepsItsType = (outer.Parent is MemberAccessExpressionSyntax { Expression: var receiver } && receiver == outer)
                           || (IsVarInitializer(outer) && OnlyCalled((VariableDeclaratorSyntax)outer.Parent!.Parent!, model, cancellationToken));
        if (!keepsItsType && type.Type is { } created && created.Name == name.Identifier.ValueText
            && SymbolEqualityComparer.Default.Equals(type.ConvertedType, created))
        {
            return null;
        }

        return call.ReplaceNode(name, SyntaxFactory.IdentifierName(newName).WithTriviaFrom(name));
    }

    /// <summary>
    /// True when every read of the local <paramref name="declarator"/> declares is <c>local.call(...)</c> or <c>local.forward(...)</c>:
    /// it never flows into a variable, field or argument typed with the old concrete type.
    /// </summary>
    private static bool OnlyCalled(VariableDeclaratorSyntax declarator, SemanticModel model, CancellationToken cancellationToken)
    {
        var local = model.GetDeclaredSymbol(declarator, cancellationToken);
        var scope = declarator.FirstAncestorOrSelf<BlockSyntax>() ?? (SyntaxNode?)declarator.FirstAncestorOrSelf<CompilationUnitSyntax>();
        if (local is null || scope is null)
        {
            return false;
        }

        foreach (var identifier in scope.DescendantNodes().OfType<IdentifierNameSyntax>())
        {
            if (identifier.Identifier.ValueText != declarator.Identifier.ValueText
                || !SymbolEqualityComparer.Default.Equals(model.GetSymbolInfo(identifier, cancellationToken).Symbol, local))
            {
                continue;
            }

            if (identifier.Parent is not MemberAccessExpressionSyntax { Name.Identifier.ValueText: "call" or "forward" } access || access.Expression != identifier
                || access.Parent is not InvocationExpressionSyntax)
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>True when <paramref name="expression"/> initialises a <c>var</c> local (whose type then follows the new creation).</summary>
    private static bool IsVarInitializer(ExpressionSyntax expression)
        => expression.Parent is EqualsValueClauseSyntax { Parent: VariableDeclaratorSyntax { Parent: VariableDeclarationSyntax { Type.IsVar: true } } };

    /// <summary><c>kl_div(p, q)</c> → <c>kl_div(p, q, log_target: false)</c>; an explicit <c>true</c> (named or positional) becomes <c>false</c>.</summary>
    private static InvocationExpressionSyntax? WithLogTargetFalse(InvocationExpressionSyntax call, SemanticModel? model, CancellationToken cancellationToken)
        => model?.GetSymbolInfo(call, cancellationToken).Symbol is IMethodSymbol method ? BooleanArgument.SetFalse(call, method, "log_target") : null;
}
