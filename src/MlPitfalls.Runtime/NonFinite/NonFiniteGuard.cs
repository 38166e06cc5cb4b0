using System;
using System.Collections.Generic;
using System.Linq;
using System.Reflection;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using MlPitfalls.Runtime.Internal;
using TorchSharp;

namespace MlPitfalls.Runtime.NonFinite
{
    /// <summary>What a guard does when it finds NaN/Inf.</summary>
    public enum NonFiniteAction
    {
        /// <summary>Throw <see cref="NonFiniteValueException"/> at the first detection (default).</summary>
        Throw,

        /// <summary>Add a <see cref="NonFiniteEvent"/> to <see cref="NonFiniteGuard.Events"/> and continue.</summary>
        Record,
    }

    /// <summary>When a guard reads its forward-pass checks back from the device.</summary>
    public enum NonFiniteSyncMode
    {
        /// <summary>
        /// Default. Each checked module output is reduced on its device (no host read) and the results are read back once, when
        /// the root module returns: one synchronisation per checked forward pass, so a CUDA pipeline is not stalled at every module.
        /// Only when that read finds NaN/Inf does the guard look at the retained results to find where they started, with the same
        /// message as <see cref="PerModule"/>. The exception is then thrown when the root module returns, after the whole pass ran.
        /// </summary>
        OncePerPass,

        /// <summary>
        /// Each checked module output is read back as soon as the module returns (one synchronisation per module), and the guard
        /// throws at the first module whose output is non-finite, before any later module runs.
        /// </summary>
        PerModule,

        /// <summary>
        /// One synchronisation per checked training step. Like <see cref="OncePerPass"/>, but the forward pass's results stay on
        /// the device when the root module returns; <see cref="NonFiniteGuard.Check"/> adds the loss's and
        /// <see cref="NonFiniteGuard.CheckGradients"/> (or <see cref="NonFiniteGuard.Backward"/>) the gradients', and that call makes
        /// the step's one read, reporting the forward pass's origin first, then the loss, then the gradients, with the same messages.
        /// The exception for a NaN born in the forward pass therefore comes out of <c>Backward</c>/<c>CheckGradients</c>, before
        /// <c>optimizer.step()</c>. A step that never checks its gradients is read at the next root call, <c>BeginStep</c>,
        /// <c>Check</c> outside a step, or <c>Flush</c>. For training loops that call <c>guard.Backward(loss)</c> every step.
        /// </summary>
        OncePerStep,
    }

    /// <summary>Options for <see cref="NonFiniteGuard"/>.</summary>
    public sealed class NonFiniteGuardOptions
    {
        private int _checkEvery = 1;

        /// <summary>Check one step in N (1 = every step). Unchecked steps cost one boolean test per module call.
        /// Read at the start of each step, so it can be changed while the guard is attached.</summary>
        /// <exception cref="ArgumentOutOfRangeException">The value is less than 1.</exception>
        public int CheckEvery
        {
            get => _checkEvery;
            set => _checkEvery = value >= 1
                ? value
                : throw new ArgumentOutOfRangeException(nameof(value), value, $"{nameof(CheckEvery)} is the N of 'check one step in N' and must be at least 1 (1 checks every step).");
        }

        /// <summary>
        /// Read the forward-pass checks back once per pass (default) or after every module. Read at the start of each pass.
        /// Modules called outside a pass of the root module (<c>model.head.call(x)</c>) are always checked per module.
        /// </summary>
        public NonFiniteSyncMode SyncMode { get; set; } = NonFiniteSyncMode.OncePerPass;

        /// <summary>Throw (default) or record and continue.</summary>
        public NonFiniteAction OnNonFinite { get; set; } = NonFiniteAction.Throw;

        /// <summary>Also check the tensor(s) given to the root module (catches NaN in the data itself). Default true.</summary>
        public bool CheckModelInput { get; set; } = true;

        /// <summary>Run <see cref="NonFiniteGuard.Backward"/> under <c>torch.autograd.detect_anomaly()</c> on checked steps,
        /// which names the autograd function that produced NaN in backward. Slow; off by default.</summary>
        public bool DetectAnomalyInBackward { get; set; }
    }

    /// <summary>
    /// Watches a model for NaN/Inf. Attaching registers forward hooks on every module, the root included; the first module
    /// whose output is non-finite while its input was finite is reported as the origin. Dispose to remove every hook.
    /// </summary>
    /// <remarks>
    /// Hooks run only when a module is invoked with <c>call()</c>. A custom <c>forward</c> that calls <c>child.forward(x)</c>
    /// hides that child; <see cref="Coverage"/> lists what was never observed.
    /// Steps are counted from calls of the root module unless <see cref="BeginStep"/> is used.
    /// By default (<see cref="NonFiniteSyncMode.OncePerPass"/>) a checked forward pass reads back from the device once, when the
    /// root module returns, and a detection is thrown (or recorded) then; see <see cref="NonFiniteGuardOptions.SyncMode"/>.
    /// </remarks>
    public sealed class NonFiniteGuard : IDisposable
    {
        private readonly torch.nn.Module _root;
        private readonly List<(string Path, torch.nn.Module Module)> _modules;
        private readonly bool[] _observed;
        private readonly bool[] _inspected;
        private readonly bool[] _callable;
        private readonly bool[] _onlyChainsChildren;
        // The nearest callable ancestor of each module (-1 for the root): a module seen running means its ancestors ran too,
        // even when their own post-hook never runs because the guard threw inside them.
        private readonly int[] _callableParent;
        private int _completedPasses;
        // Per pass: which modules were seen running (a pass number per module) and in which order, so that a NaN first seen
        // at a module's input can be traced to what ran uninspected, or not through call(), since the last finite output.
        private readonly int[] _seenInPass;
        private readonly int[] _seenOrder;
        private int _pass;
        private int _order;
        private string? _stoppedAt;
        private long _stoppedStep;
        private readonly List<Action> _removers = new();
        private readonly List<NonFiniteEvent> _events = new();
        private bool _manualSteps;
        private bool _active = true;
        private bool _passHasEvent;
        private int _lastFinite = -1;
        // The tensor most recently found finite (a module output, or the model input), compared by reference only: a Sequential
        // returning its last child's output is not re-checked, and an input that was finite here but is not any more was changed in place.
        private torch.Tensor? _lastFiniteTensor;
        private bool _disposed;

