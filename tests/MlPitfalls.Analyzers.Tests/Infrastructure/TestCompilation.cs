using System;
using System.IO;
using System.Linq;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using Microsoft.CodeAnalysis.Operations;
using MlPitfalls.Analyzers.Tests.Verifiers;

namespace MlPitfalls.Analyzers.Tests.Infrastructure;

/// <summary>Compilations for testing the shared analyzer machinery directly, outside the analyzer test harness.</summary>
internal static class TestCompilation
{
    // The shared framework only: the test host's trusted assemblies also include its own dependencies (TorchSharp among them).
    internal static readonly MetadataReference[] Platform = ((string)AppContext.GetData("TRUSTED_PLATFORM_ASSEMBLIES")!)
        .Split(Path.PathSeparator)
        .Where(path => Path.GetDirectoryName(path) == Path.GetDirectoryName(typeof(object).Assembly.Location))
        .Select(path => (MetadataReference)MetadataReference.CreateFromFile(path))
        .ToArray();

    internal static readonly MetadataReference TorchSharp = MetadataReference.CreateFromFile(typeof(TorchSharp.torch).Assembly.Location);

    public static CSharpCompilation Create(bool referenceTorchSharp = true, params string[] sources)
    {
        var prefix = referenceTorchSharp ? TorchSharpSources.Usings : string.Empty;
        var trees = sources.Select((s, i) => CSharpSyntaxTree.ParseText(prefix + s, path: $"File{i}.cs"));
        var references = referenceTorchSharp ? Platform.Append(TorchSharp) : Platform;
        var compilation = CSharpCompilation.Create("Test", trees, references, new CSharpCompilationOptions(OutputKind.DynamicallyLinkedLibrary));
        var errors = compilation.GetDiagnostics().Where(d => d.Severity == DiagnosticSeverity.Error).ToList();
        if (errors.Count > 0)
        {
            throw new InvalidOperationException("Test source does not compile: " + string.Join(Environment.NewLine, errors));
        }

        return compilation;
    }

    /// <summary>The operation for the invocation whose text is exactly <paramref name="invocationText"/> (the first one).</summary>
    public static IOperation Invocation(Compilation compilation, string invocationText)
    {
        foreach (var tree in compilation.SyntaxTrees)
        {
            var node = tree.GetRoot().DescendantNodes().OfType<InvocationExpressionSyntax>().FirstOrDefault(n => n.ToString() == invocationText);
            if (node is not null)
            {
                return compilation.GetSemanticModel(tree).GetOperation(node)!;
            }
        }

        throw new InvalidOperationException($"No invocation '{invocationText}' in the test source.");
    }

    /// <summary>The operation of the method body of <paramref name="methodName"/>.</summary>
    public static IOperation MethodBody(Compilation compilation, string methodName)
    {
        foreach (var tree in compilation.SyntaxTrees)
        {
            var method = tree.GetRoot().DescendantNodes().OfType<MethodDeclarationSyntax>().FirstOrDefault(m => m.Identifier.ValueText == methodName);
            if (method is not null)
            {
                return compilation.GetSemanticModel(tree).GetOperation(method.Body!)!;
            }
        }

        throw new InvalidOperationException($"No method '{methodName}' in the test source.");
    }

    /// <summary>The whole bound body of method <paramref name="methodName"/> (block or expression body), the root a control-flow graph is built from.</summary>
    public static IMethodBodyOperation MethodBodyOperation(Compilation compilation, string methodName)
    {
        foreach (var tree in compilation.SyntaxTrees)
        {
            var method = tree.GetRoot().DescendantNodes().OfType<MethodDeclarationSyntax>().FirstOrDefault(m => m.Identifier.ValueText == methodName);
            if (method is not null)
            {
                return (IMethodBodyOperation)compilation.GetSemanticModel(tree).GetOperation(method)!;
            }
        }

        throw new InvalidOperationException($"No method '{methodName}' in the test source.");
    }
}
