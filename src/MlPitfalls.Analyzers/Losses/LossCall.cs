using System.Threading;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Operations;
using MlPitfalls.Analyzers.Infrastructure;

namespace MlPitfalls.Analyzers.Losses;

/// <summary>The losses the loss-pairing rules know, by what they expect their input to be.</summary>
internal enum LossKind
{
    /// <summary><c>nn.CrossEntropyLoss</c> / <c>cross_entropy</c>: raw logits (applies log_softmax itself).</summary>
    CrossEntropy,

    /// <summary><c>nn.NLLLoss</c> / <c>nll_loss</c>: log-probabilities.</summary>
    NegativeLogLikelihood,

    /// <summary><c>nn.BCELoss</c> / <c>binary_cross_entropy</c>: probabilities in [0, 1].</summary>
    BinaryCrossEntropy,

    /// <summary><c>nn.BCEWithLogitsLoss</c> / <c>binary_cross_entropy_with_logits</c>: raw logits (applies sigmoid itself).</summary>
    BinaryCrossEntropyWithLogits,

    /// <summary><c>nn.KLDivLoss</c> / <c>kl_div</c>: log-probabilities as input; the target in log space unless <c>log_target</c> is false.</summary>
    KullbackLeibler,
}

/// <summary>
/// A call that computes one of the known losses: <c>criterion.call(input, target)</c> / <c>.forward(...)</c> on a loss
/// module, or <c>functional.cross_entropy(input, target, ...)</c>. Arguments are matched by parameter, so named and
/// reordered arguments are read right.
/// </summary>
internal sealed class LossCall
{
    private readonly System.Lazy<IOperation?> _moduleCreation;
    private readonly bool? _logTarget;

    private LossCall(LossKind kind, IInvocationOperation invocation, IOperation input, IOperation target, string display, System.Lazy<IOperation?> moduleCreation, bool? logTarget)
    {
        Kind = kind;
        Invocation = invocation;
        Input = input;
        Target = target;
        Display = display;
        _moduleCreation = moduleCreation;
        _logTarget = logTarget;
    }

    private static readonly System.Lazy<IOperation?> NoCreation = new(() => null);

    public LossKind Kind { get; }

    public IInvocationOperation Invocation { get; }

    /// <summary>The predictions argument (<c>input</c>).</summary>
    public IOperation Input { get; }

    /// <summary>The labels or target distribution argument.</summary>
    public IOperation Target { get; }

    /// <summary>How messages name the loss: <c>CrossEntropyLoss 'criterion'</c> or <c>cross_entropy</c>.</summary>
    public string Display { get; }

    /// <summary>
    /// For the module form, the expression that created the loss module, when known (<c>nn.KLDivLoss()</c>). Found
    /// through the composition model the first time a rule asks (a diagnostic's fix, KL divergence's <c>log_target</c>),
    /// not for every loss call.
    /// </summary>
    public IOperation? ModuleCreation => _moduleCreation.Value;

    /// <summary>For KL divergence: whether the target is read in log space (true, false, or null when not known).</summary>
    public bool? LogTarget
        => Kind == LossKind.KullbackLeibler && !Invocation.TargetMethod.IsStatic // the module form: as the module was created
            ? ModuleCreation is IInvocationOperation creation ? LogTargetOf(creation) : null
            : _logTarget;

    /// <summary>
    /// False when <paramref name="method"/>'s name alone rules out a loss call (most calls the rules see): only a
    /// <c>call</c>/<c>forward</c> or a functional loss's name is worth looking at further.
    /// </summary>
    public static bool MayBeLoss(IMethodSymbol method)
        => method.Name is "call" or "forward" or "cross_entropy" or "nll_loss" or "binary_cross_entropy" or "binary_cross_entropy_with_logits" or "kl_div";