        // OncePerPass: a checked pass of the root is open. Module calls are logged (with a device-side witness per output and
        // detached aliases of the tensors a message needs) and read back once, when the root returns (see Resolve).
        private bool _deferring;
        private readonly List<PendingCall> _calls = new();
        private readonly List<(string Which, torch.Tensor Values, int Witness)> _pendingInputs = new();
        private torch.Tensor? _pendingModelInput;
        private readonly List<torch.Tensor> _witnesses = new();
        // Original tensor object -> a detached alias of it: the alias keeps the values readable after Sequential or a `using`
        // disposes the original; the original is kept only for reference comparisons.
        private readonly Dictionary<torch.Tensor, torch.Tensor> _aliases = new(ReferenceEqualityComparer.Instance);
        // The last logged call with checked outputs, and its first output: the deferred counterpart of _lastFinite(Tensor) at hook
        // time. Up to the first non-finite call (the only part the failure path replays) the two are the same.
        private int _lastChecked = -1;
        private torch.Tensor? _lastCheckedTensor;

        // OncePerStep: the root has returned but its witnesses (and those of losses checked since) are not read yet; the
        // gradient check makes the step's one read (see SettleStep).
        private bool _held;
        private readonly List<(string Name, torch.Tensor Values, int Witness)> _heldChecks = new();

        /// <summary>One post-hook call logged during a deferred pass.</summary>
        private sealed class PendingCall
        {
            public PendingCall(int module, int order)
            {
                Module = module;
                Order = order;
            }

            public int Module { get; }

            /// <summary>The call's place in the pass (the value <c>_seenOrder</c> had right after it).</summary>
            public int Order { get; }

            /// <summary>A Sequential returning the output its last child produced: finite exactly when that child's output was.</summary>
            public bool ChainsLast { get; set; }

            public torch.Tensor? FirstOutput { get; set; }

            public torch.Tensor?[] Inputs { get; set; } = Array.Empty<torch.Tensor?>();

            /// <summary>Per input: the index of a witness queued when the call returned (-1: no tensor, or a dtype that cannot hold NaN/Inf).</summary>
            public int[] InputWitnesses { get; set; } = Array.Empty<int>();

            /// <summary>Checked output tensors: values (an alias, for the counts of a message) and the index of their witness, queued when
            /// the call returned (-1: the dtype cannot hold NaN/Inf). Finiteness is decided by the witness only: the alias shows the values
            /// as they are at the end of the pass, after any later in-place change.</summary>
            public List<(torch.Tensor Values, int Witness)> Outputs { get; } = new();
        }

        private NonFiniteGuard(torch.nn.Module root, NonFiniteGuardOptions options)
        {
            _root = root;
            Options = options;
            _modules = ModuleNames.All(root);
            _observed = new bool[_modules.Count];
            _inspected = new bool[_modules.Count];
            _callable = new bool[_modules.Count];
            _onlyChainsChildren = new bool[_modules.Count];
            _seenInPass = new int[_modules.Count];
            _seenOrder = new int[_modules.Count];
            for (int i = 0; i < _modules.Count; i++) Hook(i);
            _callableParent = new int[_modules.Count];
            var byPath = new Dictionary<string, int>(StringComparer.Ordinal);
            for (int i = 0; i < _modules.Count; i++) byPath[_modules[i].Path] = i;
            for (int i = 0; i < _modules.Count; i++)
            {
                _callableParent[i] = -1;
                for (var parent = _modules[i].Path; parent.Length > 0;)
                {
                    parent = ModuleNames.ParentOf(parent);
                    if (byPath.TryGetValue(parent, out var index) && _callable[index])
                    {
                        _callableParent[i] = index;
                        break;
                    }
                }
            }
        }

        /// <summary>The options in effect.</summary>
        public NonFiniteGuardOptions Options { get; }

        /// <summary>The current step (1-based; 0 before the first forward pass).</summary>
        public long Step { get; private set; }

        /// <summary>True when the current step is checked (see <see cref="NonFiniteGuardOptions.CheckEvery"/>).</summary>
        public bool IsCheckingThisStep => _active;

        /// <summary>Detections recorded in <see cref="NonFiniteAction.Record"/> mode (in throw mode: the one that was thrown).</summary>
        public IReadOnlyList<NonFiniteEvent> Events => _events;

        /// <summary>Attaches a guard to <paramref name="model"/> and every module inside it.</summary>
        public static NonFiniteGuard Attach(torch.nn.Module model, NonFiniteGuardOptions? options = null)
        {
            if (model is null) throw new ArgumentNullException(nameof(model));
            TorchLoad.EnsureLoaded();
            return new NonFiniteGuard(model, options ?? new NonFiniteGuardOptions());
        }

        /// <summary>
        /// Starts a step explicitly (call once per training iteration before the forward pass). After the first call the guard
        /// stops counting steps from root-module calls, so evaluation passes or several forward calls per step do not shift the count.
        /// </summary>
        public void BeginStep()
        {
            _manualSteps = true;
            if (_deferring || _held) Resolve(); // a pass whose forward() threw, or a step that never checked its gradients: read it, for the step it belongs to
            DiscardPending();
            Step++;
            _active = (Step - 1) % Options.CheckEvery == 0;
            _passHasEvent = false;
            _lastFinite = -1;
            _lastFiniteTensor = null;
        }

        /// <summary>
        /// Checks a loss or metric (or any tensor) on checked steps. Use it right after computing the loss: when the model's
        /// outputs were finite, a non-finite loss points at the loss computation itself.
        /// </summary>
        public void Check(torch.Tensor tensor, [CallerArgumentExpression(nameof(tensor))] string? name = null)
        {
            if (tensor is null) throw new ArgumentNullException(nameof(tensor), $"'{name ?? "tensor"}' is null.");
            if (_held && _active)
            {
                // OncePerStep, after the pass: queued with the pass's witnesses, read with the gradients.
                _heldChecks.Add((name ?? "tensor", tensor.detach().DetachFromDisposeScope(), AddWitness(tensor)));
                return;
            }

            // Called from inside a forward pass: settle what the pass has found so far (the rest of it is checked per module).
            if (_deferring || _held) Resolve();
            // One origin per forward pass: when this pass already reported where the NaN/Inf started (in record mode the
            // pass went on), a loss computed from it is non-finite for that same reason and is not a second event.
            if (!_active || _passHasEvent) return;
            // Only claim the model is innocent when this pass was actually checked and found finite.
            var e = NonFiniteChecks.CheckTensor(tensor, name ?? "tensor", Step, LossContext());
            if (e is not null) Report(e);
        }

