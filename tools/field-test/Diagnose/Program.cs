// Diagnose: the corpus' analysis driver.
//
//   Diagnose emit-refs ORDER_FILE
//       Compiles each response file listed (one path a line, dependencies first) and writes a metadata-only assembly to
//       its -out: path, tolerating compile errors. These are the in-repository project references of the corpus.
//
//   Diagnose run --analyzers PATH/MlPitfalls.Analyzers.dll [--rsp DIR_OR_FILE]... [--context IDS] [--projects FILE]
//       For every response file: parses it with CSharpCommandLineParser, builds the compilation and runs every
//       DiagnosticAnalyzer type of the given analyzer assembly with CompilationWithAnalyzers. Prints every MlPitfalls
//       diagnostic (rule, project, file:line:col, message) sorted, every analyzer exception (AD0001, with stack), and with
//       --context the source around each diagnostic of the given rules. --projects writes a per-project table (lines,
//       compile errors, whether TorchSharp binds, time).
using System.Collections.Concurrent;
using System.Collections.Immutable;
using System.Diagnostics;
using System.Globalization;
using System.Reflection;
using System.Text;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.Diagnostics;
using Microsoft.CodeAnalysis.Emit;

CultureInfo.DefaultThreadCurrentCulture = CultureInfo.InvariantCulture;
CultureInfo.CurrentCulture = CultureInfo.InvariantCulture;
var corpusRoot = Environment.GetEnvironmentVariable("CORPUS") ?? "/work/corpus";
var sourceRoot = Path.Combine(corpusRoot, "src") + Path.DirectorySeparatorChar;

if (args.Length >= 2 && args[0] == "emit-refs")
{
    return EmitRefs(args[1]);
}

if (args.Length >= 1 && args[0] == "run")
{
    return Run(args.Skip(1).ToArray());
}

Console.Error.WriteLine("usage: Diagnose emit-refs ORDER_FILE | Diagnose run --analyzers DLL [--rsp DIR_OR_FILE]... [--context MLP009,MLP010] [--projects FILE]");
return 2;

int EmitRefs(string orderFile)
{
    var failures = 0;
    foreach (var rsp in File.ReadAllLines(orderFile).Where(l => l.Trim().Length > 0))
    {
        var stopwatch = Stopwatch.StartNew();
        var project = Project.Load(rsp);
        var output = project.OutputPath ?? throw new InvalidOperationException($"{rsp}: no -out:");
        Directory.CreateDirectory(Path.GetDirectoryName(output)!);
        var (image, removed, remaining) = RefEmitter.Emit(project.Compilation);
        if (image is null)
        {
            failures++;
            Console.Error.WriteLine($"emit failed: {rsp}: {string.Join(" ", remaining.GroupBy(d => d.Id).Select(g => $"{g.Key}x{g.Count()}"))}: {string.Join("; ", remaining.Take(3))}");
            continue;
        }

        File.WriteAllBytes(output, image);
        Console.WriteLine($"{Path.GetFileNameWithoutExtension(rsp)} -> {Relative(output)}: {removed} declarations left out, {stopwatch.ElapsedMilliseconds} ms");
    }

    return failures == 0 ? 0 : 1;
}