    /// <summary>The loss <paramref name="invocation"/> computes, or null when it is no known loss.</summary>
    public static LossCall? Recognize(IInvocationOperation invocation, AnalysisServices services, CancellationToken cancellationToken)
    {
        var torch = services.Torch;
        var method = invocation.TargetMethod;
        LossKind? functional = method.IsStatic
            ? method.Name switch
            {
                "cross_entropy" => LossKind.CrossEntropy,
                "nll_loss" => LossKind.NegativeLogLikelihood,
                "binary_cross_entropy" => LossKind.BinaryCrossEntropy,
                "binary_cross_entropy_with_logits" => LossKind.BinaryCrossEntropyWithLogits,
                "kl_div" => LossKind.KullbackLeibler,
                _ => null,
            }
            : null;
        if (functional is { } kind && SymbolEqualityComparer.Default.Equals(method.ContainingType, torch.Functional))
        {
            if (Argument(invocation, "input") is not { } input || Argument(invocation, "target") is not { } target)
            {
                return null;
            }

            return new LossCall(kind, invocation, input, target, method.Name, NoCreation, kind == LossKind.KullbackLeibler ? LogTargetOf(invocation) : null);
        }

        if (torch.IsModuleInvocation(method) && invocation.Instance is { } receiver && invocation.Arguments.Length == 2)
        {
            // Only a receiver whose declared type could hold a loss (a loss type, or an abstract base such as
            // Loss<Tensor, Tensor, Tensor>) is worth asking the composition model about; every other module call is not a loss.
            var staticName = torch.Losses.NameOf(receiver.Type);
            if (staticName is null && receiver.Type is not INamedTypeSymbol { IsAbstract: true })
            {
                return null;
            }

            // A receiver typed as a loss needs the composition model only for where the module was created, asked lazily;
            // an abstract one needs it to know which loss it holds at all.
            var module = staticName is null ? services.Modules.Describe(receiver, cancellationToken) : null;
            var typeName = staticName ?? torch.Losses.NameOf(module?.Type);
            LossKind? moduleKind = typeName switch
            {
                "CrossEntropyLoss" => LossKind.CrossEntropy,
                "NLLLoss" => LossKind.NegativeLogLikelihood,
                "BCELoss" => LossKind.BinaryCrossEntropy,
                "BCEWithLogitsLoss" => LossKind.BinaryCrossEntropyWithLogits,
                "KLDivLoss" => LossKind.KullbackLeibler,
                _ => null,
            };

            if (moduleKind is null)
            {
                return null;
            }

            var receiverText = receiver.Syntax.ToString();
            var display = !receiver.IsSimpleReference() || receiverText.Length > 40 ? typeName! : $"{typeName} '{receiverText}'";
            var creation = staticName is null ? Known(module?.Creation) : CreationOf(receiver, services);
            return new LossCall(moduleKind.Value, invocation, invocation.Arguments[0].Value, invocation.Arguments[1].Value, display, creation, logTarget: null);
        }

        return null;
    }

    // Methods of their own so that their closures are allocated only for a loss call, not on every call Recognize sees.
    private static System.Lazy<IOperation?> Known(IOperation? creation) => new(() => creation);

    // Not the caller's cancellation token: the loss call is shared by the rules (see LossPairingAnalyzer), and a token
    // one rule's callback was cancelled with must not fail another's. The composition model is bounded.
    private static System.Lazy<IOperation?> CreationOf(IOperation receiver, AnalysisServices services)
        => new(() => services.Modules.Describe(receiver, CancellationToken.None)?.Creation, LazyThreadSafetyMode.PublicationOnly);

    private static IOperation? Argument(IInvocationOperation invocation, string parameterName)
    {
        foreach (var argument in invocation.Arguments)
        {
            if (argument.Parameter?.Name == parameterName)
            {
                return argument.Value;
            }
        }

        return null;
    }

    /// <summary><c>log_target</c> as the call gives it: a constant, the parameter's default when omitted, or null when computed.</summary>
    private static bool? LogTargetOf(IInvocationOperation call) => call.BooleanArgument("log_target");
}