        /// <summary>
        /// After <c>backward()</c>: on checked steps, finds every parameter whose gradient holds NaN/Inf and reports them all
        /// (TorchSharp 0.107.0 has no backward hooks, so gradients are inspected here).
        /// </summary>
        public void CheckGradients()
        {
            if (_held && _active)
            {
                SettleStep();
                return;
            }

            if (_deferring || _held) Resolve();
            if (!_active) return;
            var e = NonFiniteChecks.CheckGradients(_root, Step);
            if (e is not null) Report(e);
        }

        /// <summary>
        /// Runs <c>loss.backward()</c> and then <see cref="CheckGradients"/>. With <see cref="NonFiniteGuardOptions.DetectAnomalyInBackward"/>,
        /// checked steps run under <c>torch.autograd.detect_anomaly()</c>, and an anomaly is reported with the autograd function's name.
        /// </summary>
        public void Backward(torch.Tensor loss)
        {
            if (loss is null) throw new ArgumentNullException(nameof(loss));
            if (_active && Options.DetectAnomalyInBackward)
            {
                try
                {
                    using (torch.autograd.detect_anomaly())
                    {
                        loss.backward();
                    }
                }
                catch (ExternalException ex) when (ex.Message.Contains("nan values", StringComparison.OrdinalIgnoreCase))
                {
                    var first = ex.Message.Split('\n')[0].Trim();
                    var message =
                        $"NaN appeared in the backward pass{NonFiniteEvent.StepText(Step)}: {first}{Environment.NewLine}" +
                        "If the forward values were finite (the guard reports them when they are not), a derivative is undefined at the values used: " +
                        "sqrt/pow at 0, log at 0, division by a value that is zero, or torch.where/masking that computes NaN in the branch it discards " +
                        "(the discarded branch still gets a zero gradient multiplied by NaN). Clamp the input of that operation, or add an epsilon.";
                    Report(new NonFiniteEvent(NonFiniteKind.Backward, Step, first, "autograd", Array.Empty<long>(), "", 0, 0, 0, false, null,
                        Array.Empty<string>(), Array.Empty<NonFiniteGradient>(), message), ex);
                    return;
                }
            }
            else
            {
                loss.backward();
            }
            CheckGradients();
        }

        /// <summary>Which modules the guard observed, which it could not inspect, and which never ran through <c>call()</c>.</summary>
        public GuardCoverage Coverage()
        {
            var observed = new List<string>();
            var notInspected = new List<UnobservedModule>();
            var never = new List<UnobservedModule>();
            var byPath = new Dictionary<string, int>(StringComparer.Ordinal);
            for (int i = 0; i < _modules.Count; i++) byPath[_modules[i].Path] = i;
            bool anyPass = _observed.Any(o => o);

            for (int i = 0; i < _modules.Count; i++)
            {
                var (path, module) = _modules[i];
                var display = ModuleNames.Display(path, module);
                var type = module.GetType().Name;
                if (!_callable[i]) continue; // containers (ModuleList, ModuleDict) are never called themselves
                if (_observed[i])
                {
                    observed.Add(display);
                    if (!_inspected[i]) notInspected.Add(new UnobservedModule(display, type, "its output holds no tensor or tuple of tensors, so the guard saw the call but not its values"));
                    continue;
                }
                string reason;
                if (!anyPass)
                {
                    reason = "no forward pass has run through call() since the guard was attached";
                }
                else if (_completedPasses == 0 && _stoppedAt is not null)
                {
                    reason = $"not reached: the guard stopped the only forward pass so far (step {_stoppedStep}) at {_stoppedAt}, before this module ran";
                }
                else
                {
                    // Find the nearest callable ancestor.
                    var parent = path;
                    int pi = -1;
                    while (parent.Length > 0)
                    {
                        parent = ModuleNames.ParentOf(parent);
                        if (byPath.TryGetValue(parent, out var idx) && _callable[idx]) { pi = idx; break; }
                    }
                    if (pi >= 0 && _observed[pi])
                    {
                        var pd = ModuleNames.Display(_modules[pi].Path, _modules[pi].Module);
                        reason = $"'{pd}' ran, but never invoked this module through call(): its forward() calls it with .forward(...) (which bypasses hooks) or does not use it";
                    }
                    else if (pi >= 0)
                    {
                        reason = $"its parent '{ModuleNames.Display(_modules[pi].Path, _modules[pi].Module)}' was never observed either";
                    }
                    else
                    {
                        reason = "the root module was never invoked through call() (model.forward(x) bypasses every hook of the root)";
                    }
                }
                never.Add(new UnobservedModule(display, type, reason));
            }
            return new GuardCoverage(observed, notInspected, never);
        }

        /// <summary>Removes every hook the guard registered.</summary>
        public void Dispose()
        {
            if (_disposed) return;
            _disposed = true;
            foreach (var remove in _removers) remove();
            _removers.Clear();
            DiscardPending();
            _lastFiniteTensor = null;
        }

        private void Hook(int i)
        {
            var module = _modules[i].Module;
            bool isRoot = i == 0;
            // Only TorchSharp's own Sequential is known to return its last child's output untouched; a custom forward may
            // change that tensor in place (h.log_()) before returning it, so its output is always checked.
            _onlyChainsChildren[i] = module.GetType() == typeof(TorchSharp.Modules.Sequential);
            switch (module)
            {
                case torch.nn.Module<torch.Tensor, torch.Tensor> m1:
                {
                    _callable[i] = true;
                    _inspected[i] = true;
                    if (isRoot)
                    {
                        var pre = m1.register_forward_pre_hook((_, input) => { OnRootPre(input, null); return null!; });
                        _removers.Add(pre.remove);
                    }
                    var post = m1.register_forward_hook((_, input, output) => { OnPost(i, input, null, output); return null!; });
                    _removers.Add(post.remove);
                    break;
                }
                case torch.nn.Module<torch.Tensor, torch.Tensor, torch.Tensor> m2:
                {
                    _callable[i] = true;
                    _inspected[i] = true;
                    if (isRoot)
                    {
                        var pre = m2.register_forward_pre_hook((_, a, b) => { OnRootPre(a, b); return null; });
                        _removers.Add(pre.remove);
                    }
                    var post = m2.register_forward_hook((_, a, b, output) => { OnPost(i, a, b, output); return null!; });
                    _removers.Add(post.remove);
                    break;
                }
                default:
                    if (!HookTyped(i, module, isRoot)) HookByReflection(i, module, isRoot);
                    break;
            }
        }

