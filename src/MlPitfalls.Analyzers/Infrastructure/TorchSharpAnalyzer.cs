using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Diagnostics;

namespace MlPitfalls.Analyzers.Infrastructure;

/// <summary>
/// Base of every MlPitfalls analyzer: configures the analyzer the same way for every rule, resolves TorchSharp's
/// symbols once per compilation, and registers nothing at all when the compilation does not reference TorchSharp.
/// </summary>
public abstract class TorchSharpAnalyzer : DiagnosticAnalyzer
{
    public sealed override void Initialize(AnalysisContext context)
    {
        context.EnableConcurrentExecution();
        // Generated code (designer files, source generators) is not where training loops are written: it is not analysed.
        // Diagnostics are not re-checked for it either: every one is placed in the member being analysed, which is not
        // generated, and the check would make the driver scan the whole file for [GeneratedCode] on the first report in it.
        context.ConfigureGeneratedCodeAnalysis(GeneratedCodeAnalysisFlags.ReportDiagnostics);
        context.RegisterCompilationStartAction(start =>
        {
            var torch = TorchSymbols.For(start.Compilation);
            if (torch is not null)
            {
                OnTorchSharpCompilationStart(start, torch);
            }
        });
    }

    /// <summary>Registers the rule's actions for a compilation that references TorchSharp.</summary>
    private protected abstract void OnTorchSharpCompilationStart(CompilationStartAnalysisContext context, TorchSymbols torch);
}
