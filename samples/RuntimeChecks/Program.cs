// Two bugs that static analysis cannot see, caught at run time by MlPitfalls.Runtime:
//  1. a NaN born in one custom layer, named by the NaN guard;
//  2. a view-instead-of-permute that mixes samples, caught by the batch-independence check.
// Exits 0 when both are caught, 1 otherwise.
using System;
using MlPitfalls.Runtime.NonFinite;
using MlPitfalls.Runtime.Sanity;
using MlPitfalls.Runtime.Shapes;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

torch.manual_seed(0);
int caught = 0;

// ---------------------------------------------------------------------------------------------
// 1. NaN guard
// ---------------------------------------------------------------------------------------------
Console.WriteLine("== 1. NaN/Inf guard ==");
var model = nn.Sequential(
    ("encoder", nn.Sequential(
        ("norm", new RowNormalize()),
        ("fc", nn.Linear(8, 16)),
        ("act", nn.ReLU()))),
    ("head", nn.Linear(16, 3)));
using var optimizer = optim.Adam(model.parameters(), lr: 0.01);
using (var contract = model.ExpectContract("batch 8 -> batch 3"))
using (var guard = NonFiniteGuard.Attach(model))
{
    try
    {
        for (int step = 1; step <= 5; step++)
        {
            using var scope = torch.NewDisposeScope();
            var x = torch.randn(32, 8);
            if (step == 3) x[5] = torch.zeros(8); // a padded, all-zero sample: x / ||x|| = 0 / 0
            var y = torch.randint(0, 3, new long[] { 32 });

            optimizer.zero_grad();
            var loss = nn.functional.cross_entropy(model.call(x), y);
            guard.Check(loss);
            guard.Backward(loss);
            optimizer.step();
            Console.WriteLine($"step {step}: loss {loss.ToSingle():0.0000}");
        }
        Console.WriteLine("NOT CAUGHT: the guard did not stop the NaN.");
    }
    catch (NonFiniteValueException ex)
    {
        caught++;
        Console.WriteLine();
        Console.WriteLine(ex.Message);
        Console.WriteLine();
        Console.WriteLine(guard.Coverage());
    }
}

// ---------------------------------------------------------------------------------------------
// 2. Batch independence
// ---------------------------------------------------------------------------------------------
Console.WriteLine();
Console.WriteLine("== 2. Batch independence ==");
var buggy = new SequencePooling(useView: true);
var fixedModel = new SequencePooling(useView: false);
using (var scope = torch.NewDisposeScope())
{
    var batch = torch.randn(16, 6 * 4); // 16 samples, each a sequence of 6 steps of 4 features
    try
    {
        SanityChecks.CheckBatchIndependence(buggy, batch).ThrowIfFailed();
        Console.WriteLine("NOT CAUGHT: the batch-mixing bug passed the check.");
    }
    catch (BatchDependenceException ex)
    {
        caught++;
        Console.WriteLine(ex.Message);
    }
    Console.WriteLine();
    Console.WriteLine("With permute instead of view:");
    Console.WriteLine(SanityChecks.CheckBatchIndependence(fixedModel, batch).ThrowIfFailed().Message);
}

Console.WriteLine();
Console.WriteLine(caught == 2 ? "Both bugs were caught." : $"Only {caught} of 2 bugs were caught.");
return caught == 2 ? 0 : 1;

/// <summary>Scales each sample to unit length. Unsafe: an all-zero sample gives 0/0 = NaN (no epsilon).</summary>
internal sealed class RowNormalize : nn.Module<Tensor, Tensor>
{
    public RowNormalize() : base(nameof(RowNormalize)) { }

    public override Tensor forward(Tensor input)
    {
        using var norm = input.norm(1, keepdim: true);
        return input / norm;
    }
}

/// <summary>
/// Projects every step of a [batch, seq*features] input and averages over the sequence, in a sequence-first layout.
/// With useView the layout change is x.view(seq, batch, features) — which reinterprets memory instead of moving axes.
/// </summary>
internal sealed class SequencePooling : nn.Module<Tensor, Tensor>
{
    private const long Seq = 6, Features = 4;
    private readonly Linear proj = nn.Linear(Features, Features);
    private readonly bool _useView;

    public SequencePooling(bool useView) : base(nameof(SequencePooling))
    {
        _useView = useView;
        RegisterComponents();
    }

    public override Tensor forward(Tensor input)
    {
        long batch = input.shape[0];
        using var x = input.view(batch, Seq, Features);
        using var seqFirst = _useView ? x.view(Seq, batch, Features) : x.permute(1, 0, 2);
        using var projected = proj.call(seqFirst);
        return projected.mean(new long[] { 0 });
    }
}