        /// <summary>
        /// Any other <c>Module&lt;..., TResult&gt;</c> whose output holds tensors (a tuple for GRU/LSTM, several inputs): registers a
        /// typed post-hook built at attach time that hands inputs and output to <see cref="OnPostAny"/> and returns the output
        /// unchanged (TorchSharp replaces the result with whatever a hook returns that is not null, and a value tuple never is).
        /// </summary>
        private bool HookTyped(int i, torch.nn.Module module, bool isRoot)
        {
            var register = module.GetType().GetMethods(BindingFlags.Public | BindingFlags.Instance).FirstOrDefault(mi =>
                mi.Name == "register_forward_hook" && mi.GetParameters() is { Length: 1 } ps
                && ps[0].ParameterType.IsGenericType && ps[0].ParameterType.Name.StartsWith("Func`", StringComparison.Ordinal));
            if (register is null) return false;
            var delegateType = register.GetParameters()[0].ParameterType;
            var invoke = delegateType.GetMethod("Invoke")!;
            var parameters = invoke.GetParameters().Select(p => System.Linq.Expressions.Expression.Parameter(p.ParameterType, p.Name)).ToArray();
            var output = parameters[parameters.Length - 1];
            if (invoke.ReturnType != output.Type || !MayHoldTensors(output.Type)) return false;
            var inputs = parameters.Skip(1).Take(parameters.Length - 2)
                .Select(p => (System.Linq.Expressions.Expression)System.Linq.Expressions.Expression.Convert(p, typeof(object)));
            var body = System.Linq.Expressions.Expression.Block(
                System.Linq.Expressions.Expression.Call(
                    System.Linq.Expressions.Expression.Constant(this),
                    typeof(NonFiniteGuard).GetMethod(nameof(OnPostAny), BindingFlags.NonPublic | BindingFlags.Instance)!,
                    System.Linq.Expressions.Expression.Constant(i),
                    System.Linq.Expressions.Expression.NewArrayInit(typeof(object), inputs),
                    System.Linq.Expressions.Expression.Convert(output, typeof(object))),
                output);
            var hook = System.Linq.Expressions.Expression.Lambda(delegateType, body, parameters).Compile();
            AddReflectedHook(register, module, hook);
            _callable[i] = true;
            _inspected[i] = true;
            if (isRoot)
            {
                var registerPre = module.GetType().GetMethods(BindingFlags.Public | BindingFlags.Instance).FirstOrDefault(mi =>
                    mi.Name == "register_forward_pre_hook" && mi.GetParameters() is { Length: 1 } ps && ps[0].ParameterType == typeof(Action<torch.nn.Module>));
                if (registerPre is not null) AddReflectedHook(registerPre, module, (Action<torch.nn.Module>)(_ => OnRootPre(null, null)));
            }
            return true;
        }

        /// <summary>True for <c>Tensor</c> and tuples with a tensor among their elements.</summary>
        private static bool MayHoldTensors(Type type)
        {
            if (typeof(torch.Tensor).IsAssignableFrom(type)) return true;
            var underlying = Nullable.GetUnderlyingType(type) ?? type;
            return typeof(ITuple).IsAssignableFrom(underlying) && underlying.IsGenericType && underlying.GetGenericArguments().Any(MayHoldTensors);
        }

        /// <summary>Other signatures: observe the call (for coverage and step counting) through the Action&lt;Module&gt; overloads.</summary>
        private void HookByReflection(int i, torch.nn.Module module, bool isRoot)
        {
            var methods = module.GetType().GetMethods(BindingFlags.Public | BindingFlags.Instance);
            MethodInfo? Find(string name) => methods.FirstOrDefault(mi =>
                mi.Name == name && mi.GetParameters() is { Length: 1 } ps && ps[0].ParameterType == typeof(Action<torch.nn.Module>));
            var register = Find("register_forward_hook");
            if (register is null) return; // not a callable module
            _callable[i] = true;
            AddReflectedHook(register, module, (Action<torch.nn.Module>)(_ => OnPostUninspected(i)));
            if (isRoot)
            {
                var registerPre = Find("register_forward_pre_hook");
                if (registerPre is not null) AddReflectedHook(registerPre, module, (Action<torch.nn.Module>)(_ => OnRootPre(null, null)));
            }
        }

        private void AddReflectedHook(MethodInfo register, torch.nn.Module module, Delegate hook)
        {
            var remover = register.Invoke(module, new object[] { hook });
            var remove = remover?.GetType().GetMethod("remove", Type.EmptyTypes);
            if (remover is not null && remove is not null) _removers.Add(() => remove.Invoke(remover, null));
        }

        private void OnRootPre(torch.Tensor? input, torch.Tensor? secondInput)
        {
            _observed[0] = true; // the root is running through call(), whether or not its post-hook will run
            // A deferred pass still open here is either the outer pass of a root called inside its own forward(), or a pass whose
            // forward() threw before the root returned. Either way what it logged is read now, before the step changes: PerModule
            // would have reported it when it happened (and may then have prevented the exception). A held step (OncePerStep) that
            // never checked its gradients is read here too.
            if (_deferring || _held) Resolve();
            _pass++;
            if (!_manualSteps)
            {
                Step++;
                _active = (Step - 1) % Options.CheckEvery == 0;
            }
            _passHasEvent = false;
            _lastFinite = -1;
            _lastFiniteTensor = null;
            DiscardPending();
            if (!_active) return;
            if (Options.SyncMode is NonFiniteSyncMode.OncePerPass or NonFiniteSyncMode.OncePerStep)
            {
                _deferring = true;
                if (!Options.CheckModelInput) return;
                LogModelInput(input, "input");
                LogModelInput(secondInput, "second input");
                _pendingModelInput = input;
                return;
            }
            if (!Options.CheckModelInput) return;
            if (input is not null && !Finite.AllFinite(input))
            {
                ReportModelInput(input, "input");
                return;
            }
            if (secondInput is not null && !Finite.AllFinite(secondInput)) ReportModelInput(secondInput, "second input");
            if (!_passHasEvent) _lastFiniteTensor = input;
        }

