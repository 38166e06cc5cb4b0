namespace MlPitfalls.Analyzers.Tests.Verifiers;

/// <summary>What test sources written against TorchSharp start with.</summary>
internal static class TorchSharpSources
{
    /// <summary>The usings TorchSharp code starts with, prepended to every test source so tests show only what matters.</summary>
    public const string Usings = """
        using System;
        using System.Collections.Generic;
        using System.Linq;
        using TorchSharp;
        using TorchSharp.Modules;
        using static TorchSharp.torch;
        using static TorchSharp.torch.nn;

        """;
}