int Run(string[] options)
{
    string? analyzerPath = null, projectsFile = null;
    var rspInputs = new List<string>();
    var contextIds = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
    for (var i = 0; i < options.Length; i++)
    {
        switch (options[i])
        {
            case "--analyzers": analyzerPath = options[++i]; break;
            case "--rsp": rspInputs.Add(options[++i]); break;
            case "--context": contextIds.UnionWith(options[++i].Split(',', StringSplitOptions.RemoveEmptyEntries)); break;
            case "--projects": projectsFile = options[++i]; break;
            default: Console.Error.WriteLine($"unknown option {options[i]}"); return 2;
        }
    }

    if (analyzerPath is null)
    {
        Console.Error.WriteLine("--analyzers PATH/MlPitfalls.Analyzers.dll is required");
        return 2;
    }

    if (rspInputs.Count == 0)
    {
        rspInputs.Add(Path.Combine(corpusRoot, "rsp"));
    }

    var responseFiles = rspInputs.SelectMany(p => Directory.Exists(p) ? Directory.GetFiles(p, "*.rsp") : [p])
        .OrderBy(p => p, StringComparer.Ordinal).ToList();

    var analyzerAssembly = Assembly.LoadFrom(Path.GetFullPath(analyzerPath));
    var analyzerTypes = analyzerAssembly.GetTypes()
        .Where(t => !t.IsAbstract && typeof(DiagnosticAnalyzer).IsAssignableFrom(t)
            && t.GetCustomAttributes<DiagnosticAnalyzerAttribute>().Any(a => a.Languages.Contains(LanguageNames.CSharp)))
        .OrderBy(t => t.FullName, StringComparer.Ordinal).ToList();
    Console.WriteLine($"# analyzers: {analyzerAssembly.Location} ({analyzerTypes.Count} types: {string.Join(", ", analyzerTypes.Select(t => t.Name))})");
    var ruleIds = analyzerTypes.Select(t => (DiagnosticAnalyzer)Activator.CreateInstance(t)!)
        .SelectMany(a => a.SupportedDiagnostics.Select(d => d.Id)).Distinct().OrderBy(i => i, StringComparer.Ordinal).ToList();
    Console.WriteLine($"# rules: {string.Join(", ", ruleIds)}");
    Console.WriteLine($"# Roslyn {typeof(CSharpCompilation).Assembly.GetName().Version}; {responseFiles.Count} response files");

    var findings = new List<(string Id, string Project, string File, int Line, int Column, string Message)>();
    var exceptions = new List<string>();
    var table = new List<string> { "| Project | Files | Lines | Errors | Top error codes | TorchSharp bound | ms analysis run (+ compile diagnostics) | analyzer callbacks ms (slowest) |", "|---|---:|---:|---:|---|---|---:|---|" };
    var totalStopwatch = Stopwatch.StartNew();
    long totalLines = 0;
    foreach (var rsp in responseFiles)
    {
        var key = Path.GetFileNameWithoutExtension(rsp);
        var stopwatch = Stopwatch.StartNew();
        var project = Project.Load(rsp);
        var compilation = project.Compilation;
        var analyzers = analyzerTypes.Select(t => (DiagnosticAnalyzer)Activator.CreateInstance(t)!).ToImmutableArray();
        var projectExceptions = new ConcurrentBag<string>();
        var withAnalyzers = compilation.WithAnalyzers(analyzers, new CompilationWithAnalyzersOptions(
            new AnalyzerOptions(ImmutableArray<AdditionalText>.Empty),
            (exception, analyzer, diagnostic) => projectExceptions.Add(
                $"{key}: {analyzer.GetType().Name} threw while reporting {diagnostic.Id} at {Where(diagnostic.Location)}:\n{exception}"),
            concurrentAnalysis: false, logAnalyzerExecutionTime: true));
        var analyzerDiagnostics = withAnalyzers.GetAnalyzerDiagnosticsAsync().GetAwaiter().GetResult();
        var analysisElapsed = stopwatch.ElapsedMilliseconds;
        var diagnostics = analyzerDiagnostics.AddRange(compilation.GetDiagnostics());
        var elapsed = stopwatch.ElapsedMilliseconds;
        var analyzerTimes = analyzers.Select(a => (a.GetType().Name, withAnalyzers.GetAnalyzerTelemetryInfoAsync(a, CancellationToken.None).GetAwaiter().GetResult().ExecutionTime.TotalMilliseconds)).ToList();
        var analysisMs = analyzerTimes.Sum(t => t.Item2);
        var slowest = analyzerTimes.OrderByDescending(t => t.Item2).First();

        var errors = diagnostics.Where(d => d.Severity == DiagnosticSeverity.Error && !d.Id.StartsWith("MLP", StringComparison.Ordinal) && d.Id != "AD0001").ToList();
        var topCodes = string.Join(" ", errors.GroupBy(d => d.Id).OrderByDescending(g => g.Count()).ThenBy(g => g.Key, StringComparer.Ordinal).Take(4).Select(g => $"{g.Key}×{g.Count()}"));
        var lines = compilation.SyntaxTrees.Where(t => !t.FilePath.EndsWith(".g.cs", StringComparison.Ordinal)).Sum(t => t.GetText().Lines.Count);
        totalLines += lines;
        table.Add($"| {key} | {project.SourceFiles} | {lines} | {errors.Count} | {topCodes} | {TorchSharpBinding(compilation, errors)} | {analysisElapsed} (+{elapsed - analysisElapsed}) | {analysisMs:F0} ({slowest.Item1} {slowest.Item2:F0}) |");

        foreach (var d in diagnostics)
        {
            if (d.Id.StartsWith("MLP", StringComparison.Ordinal) || d.Id == "AD0001")
            {
                var span = d.Location.GetLineSpan();
                findings.Add((d.Id, key, Relative(span.Path), span.StartLinePosition.Line + 1, span.StartLinePosition.Character + 1, d.GetMessage(CultureInfo.InvariantCulture)));
            }
        }

        exceptions.AddRange(projectExceptions.OrderBy(e => e, StringComparer.Ordinal));
        Console.Error.WriteLine($"{key}: {lines} lines, {errors.Count} errors, {elapsed} ms, analyzers {analysisMs:F0} ms");
    }

    findings = findings.Distinct().OrderBy(f => f.Id, StringComparer.Ordinal).ThenBy(f => f.Project, StringComparer.Ordinal)
        .ThenBy(f => f.File, StringComparer.Ordinal).ThenBy(f => f.Line).ThenBy(f => f.Column).ThenBy(f => f.Message, StringComparer.Ordinal).ToList();
    Console.WriteLine($"# {responseFiles.Count} projects, {totalLines} lines, {totalStopwatch.Elapsed.TotalSeconds:F1} s");
    Console.WriteLine("# counts: " + string.Join(", ", ruleIds.Append("AD0001").Distinct().Select(id => $"{id}={findings.Count(f => f.Id == id)}")));
    foreach (var f in findings)
    {
        Console.WriteLine($"{f.Id}\t{f.Project}\t{f.File}:{f.Line}:{f.Column}\t{f.Message}");
    }

    Console.WriteLine($"# analyzer exceptions: {exceptions.Count}");
    foreach (var e in exceptions)
    {
        Console.WriteLine("AD0001-EXCEPTION " + e.Replace("\n", "\n    "));
    }

    if (contextIds.Count > 0)
    {
        foreach (var f in findings.Where(f => contextIds.Contains(f.Id)))
        {
            Console.WriteLine();
            Console.WriteLine($"## {f.Id} {f.File}:{f.Line}:{f.Column} ({f.Project})");
            Console.WriteLine($"## {f.Message}");
            var path = Path.Combine(sourceRoot, f.File);
            var text = File.Exists(path) ? File.ReadAllLines(path) : [];
            for (var line = Math.Max(1, f.Line - 10); line <= Math.Min(text.Length, f.Line + 3); line++)
            {
                Console.WriteLine($"{(line == f.Line ? ">" : " ")}{line,5}: {text[line - 1]}");
            }
        }
    }

    if (projectsFile is not null)
    {
        File.WriteAllLines(projectsFile, table.Append($"| **{responseFiles.Count} projects** | | {totalLines} | | | | {totalStopwatch.ElapsedMilliseconds} | |"));
    }

    return 0;
}