        private void LogModelInput(torch.Tensor? input, string which)
        {
            if (input is null) return;
            _pendingInputs.Add((which, AliasOf(input), AddWitness(input)));
        }

        /// <summary>
        /// The counts of a deferred message that are all zero although the witness queued when the module returned was not finite:
        /// an in-place operation later in the same pass overwrote the NaN/Inf (nan_to_num_(), masked_fill_(), a reused buffer).
        /// </summary>
        private const string ChangedLaterNote =
            " as the end of the forward pass left them: the values were non-finite when it returned and were overwritten in place later in the pass " +
            "(nan_to_num_(), masked_fill_(), a reused buffer); SyncMode = PerModule shows the counts as they were";

        /// <summary>Reports the non-finite model input whose values are <paramref name="values"/> (known to be non-finite: read now, or
        /// from the witness queued when the pass began when <paramref name="deferred"/>).</summary>
        private void ReportModelInput(torch.Tensor values, string which, bool deferred = false)
        {
            var shape = values.shape;
            var dtype = values.dtype.ToString();
            var counts = Finite.Count(values);
            var e = (NaNCount: counts.NaN, PosInfCount: counts.PosInf, NegInfCount: counts.NegInf, Shape: shape, DType: dtype);
            var note = deferred && counts.NaN + counts.PosInf + counts.NegInf == 0 ? ChangedLaterNote : "";
            var message =
                $"The {which} given to the model '{_root.GetType().Name}' is already non-finite{NonFiniteEvent.StepText(Step)}: " +
                $"{NonFiniteEvent.Counts(e.NaNCount, e.PosInfCount, e.NegInfCount, e.Shape)}{note}, shape {TensorText.Shape(e.Shape)}, {e.DType}.{Environment.NewLine}" +
                "The NaN/Inf is in the data, not the model: check the loading and normalisation of this batch (division by a zero std, log of 0, missing values parsed as NaN).";
            _passHasEvent = true;
            if (Options.OnNonFinite == NonFiniteAction.Throw)
            {
                _stoppedAt = $"the non-finite model {which}";
                _stoppedStep = Step;
            }

            Report(new NonFiniteEvent(NonFiniteKind.ModelInput, Step, "model " + which, "Tensor", e.Shape, e.DType, e.NaNCount, e.PosInfCount, e.NegInfCount,
                true, null, Array.Empty<string>(), Array.Empty<NonFiniteGradient>(), message));
        }

        private void MarkObserved(int i)
        {
            _seenInPass[i] = _pass;
            _seenOrder[i] = ++_order;
            for (var m = i; m >= 0 && !_observed[m]; m = _callableParent[m]) _observed[m] = true;
            if (i == 0) _completedPasses++;
        }

        /// <summary>Marks the call observed and, during a deferred pass, logs it (for the candidates of a later message).</summary>
        private PendingCall? Observe(int i)
        {
            MarkObserved(i);
            if (!_deferring) return null;
            var call = new PendingCall(i, _seenOrder[i]);
            _calls.Add(call);
            return call;
        }

        private void OnPostUninspected(int i)
        {
            Observe(i);
            if (i == 0) EndPass();
        }

        private void OnPost(int i, torch.Tensor? input1, torch.Tensor? input2, torch.Tensor output)
        {
            var call = Observe(i);
            if (_active && output is not null)
            {
                if (call is not null) LogOutputs(call, i, input2 is null ? new[] { input1 } : new[] { input1, input2 }, new List<torch.Tensor> { output });
                else CheckNow(i, input1, input2, output);
            }
            if (i == 0) EndPass();
        }

        private void CheckNow(int i, torch.Tensor? input1, torch.Tensor? input2, torch.Tensor output)
        {
            // Inspected synchronously: Sequential disposes intermediate outputs right after the next module has run.
            if ((_onlyChainsChildren[i] && ReferenceEquals(output, _lastFiniteTensor) && IsAncestorOf(i, _lastFinite)) || Finite.AllFinite(output))
            {
                _lastFinite = i;
                _lastFiniteTensor = output;
                return;
            }
            var inputs = input2 is null ? new[] { input1 } : new[] { input1, input2 };
            ReportOutput(i, inputs, FiniteNow(inputs), output, null, _lastFinite, _lastFiniteTensor, SeenInThisPass());
        }

        /// <summary>
        /// The post-hook of a module of any other signature (several inputs, a tuple output such as GRU/LSTM's): every tensor of
        /// the output is checked, and every tensor among the inputs is considered when deciding where the NaN/Inf came from.
        /// </summary>
        private void OnPostAny(int i, object?[] inputs, object? output)
        {
            var call = Observe(i);
            if (_active)
            {
                var outputs = new List<torch.Tensor>();
                CollectTensors(output, outputs, 0);
                if (outputs.Count > 0)
                {
                    if (call is not null) LogOutputs(call, i, CollectInputs(inputs), outputs);
                    else CheckNow(i, inputs, outputs);
                }
            }
            if (i == 0) EndPass();
        }

        private void CheckNow(int i, object?[] inputs, List<torch.Tensor> outputs)
        {
            for (int k = 0; k < outputs.Count; k++)
            {
                if (!Finite.AllFinite(outputs[k]))
                {
                    var inputTensors = CollectInputs(inputs);
                    ReportOutput(i, inputTensors, FiniteNow(inputTensors), outputs[k], WhichOutput(k, outputs.Count), _lastFinite, _lastFiniteTensor, SeenInThisPass());
                    return;
                }
            }
            _lastFinite = i;
            _lastFiniteTensor = outputs[0];
        }

        /// <summary>Per tensor: finite now (one read each; only on the failure path of a per-module check). Null counts as finite.</summary>
        private static bool[] FiniteNow(torch.Tensor?[] tensors) => tensors.Select(t => t is null || Finite.AllFinite(t)).ToArray();

        private static torch.Tensor?[] CollectInputs(object?[] inputs)
        {
            var inputTensors = new List<torch.Tensor>();
            foreach (var input in inputs) CollectTensors(input, inputTensors, 0);
            return inputTensors.ToArray();
        }

