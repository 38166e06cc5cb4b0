namespace MlPitfalls.Analyzers.Tests.TrainEval;

/// <summary>Programs the train/eval mode tests share: a model whose mode matters, and a trainer holding it in a field.</summary>
internal static class ModePrograms
{
    /// <summary>A model with dropout: its output depends on the mode.</summary>
    public const string DropoutNet = """
        class Net : Module<Tensor, Tensor>
        {
            private readonly Module<Tensor, Tensor> fc = nn.Linear(784, 10);
            private readonly Module<Tensor, Tensor> drop = nn.Dropout(0.5);
            public Net() : base("net") => RegisterComponents();
            public override Tensor forward(Tensor x) => fc.call(drop.call(x));
        }

        """;

    /// <summary>A trainer class holding its model in a field, with <paramref name="members"/>.</summary>
    public static string FieldTrainer(string members, string field = "private readonly Net _model = new Net();") => DropoutNet + $$"""
        class Trainer
        {
            {{field}}
            private readonly optim.Optimizer _optimizer;

            public Trainer() => _optimizer = optim.Adam(_model.parameters());

            public void TrainEpoch(IReadOnlyList<(Tensor x, Tensor y)> data)
            {
                foreach (var (x, y) in data)
                {
                    _optimizer.zero_grad();
                    functional.cross_entropy(_model.call(x), y).backward();
                    _optimizer.step();
                }
            }

        {{members}}
        }
        """;

}