string Relative(string path) => path.StartsWith(corpusRoot + "/refs/", StringComparison.Ordinal) ? path[(corpusRoot.Length + 1)..] : path.StartsWith(sourceRoot, StringComparison.Ordinal) ? path[sourceRoot.Length..] : path;

string Where(Location location)
{
    var span = location.GetLineSpan();
    return span.Path is { Length: > 0 } ? $"{Relative(span.Path)}:{span.StartLinePosition.Line + 1}:{span.StartLinePosition.Character + 1}" : "(no location)";
}

// Whether TorchSharp's types resolve: the Tensor type comes from the referenced TorchSharp assembly, and how many
// errors name an unresolved TorchSharp member or type.
static string TorchSharpBinding(Compilation compilation, List<Diagnostic> errors)
{
    var tensor = compilation.GetTypeByMetadataName("TorchSharp.torch+Tensor");
    if (tensor is null)
    {
        return "NO (TorchSharp.torch+Tensor missing)";
    }

    var torchErrors = errors.Count(d => d.Id is "CS0246" or "CS0234" or "CS0103" or "CS1061" or "CS0117"
        && d.GetMessage(CultureInfo.InvariantCulture) is var m && (m.Contains("torch", StringComparison.OrdinalIgnoreCase) || m.Contains("Tensor", StringComparison.Ordinal)));
    return $"yes ({tensor.ContainingAssembly.Name}{(torchErrors > 0 ? $"; {torchErrors} torch-related name errors" : "")})";
}