        private static string? WhichOutput(int k, int count) => count > 1 ? $"element {k} of its {count}-tensor output" : null;

        /// <summary>Deferred counterpart of <see cref="CheckNow(int, torch.Tensor?, torch.Tensor?, torch.Tensor)"/>: queues a witness
        /// per output on the device and keeps what a message about this call would need. Nothing is read back here.</summary>
        private void LogOutputs(PendingCall call, int i, torch.Tensor?[] inputs, List<torch.Tensor> outputs)
        {
            if (outputs.Count == 1 && _onlyChainsChildren[i] && ReferenceEquals(outputs[0], _lastCheckedTensor) && IsAncestorOf(i, _lastChecked))
            {
                call.ChainsLast = true;
            }
            else
            {
                call.Inputs = inputs;
                // Whether each input is finite now, when the module returns (what PerModule reads here): a later in-place operation
                // of the pass (y.add_(h) after h = module(y)) must not make the origin look like it received NaN.
                foreach (var output in outputs) call.Outputs.Add((AliasOf(output), AddWitness(output)));
                var witnesses = new int[inputs.Length];
                for (int k = 0; k < inputs.Length; k++)
                {
                    if (inputs[k] is not { } input) witnesses[k] = -1;
                    else
                    {
                        // An in-place module (ReLU(inplace: true), x.log_()) returns its input object: the output's witness is the input's.
                        int same = outputs.FindIndex(o => ReferenceEquals(o, input));
                        witnesses[k] = same >= 0 ? call.Outputs[same].Witness : AddWitness(input);
                    }
                }
                call.InputWitnesses = witnesses;
            }
            call.FirstOutput = outputs[0];
            _lastChecked = i;
            _lastCheckedTensor = outputs[0];
        }

        private torch.Tensor AliasOf(torch.Tensor t)
        {
            if (_aliases.TryGetValue(t, out var alias)) return alias;
            alias = t.detach().DetachFromDisposeScope(); // a dispose scope inside a forward() must not take it before the pass ends
            _aliases.Add(t, alias);
            return alias;
        }

        private int AddWitness(torch.Tensor t)
        {
            var w = Finite.Witness(t);
            if (w is null) return -1;
            _witnesses.Add(w.DetachFromDisposeScope());
            return _witnesses.Count - 1;
        }

        /// <summary>
        /// Ends a deferred pass: one host read tells whether every witness is finite. Only when one is not, the log is replayed in
        /// execution order with the state the per-module guard would have had at each call, and the first non-finite call is reported
        /// through the same code (so with the same message) as in <see cref="NonFiniteSyncMode.PerModule"/>.
        /// </summary>
        private void EndPass()
        {
            if (_deferring && Options.SyncMode == NonFiniteSyncMode.OncePerStep)
            {
                // The pass is over (later module calls are checked on their own); its witnesses wait for the step's one read.
                _deferring = false;
                _held = true;
                return;
            }

            Resolve();
        }

        /// <summary>
        /// Reads what a deferred pass (and, with <see cref="NonFiniteSyncMode.OncePerStep"/>, the step so far) logged, and reports
        /// it. Nothing to do when nothing is pending. Call it in <c>OncePerStep</c> mode when a step ends without
        /// <see cref="CheckGradients"/> or <see cref="Backward"/> (an evaluation step), to be told about it now.
        /// </summary>
        public void Flush() => Resolve();

        private void Resolve()
        {
            if (!_deferring && !_held) return;
            _deferring = false;
            _held = false;
            try
            {
                ReadAndReport();
            }
            finally
            {
                DiscardPending();
            }
        }

        /// <summary>
        /// The one host read over every pending witness; when one is non-finite, reports the forward pass's origin, else the first
        /// non-finite checked loss. Returns the per-witness flags (null when all are finite) and whether something was reported.
        /// </summary>
        private (bool[]? Finite, bool Reported) ReadAndReport()
        {
            var finite = Finite.NonFiniteWitnesses(_witnesses);
            if (finite is null)
            {
                _lastFinite = _lastChecked;
                _lastFiniteTensor = _lastCheckedTensor;
                return (null, false);
            }

            var before = _events.Count;
            Replay(finite);
            if (!_passHasEvent) ReportHeldChecks(finite);
            return (finite, _events.Count > before);
        }

        /// <summary>Reports the first loss or tensor checked after the pass whose witness is non-finite, as <see cref="Check"/> would have.</summary>
        private void ReportHeldChecks(bool[] witnessFinite)
        {
            foreach (var (name, values, witness) in _heldChecks)
            {
                if (witness < 0 || witnessFinite[witness]) continue;
                var e = NonFiniteChecks.CheckTensor(values, name, Step, LossContext());
                if (e is not null)
                {
                    Report(e);
                    return;
                }
            }
        }

        private string? LossContext()
            => !_passHasEvent && _lastFinite >= 0
                ? "the model's forward outputs were finite on this step (the guard checked them), so the NaN/Inf comes from the loss/metric computation itself"
                : null;

        /// <summary>
        /// OncePerStep: the step's one read, over the forward pass's witnesses, the checked losses' and every gradient's. Only when
        /// one is non-finite are they examined, in that order, each with the message its own check gives.
        /// </summary>
        private void SettleStep()
        {
            _held = false;
            try
            {
                var gradients = new List<int>();
                foreach (var p in _root.parameters())
                {
                    using var grad = p.grad; // the property returns a new handle each time
                    if (grad is not null) gradients.Add(AddWitness(grad));
                }

                var (finite, reported) = ReadAndReport();
                if (finite is null || reported) return;
                if (gradients.Exists(w => w >= 0 && !finite[w]))
                {
                    var e = NonFiniteChecks.CheckGradients(_root, Step);
                    if (e is not null) Report(e);
                }
            }
            finally
            {
                DiscardPending();
            }
        }

        private void Replay(bool[] witnessFinite)
        {
            // Witnesses are exact and were queued when each tensor was seen, so nothing is re-decided from values read now.
            bool IsFinite(int witness) => witness < 0 || witnessFinite[witness];

            foreach (var (which, values, witness) in _pendingInputs)
            {
                if (IsFinite(witness)) continue;
                ReportModelInput(values, which, deferred: true);
                return;
            }
            int lastFinite = -1;
            torch.Tensor? lastFiniteTensor = _pendingModelInput;
            var seen = new int[_modules.Count];
            foreach (var call in _calls)
            {
                seen[call.Module] = call.Order;
                if (call.FirstOutput is null) continue; // not inspected, or an output without tensors
                if (!call.ChainsLast)
                {
                    for (int k = 0; k < call.Outputs.Count; k++)
                    {
                        var (values, witness) = call.Outputs[k];
                        if (IsFinite(witness)) continue;
                        var inputFinite = call.InputWitnesses.Select(IsFinite).ToArray();
                        ReportOutput(call.Module, call.Inputs, inputFinite, values, WhichOutput(k, call.Outputs.Count), lastFinite, lastFiniteTensor, seen, deferred: true);
                        return;
                    }
                }
                lastFinite = call.Module;
                lastFiniteTensor = call.FirstOutput;
            }
            _lastFinite = lastFinite;
            _lastFiniteTensor = lastFiniteTensor;
        }

        /// <summary>Disposes everything a deferred pass retained.</summary>
        private void DiscardPending()
        {
            _deferring = false;
            foreach (var w in _witnesses) w.Dispose();
            foreach (var alias in _aliases.Values) alias.Dispose();
            _witnesses.Clear();
            _aliases.Clear();
            _calls.Clear();
            _pendingInputs.Clear();
            foreach (var (_, values, _) in _heldChecks) values.Dispose();
            _heldChecks.Clear();
            _held = false;
            _pendingModelInput = null;
            _lastChecked = -1;
            _lastCheckedTensor = null;
        }

        /// <summary>For each module, its order in the current pass if it ran through call() in it so far (0 if not).</summary>
        private int[] SeenInThisPass()
        {
            var seen = new int[_modules.Count];
            for (int j = 0; j < seen.Length; j++) seen[j] = _seenInPass[j] == _pass ? _seenOrder[j] : 0;
            return seen;
        }

        /// <summary>The tensors in a value: a tensor, or the tensors inside a (value) tuple, nested up to a few levels.</summary>
        private static void CollectTensors(object? value, List<torch.Tensor> into, int depth)
        {
            switch (value)
            {
                case torch.Tensor tensor when !tensor.IsInvalid:
                    into.Add(tensor);
                    break;
                case ITuple tuple when depth < 3:
                    for (int k = 0; k < tuple.Length; k++) CollectTensors(tuple[k], into, depth + 1);
                    break;
            }
        }

        /// <summary>
        /// Reports module <paramref name="i"/>'s non-finite output. <paramref name="inputs"/> are the input tensor objects (compared by
        /// reference) and <paramref name="inputFinite"/> whether each was finite when the module returned (read then when checked per
        /// module, from the witnesses queued then in a deferred pass); <paramref name="output"/> holds the output's values (in a deferred
        /// pass an alias, as the end of the pass left them: <paramref name="deferred"/>); <paramref name="lastFiniteIndex"/>,
        /// <paramref name="lastFiniteTensor"/> and <paramref name="seenOrder"/> are the guard's state right after this call.
        /// </summary>
        private void ReportOutput(int i, torch.Tensor?[] inputs, bool[] inputFinite, torch.Tensor output, string? whichOutput,
            int lastFiniteIndex, torch.Tensor? lastFiniteTensor, int[] seenOrder, bool deferred = false)
        {
            if (_passHasEvent) return; // already reported where it started; outer modules only propagate it
            _passHasEvent = true;

            // The hook sees the inputs after forward ran. An input that the guard found finite just before this call (the previous
            // module's output, or the model input) and that is non-finite now was changed in place: it did not arrive non-finite.
            bool changedInPlace = false, inputNonFinite = false;
            for (int k = 0; k < inputs.Length; k++)
            {
                if (inputs[k] is null || inputFinite[k]) continue;
                if (ReferenceEquals(inputs[k], lastFiniteTensor)) changedInPlace = true;
                else inputNonFinite = true;
            }
            var (path, module) = _modules[i];
            var display = ModuleNames.Display(path, module);
            var type = module.GetType().Name;
            var shape = output.shape;
            var dtype = output.dtype.ToString();
            var outputLabel = whichOutput is null ? "output" : whichOutput;
            var counts = Finite.Count(output);
            var countsLine = $"  {outputLabel}: shape {TensorText.Shape(shape)}, {dtype}: {NonFiniteEvent.Counts(counts.NaN, counts.PosInf, counts.NegInf, shape)}" +
                             (deferred && counts.NaN + counts.PosInf + counts.NegInf == 0 ? ChangedLaterNote : "");
            var badParams = new List<string>();
            foreach (var (name, p) in module.named_parameters(recurse: false))
            {
                if (!Finite.AllFinite(p)) badParams.Add(name);
            }
            string? lastFinite = lastFiniteIndex >= 0 ? ModuleNames.Display(_modules[lastFiniteIndex].Path, _modules[lastFiniteIndex].Module) : null;

            var lines = new List<string>();
            if (!inputNonFinite)
            {
                lines.Add($"Non-finite values first appeared in the {(whichOutput is null ? "output" : whichOutput)} of module '{display}' ({type}){NonFiniteEvent.StepText(Step)}.");
                lines.Add(countsLine);
                lines.Add("  its input was finite, so this module produced them.");
                if (changedInPlace)
                {
                    lines.Add($"  its input tensor (found finite as the {(lastFinite is null ? "model input" : $"output of '{lastFinite}'")}) is non-finite now: it was changed in place " +
                              "by this module (log_(), sqrt_(), div_(), ...) or by an in-place operation in the parent's forward() just before this call.");
                }
                if (badParams.Count > 0)
                {
                    lines.Add($"  its own parameters are already non-finite: {string.Join(", ", badParams)}.");
                    lines.Add("What to check: an earlier optimizer step wrote NaN/Inf into the weights. Call CheckGradients() after backward() to find the gradient that did it, and lower the learning rate or clip gradients (nn.utils.clip_grad_norm_).");
                }
                else
                {
                    lines.Add($"What to check: the operations in {type}.forward: log/sqrt/pow of zero or negative values, division by zero (e.g. a std or a count), exp() overflow, " +
                              "or normalisation over a single element. Add an epsilon or clamp the input of that operation. If it happens only after many steps, the activations grew too large: check the learning rate.");
                }
            }
            else
            {
                lines.Add($"Non-finite values reached module '{display}' ({type}){NonFiniteEvent.StepText(Step)} through its input: the input was already non-finite.");
                lines.Add(countsLine);
                var parent = path.Length == 0 ? null : ModuleNames.Display(ModuleNames.ParentOf(path), _modules.First(m => m.Path == ModuleNames.ParentOf(path)).Module);
                lines.Add(lastFinite is null
                    ? "  no module had produced a finite output earlier in this forward pass."
                    : $"  the last module with a finite output before it was '{lastFinite}'.");
                var candidates = Candidates(i, lastFiniteIndex, seenOrder);
                if (candidates.Count > 0)
                {
                    lines.Add("  the guard could not see the values of these modules in this pass, so the NaN/Inf may have started there: " +
                              string.Join("; ", candidates) + ".");
                }
                var span = lastFinite is null ? $"before the input of '{display}'" : $"between the output of '{lastFinite}' and the input of '{display}'";
                lines.Add("What to check: the values became non-finite where the guard cannot see: " +
                          (candidates.Count > 0 ? "in the module(s) listed above, or " : "") +
                          (parent is null ? "before the model ran" : $"in an operation in the forward() of '{parent}'") +
                          $" {span} — a functional call (log, sqrt, division, exp) or a child invoked with .forward(...) instead of .call(...). " +
                          "Coverage() lists the modules the guard never observed.");
            }

            if (Options.OnNonFinite == NonFiniteAction.Throw)
            {
                _stoppedAt = $"the non-finite output of '{display}'";
                _stoppedStep = Step;
            }

            Report(new NonFiniteEvent(NonFiniteKind.ModuleOutput, Step, display, type, shape, dtype, counts.NaN, counts.PosInf, counts.NegInf,
                inputNonFinite, lastFinite, badParams, Array.Empty<NonFiniteGradient>(), NonFiniteEvent.Join(lines)));
        }