sealed class Project
{
    public required CSharpCompilation Compilation { get; init; }

    public string? OutputPath { get; init; }

    public int SourceFiles { get; init; }

    public static Project Load(string responseFile)
    {
        // The same reading as the benchmark's RealProjects.Load: the file's text split into arguments.
        var arguments = CommandLineParser.SplitCommandLineIntoArguments(File.ReadAllText(responseFile).Trim(), removeHashComments: false).ToArray();
        var directory = Path.GetDirectoryName(Path.GetFullPath(responseFile))!;
        var parsed = CSharpCommandLineParser.Default.Parse(arguments, directory, sdkDirectory: null);
        foreach (var error in parsed.Errors)
        {
            Console.Error.WriteLine($"{responseFile}: {error}");
        }

        var trees = parsed.SourceFiles.Where(s => File.Exists(s.Path))
            .Select(s => CSharpSyntaxTree.ParseText(Microsoft.CodeAnalysis.Text.SourceText.From(File.ReadAllText(s.Path), Encoding.UTF8), parsed.ParseOptions, s.Path)).ToList();
        var missing = parsed.SourceFiles.Count(s => !File.Exists(s.Path));
        if (missing > 0)
        {
            Console.Error.WriteLine($"{responseFile}: {missing} source files missing");
        }

        var references = parsed.MetadataReferences.Where(r => File.Exists(r.Reference) || LogMissing(responseFile, r.Reference))
            .Select(r => (MetadataReference)MetadataReference.CreateFromFile(r.Reference)).ToList();
        var name = parsed.CompilationName ?? Path.GetFileNameWithoutExtension(responseFile);
        var output = parsed.OutputFileName is { } file ? Path.Combine(parsed.OutputDirectory, file) : null;
        return new Project
        {
            Compilation = CSharpCompilation.Create(name, trees, references, parsed.CompilationOptions),
            OutputPath = output,
            SourceFiles = trees.Count(t => !t.FilePath.EndsWith(".g.cs", StringComparison.Ordinal)),
        };
    }

    private static bool LogMissing(string responseFile, string reference)
    {
        Console.Error.WriteLine($"{responseFile}: reference {reference} missing (run make-rsp.sh)");
        return false;
    }
}