        /// <summary>
        /// Where a NaN/Inf first seen at module <paramref name="i"/>'s input may have started, as far as the guard can tell: modules
        /// that ran in this pass after the last finite output but whose values it cannot inspect, and modules under the same parent,
        /// registered before <paramref name="i"/>, that did not run through call() in this pass (a child invoked with .forward(...)).
        /// <paramref name="seenOrder"/>: each module's order in this pass up to this call (0 = did not run in it).
        /// </summary>
        private List<string> Candidates(int i, int lastFinite, int[] seenOrder)
        {
            var result = new List<string>();
            var path = _modules[i].Path;
            var parentPath = path.Length == 0 ? null : ModuleNames.ParentOf(path);
            int since = lastFinite >= 0 ? seenOrder[lastFinite] : 0;
            for (int j = 1; j < _modules.Count; j++)
            {
                if (j == i || !_callable[j]) continue;
                var (other, module) = _modules[j];
                bool isAncestor = path.StartsWith(other + ".", StringComparison.Ordinal);
                bool isDescendant = other.StartsWith(path + ".", StringComparison.Ordinal);
                if (isAncestor || isDescendant) continue;
                var name = $"'{ModuleNames.Display(other, module)}' ({module.GetType().Name}, ";
                if (seenOrder[j] > 0)
                {
                    if (!_inspected[j] && seenOrder[j] > since) result.Add(name + "its output is not a tensor the guard can inspect)");
                }
                else if (j < i && parentPath is not null && (parentPath.Length == 0 || other.StartsWith(parentPath + ".", StringComparison.Ordinal)))
                {
                    result.Add(name + "never ran through call() in this pass: invoked with .forward(...), or not at all)");
                }
            }
            return result;
        }

        /// <summary>A container (Sequential, or a custom module) returning the output its last child already produced: nothing new to check.
        /// Limited to ancestors, so an in-place operation that returns its own input object is still checked.</summary>
        private bool IsAncestorOf(int i, int descendant)
        {
            if (descendant < 0) return false;
            var path = _modules[i].Path;
            return path.Length == 0 || _modules[descendant].Path.StartsWith(path + ".", StringComparison.Ordinal);
        }

        private void Report(NonFiniteEvent e, Exception? inner = null)
        {
            _events.Add(e);
            if (Options.OnNonFinite == NonFiniteAction.Throw) throw new NonFiniteValueException(e, inner);
        }
    }

    /// <summary>A module the guard did not fully observe.</summary>
    public sealed class UnobservedModule
    {
        internal UnobservedModule(string path, string typeName, string reason)
        {
            Path = path;
            TypeName = typeName;
            Reason = reason;
        }

        /// <summary>Module path.</summary>
        public string Path { get; }

        /// <summary>Module type name.</summary>
        public string TypeName { get; }

        /// <summary>Why it was not observed.</summary>
        public string Reason { get; }

        /// <inheritdoc />
        public override string ToString() => $"{Path} ({TypeName}): {Reason}.";
    }

    /// <summary>What a <see cref="NonFiniteGuard"/> could and could not see.</summary>
    public sealed class GuardCoverage
    {
        internal GuardCoverage(IReadOnlyList<string> observed, IReadOnlyList<UnobservedModule> notInspected, IReadOnlyList<UnobservedModule> neverObserved)
        {
            Observed = observed;
            NotInspected = notInspected;
            NeverObserved = neverObserved;
        }

        /// <summary>Modules seen running through call().</summary>
        public IReadOnlyList<string> Observed { get; }

        /// <summary>Modules seen running whose values could not be inspected (unsupported forward signature).</summary>
        public IReadOnlyList<UnobservedModule> NotInspected { get; }

        /// <summary>Modules never seen running, with the likely reason.</summary>
        public IReadOnlyList<UnobservedModule> NeverObserved { get; }

        /// <summary>True when every callable module was observed and inspected.</summary>
        public bool IsComplete => NeverObserved.Count == 0 && NotInspected.Count == 0;

        /// <inheritdoc />
        public override string ToString()
        {
            var lines = new List<string> { $"NaN guard coverage: {Observed.Count} module{(Observed.Count == 1 ? "" : "s")} observed, {NeverObserved.Count} never observed, {NotInspected.Count} not inspected." };
            lines.AddRange(NeverObserved.Select(m => "  never observed: " + m));
            lines.AddRange(NotInspected.Select(m => "  not inspected: " + m));
            return NonFiniteEvent.Join(lines);
        }
    }
}