/// <summary>
/// A metadata-only image of a project that does not fully compile here (missing packages): declarations whose metadata
/// cannot be written (a member whose signature names a missing type, a base type or attribute that does not resolve, a
/// using of a missing namespace, ...) are left out, again and again until the declarations compile. Friend access
/// (InternalsVisibleTo) is granted by name only, without the public key, since nothing here is strong-named.
/// </summary>
static class RefEmitter
{
    public static (byte[]? Image, int Removed, IReadOnlyList<Diagnostic> Remaining) Emit(CSharpCompilation compilation)
    {
        compilation = StripFriendPublicKeys(compilation);
        var removed = 0;
        IReadOnlyList<Diagnostic> errors = [];
        for (var round = 0; round < 30; round++)
        {
            using var stream = new MemoryStream();
            var result = compilation.Emit(stream, options: new EmitOptions(metadataOnly: true));
            if (result.Success)
            {
                return (stream.ToArray(), removed, []);
            }

            errors = result.Diagnostics.Where(d => d.Severity == DiagnosticSeverity.Error).ToList();
            var changed = false;
            foreach (var group in errors.Where(d => d.Location.IsInSource).GroupBy(d => d.Location.SourceTree!))
            {
                var root = group.Key.GetRoot();
                var nodes = group.Select(d => Removable(root.FindNode(d.Location.SourceSpan, getInnermostNodeForTie: true)))
                    .OfType<SyntaxNode>().Distinct().ToList();
                nodes = nodes.Where(n => !nodes.Any(o => o != n && o.Span.Contains(n.Span) && n.Ancestors().Contains(o))).ToList();
                if (nodes.Count == 0)
                {
                    continue;
                }

                var newRoot = root.RemoveNodes(nodes, SyntaxRemoveOptions.KeepNoTrivia);
                if (newRoot is null)
                {
                    continue;
                }

                // An emptied base list would not be valid syntax: take it away whole.
                var emptyBaseLists = newRoot.DescendantNodes().OfType<Microsoft.CodeAnalysis.CSharp.Syntax.BaseListSyntax>().Where(b => b.Types.Count == 0).ToList();
                if (emptyBaseLists.Count > 0)
                {
                    newRoot = newRoot.RemoveNodes(emptyBaseLists, SyntaxRemoveOptions.KeepNoTrivia)!;
                }

                compilation = compilation.ReplaceSyntaxTree(group.Key, group.Key.WithRootAndOptions(newRoot, group.Key.Options));
                removed += nodes.Count;
                changed = true;
            }

            if (!changed)
            {
                break;
            }
        }

        return (null, removed, errors);
    }

    private static SyntaxNode? Removable(SyntaxNode node)
    {
        foreach (var n in node.AncestorsAndSelf())
        {
            switch (n)
            {
                case Microsoft.CodeAnalysis.CSharp.Syntax.UsingDirectiveSyntax:
                case Microsoft.CodeAnalysis.CSharp.Syntax.AttributeListSyntax:
                case Microsoft.CodeAnalysis.CSharp.Syntax.BaseTypeSyntax:
                case Microsoft.CodeAnalysis.CSharp.Syntax.TypeParameterConstraintClauseSyntax:
                    return n;
                case Microsoft.CodeAnalysis.CSharp.Syntax.BaseTypeDeclarationSyntax type:
                    // An error on the type itself (an abstract or interface member it no longer implements): drop its bases.
                    return type.BaseList is { } baseList ? baseList : type;
                case Microsoft.CodeAnalysis.CSharp.Syntax.BaseNamespaceDeclarationSyntax:
                case Microsoft.CodeAnalysis.CSharp.Syntax.CompilationUnitSyntax:
                    return null;
                case Microsoft.CodeAnalysis.CSharp.Syntax.MemberDeclarationSyntax member:
                    return member;
            }
        }

        return null;
    }

    private static CSharpCompilation StripFriendPublicKeys(CSharpCompilation compilation)
    {
        foreach (var tree in compilation.SyntaxTrees.ToList())
        {
            var model = compilation.GetSemanticModel(tree);
            var root = tree.GetRoot();
            var replacements = new Dictionary<SyntaxNode, SyntaxNode>();
            foreach (var attribute in root.DescendantNodes().OfType<Microsoft.CodeAnalysis.CSharp.Syntax.AttributeSyntax>())
            {
                if (!attribute.Name.ToString().Contains("InternalsVisibleTo", StringComparison.Ordinal) || attribute.ArgumentList is not { Arguments.Count: 1 } arguments)
                {
                    continue;
                }

                var expression = arguments.Arguments[0].Expression;
                if (model.GetConstantValue(expression).Value is string value && value.IndexOf(',') is var comma and > 0)
                {
                    replacements[expression] = SyntaxFactory.LiteralExpression(Microsoft.CodeAnalysis.CSharp.SyntaxKind.StringLiteralExpression, SyntaxFactory.Literal(value[..comma].Trim()));
                }
            }

            if (replacements.Count > 0)
            {
                var newRoot = root.ReplaceNodes(replacements.Keys, (original, _) => replacements[original]);
                compilation = compilation.ReplaceSyntaxTree(tree, tree.WithRootAndOptions(newRoot, tree.Options));
            }
        }

        return compilation;
    }
}
