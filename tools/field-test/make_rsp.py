#!/usr/bin/env python3
"""Writes a lenient csc response file for every TorchSharp project of the corpus (see make-rsp.sh).

A project is a .csproj whose compile items (the SDK's default **/*.cs glob under its directory, minus obj/, bin/,
hidden folders and nested projects, plus or minus explicit <Compile Include/Remove>) contain a file that names the
TorchSharp namespace (`using TorchSharp`, `TorchSharp.torch...`, `namespace TorchSharp`). A repository without any
.csproj counts each top folder holding such files as a project.

Each response file compiles the project's files with -nostdlib against the newest Microsoft.NETCore.App reference pack
(plus Microsoft.AspNetCore.App for web projects), TorchSharp 0.107.0 and the packages TorchSharp brings in transitively
(Google.Protobuf, SharpZipLib, SkiaSharp), TorchVision, xunit and Newtonsoft.Json where the project uses them
(KNOWN_PACKAGES), and a generated file of global usings (the SDK's implicit usings and the
project's <Using> items). No other NuGet package is resolved: code using one compiles with errors, which is accepted.

Project references inside the repository become references to metadata-only assemblies that `Diagnose emit-refs`
compiles (declarations that do not compile are left out) from response files of the referenced projects; those of projects outside the corpus go to
deps/. A project reference to dotnet/TorchSharp's own src/TorchSharp becomes the TorchSharp 0.107.0 package.
"""
import fnmatch
import glob
import os
import re
import sys
import xml.etree.ElementTree as ET

CORPUS = os.environ.get("CORPUS", "/work/corpus")
SRC = os.path.join(CORPUS, "src")
RSP_DIR = os.path.join(CORPUS, "rsp")
DEPS_DIR = os.path.join(CORPUS, "deps")
GEN_DIR = os.path.join(CORPUS, "gen")
REFS_DIR = os.path.join(CORPUS, "refs")

PACKAGES = os.environ.get("NUGET_PACKAGES") or os.path.expanduser("~/.nuget/packages")

TORCHSHARP_USE = re.compile(r"(?<![\w.])TorchSharp\s*[.;]|\bnamespace\s+TorchSharp\b")

IMPLICIT_USINGS = ["System", "System.Collections.Generic", "System.IO", "System.Linq", "System.Net.Http",
                   "System.Threading", "System.Threading.Tasks"]
WEB_USINGS = ["System.Net.Http.Json", "Microsoft.AspNetCore.Builder", "Microsoft.AspNetCore.Hosting",
              "Microsoft.AspNetCore.Http", "Microsoft.AspNetCore.Routing", "Microsoft.Extensions.Configuration",
              "Microsoft.Extensions.DependencyInjection", "Microsoft.Extensions.Hosting", "Microsoft.Extensions.Logging"]
# What the SDK defines for a net10.0 Release build.
DEFINES = (["TRACE", "RELEASE", "NET", "NET10_0", "NETCOREAPP"]
           + [f"NET{v}_0_OR_GREATER" for v in range(5, 11)]
           + ["NETCOREAPP1_0_OR_GREATER", "NETCOREAPP1_1_OR_GREATER", "NETCOREAPP2_0_OR_GREATER",
              "NETCOREAPP2_1_OR_GREATER", "NETCOREAPP2_2_OR_GREATER", "NETCOREAPP3_0_OR_GREATER",
              "NETCOREAPP3_1_OR_GREATER"])
TFM_PREFERENCE = ["net8.0", "net7.0", "net6.0", "net5.0", "netcoreapp3.1", "netstandard2.1", "netstandard2.0",
                  "netstandard1.6", "netstandard1.3", "netstandard1.1", "netstandard1.0"]
# Packages besides TorchSharp that are resolved (pinned versions, restored by make-rsp.sh) for a project that references
# them: TorchSharp's companion TorchVision, the xunit test framework (also for files that say `using Xunit`: the
# TorchSharp and ML.NET repositories add it from their build files) and Newtonsoft.Json. Any other package is left out.
KNOWN_PACKAGES = {
    "torchvision": [("torchvision", "0.107.0")],
    "xunit": [("xunit.assert", "2.9.3"), ("xunit.extensibility.core", "2.9.3"), ("xunit.abstractions", "2.0.3")],
    "newtonsoft.json": [("newtonsoft.json", "13.0.3")],
}
USING_XUNIT = re.compile(r"^\s*using\s+Xunit\b", re.M)


def log(*args):
    print(*args, file=sys.stderr)


def version_key(v):
    return [int(p) if p.isdigit() else p for p in re.split(r"[.-]", v)]


def newest_pack(name):
    base = f"/usr/share/dotnet/packs/{name}"
    if not os.path.isdir(base):
        return []
    version = max(os.listdir(base), key=version_key)
    ref = os.path.join(base, version, "ref")
    tfm = max(os.listdir(ref), key=lambda t: version_key(t.replace("net", "")))
    return sorted(glob.glob(os.path.join(ref, tfm, "*.dll")))


def package_lib(package, version):
    lib = os.path.join(PACKAGES, package, version, "lib")
    for tfm in TFM_PREFERENCE:
        dlls = sorted(glob.glob(os.path.join(lib, tfm, "*.dll")))
        if dlls:
            return dlls
    raise SystemExit(f"no usable lib folder in {lib}")


def strip_ns(root):
    for el in root.iter():
        if isinstance(el.tag, str) and "}" in el.tag:
            el.tag = el.tag.split("}", 1)[1]
    return root


def read_project(path):
    try:
        return strip_ns(ET.parse(path).getroot())
    except ET.ParseError as e:
        log(f"warning: cannot parse {path}: {e}")
        return None


def prop(root, name):
    """The last unconditional-enough value of a property (conditions are ignored: lenient)."""
    value = None
    for el in root.iter(name):
        if el.text and el.text.strip():
            value = el.text.strip()
    return value


class Conditions:
    """A small evaluator of MSBuild conditions, for a net8.0+ x64 Linux Release build (lenient: what it cannot
    evaluate counts as true)."""

    FUNCTIONS = [
        (re.compile(r"\$\(\[MSBuild\]::IsOSPlatform\(\s*'?(\w+)'?\s*\)\)", re.I),
         lambda m: "true" if m.group(1).lower() == "linux" else "false"),
        (re.compile(r"\$\(\[MSBuild\]::GetTargetFrameworkIdentifier\([^)]*\)\)", re.I), lambda m: ".NETCoreApp"),
        (re.compile(r"\$\(\[MSBuild\]::IsTargetFrameworkCompatible\([^)]*\)\)", re.I), lambda m: "true"),
    ]

    def __init__(self, root):
        self.props = {"Configuration": "Release", "Platform": "AnyCPU", "TargetArchitecture": "x64",
                      "OS": "Unix", "TargetFrameworkIdentifier": ".NETCoreApp", "MSBuildRuntimeType": "Core"}
        tfms = (prop(root, "TargetFrameworks") or prop(root, "TargetFramework") or "net8.0").split(";")
        core = [t.strip() for t in tfms if re.fullmatch(r"net(\d+\.\d+|coreapp[\d.]+)(-\w+)?", t.strip())]
        self.props["TargetFramework"] = core[-1] if core else "net8.0"
        # Plain properties the project sets itself (first pass, without conditions).
        for group in root.iter("PropertyGroup"):
            if group.get("Condition"):
                continue
            for el in group:
                if isinstance(el.tag, str) and el.text and not el.get("Condition") and el.tag not in self.props:
                    self.props[el.tag] = el.text.strip()

    def substitute(self, text):
        for pattern, repl in self.FUNCTIONS:
            text = pattern.sub(repl, text)
        return re.sub(r"\$\((\w+)\)", lambda m: self.props.get(m.group(1), ""), text)

    def holds(self, condition):
        if not condition:
            return True
        text = self.substitute(condition)
        if "$(" in text or "@(" in text or "%(" in text:
            return True
        try:
            tokens = re.findall(r"'[^']*'|==|!=|\(|\)|!|\band\b|\bor\b|[^\s()'!=]+", text, flags=re.I)
            value, rest = self._or(tokens)
            return bool(value) if not rest else True
        except Exception:
            return True

    def _or(self, t):
        v, t = self._and(t)
        while t and t[0].lower() == "or":
            w, t = self._and(t[1:])
            v = v or w
        return v, t

    def _and(self, t):
        v, t = self._not(t)
        while t and t[0].lower() == "and":
            w, t = self._not(t[1:])
            v = v and w
        return v, t

    def _not(self, t):
        if t and t[0] == "!":
            v, t = self._not(t[1:])
            return not v, t
        return self._cmp(t)

    def _cmp(self, t):
        if t[0] == "(":
            v, t = self._or(t[1:])
            return v, t[1:]
        left, t = self._atom(t)
        if t and t[0] in ("==", "!="):
            right, rest = self._atom(t[1:])
            same = left.lower() == right.lower()
            return (same if t[0] == "==" else not same), rest
        return left.lower() == "true", t

    @staticmethod
    def _atom(t):
        tok = t[0]
        return (tok[1:-1] if tok.startswith("'") else tok), t[1:]


def active(el, parents, conditions):
    while el is not None:
        if not conditions.holds(el.get("Condition")):
            return False
        el = parents.get(el)
    return True


def to_posix(p):
    return p.replace("\\", "/")


def expand(pattern, project_dir):
    pattern = to_posix(pattern.strip())
    pattern = pattern.replace("$(MSBuildThisFileDirectory)", project_dir + "/")
    pattern = pattern.replace("$(MSBuildProjectDirectory)", project_dir)
    if "$(" in pattern or "@(" in pattern:
        return None
    if not os.path.isabs(pattern):
        pattern = os.path.join(project_dir, pattern)
    return os.path.normpath(pattern) if "*" not in pattern else pattern


def is_excluded_dir(rel_parts):
    return any(p in ("obj", "bin") or p.startswith(".") for p in rel_parts)


def default_sources(project_dir, nested_dirs):
    files = []
    for dirpath, dirnames, filenames in os.walk(project_dir):
        rel = os.path.relpath(dirpath, project_dir)
        parts = [] if rel == "." else rel.split(os.sep)
        if is_excluded_dir(parts):
            dirnames[:] = []
            continue
        if dirpath != project_dir and dirpath in nested_dirs:
            dirnames[:] = []
            continue
        dirnames.sort()
        files.extend(os.path.join(dirpath, f) for f in sorted(filenames) if f.endswith(".cs"))
    return files


def glob_match(path, pattern):
    # MSBuild globs: ** spans folders, * does not (fnmatch's * does; close enough for Remove patterns).
    return fnmatch.fnmatchcase(path, pattern) or fnmatch.fnmatchcase(path, pattern.replace("/**/", "/"))


def uses_torchsharp(path):
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read()
    except OSError:
        return False
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    text = re.sub(r"//[^\n]*", " ", text)
    return bool(TORCHSHARP_USE.search(text))


class Project:
    def __init__(self, repo, csproj, directory, name):
        self.repo, self.csproj, self.dir, self.name = repo, csproj, directory, name
        self.sources, self.own_sources, self.usings, self.static_usings, self.aliases = [], [], [], [], []
        self.assembly_name, self.exe, self.web, self.project_refs = name, False, False, []
        self.is_torchsharp_itself = False
        self.packages = set()

    @property
    def key(self):
        return f"{self.repo}+{self.name}"

    @property
    def ref_path(self):
        return os.path.join(REFS_DIR, self.key, self.assembly_name + ".dll")


def load_csproj(repo, csproj, nested_dirs):
    project_dir = os.path.dirname(csproj)
    p = Project(repo, csproj, project_dir, os.path.splitext(os.path.basename(csproj))[0])
    root = read_project(csproj)
    if root is None:
        p.sources = p.own_sources = default_sources(project_dir, nested_dirs)
        return p
    conditions = Conditions(root)
    parents = {child: parent for parent in root.iter() for child in parent}

    def items(tag):
        return [el for el in root.iter(tag) if active(el, parents, conditions)]

    asm = prop(root, "AssemblyName")
    if asm and "$(" not in asm:
        p.assembly_name = asm
    p.is_torchsharp_itself = p.assembly_name == "TorchSharp" or (
        p.name == "TorchSharp" and repo == "dotnet+TorchSharp")
    out_type = (prop(root, "OutputType") or "").lower()
    p.exe = out_type in ("exe", "winexe")
    sdk = root.get("Sdk", "")
    p.web = sdk.endswith(".Web") or any(
        (el.get("Include") or "") == "Microsoft.AspNetCore.App" for el in root.iter("FrameworkReference"))
    enable_default = (prop(root, "EnableDefaultCompileItems") or "true").lower() != "false"
    sources = default_sources(project_dir, nested_dirs) if enable_default else []
    removes = [expand(el.get("Remove"), project_dir) for el in items("Compile") if el.get("Remove")]
    for pattern in filter(None, removes):
        for single in pattern.split(";"):
            sources = [s for s in sources if not glob_match(s, single) and s != single]
    p.own_sources = list(sources)
    for el in items("Compile"):
        include = el.get("Include")
        if not include:
            continue
        for single in include.split(";"):
            pattern = expand(single, project_dir)
            if pattern is None:
                continue
            matches = sorted(glob.glob(pattern, recursive=True)) if "*" in pattern else [pattern]
            for m in matches:
                m = os.path.normpath(m)
                if m.endswith(".cs") and os.path.isfile(m) and m not in sources:
                    sources.append(m)
    p.sources = sources
    p.packages = {(el.get("Include") or el.get("Update") or "").strip().lower() for el in items("PackageReference")}
    for el in items("Using"):
        name = el.get("Include")
        if not name or el.get("Remove"):
            continue
        def metadata(key):
            # Item metadata is an attribute or a child element.
            child = el.find(key)
            return el.get(key) or (child.text.strip() if child is not None and child.text else None)
        if metadata("Alias"):
            p.aliases.append((metadata("Alias"), name))
        elif (metadata("Static") or "").lower() == "true":
            p.static_usings.append(name)
        else:
            p.usings.append(name)
    for el in items("ProjectReference"):
        include = el.get("Include")
        if (el.get("ReferenceOutputAssembly") or "").lower() == "false" or el.get("OutputItemType") == "Analyzer":
            continue
        if include:
            target = expand(include, project_dir)
            if target and os.path.isfile(target):
                p.project_refs.append(os.path.normpath(target))
            else:
                log(f"warning: {csproj}: project reference {include} not found")
    return p


def repo_projects(repo):
    repo_dir = os.path.join(SRC, repo)
    csprojs = []
    for dirpath, dirnames, filenames in os.walk(repo_dir):
        rel = os.path.relpath(dirpath, repo_dir)
        if is_excluded_dir([] if rel == "." else rel.split(os.sep)):
            dirnames[:] = []
            continue
        dirnames.sort()
        candidates = sorted(f for f in filenames if f.endswith(".csproj"))
        if len(candidates) > 1:
            # Several project files in one folder (copies, backups): take the one named like the folder.
            named = [c for c in candidates if os.path.splitext(c)[0] == os.path.basename(dirpath)]
            chosen = named[0] if named else candidates[0]
            log(f"note: {dirpath}: several .csproj, using {chosen}")
            candidates = [chosen]
        csprojs.extend(os.path.join(dirpath, c) for c in candidates)
    nested_dirs = {os.path.dirname(c) for c in csprojs}
    projects = [load_csproj(repo, c, nested_dirs) for c in csprojs]
    if not projects:
        # No project file: each top folder (and the root's own files) with TorchSharp code is a project.
        for entry in sorted(os.listdir(repo_dir)):
            d = os.path.join(repo_dir, entry)
            if os.path.isdir(d) and not entry.startswith("."):
                p = Project(repo, None, d, entry)
                p.sources = p.own_sources = default_sources(d, set())
                projects.append(p)
        root_files = [os.path.join(repo_dir, f) for f in sorted(os.listdir(repo_dir)) if f.endswith(".cs")]
        if root_files:
            p = Project(repo, None, repo_dir, "root")
            p.sources = p.own_sources = root_files
            projects.append(p)
    # Keys must be unique within the repository.
    seen = {}
    for p in projects:
        if p.name in seen:
            seen[p.name] += 1
            p.name = f"{p.name}-{seen[p.name]}"
        else:
            seen[p.name] = 1
    return projects


def quote(path):
    return f'"{path}"' if any(c in path for c in " ;,") else path


def write_rsp(path, project, references, extra_usings_file):
    lines = ["-noconfig", "-nostdlib+", "-nologo", "-unsafe+", "-langversion:latest",
             f"-target:{'exe' if project.exe else 'library'}",
             "-define:" + ";".join(DEFINES),
             # Warnings do not matter here; errors are counted by Diagnose.
             "-nowarn:CS1591,CS1998,CS0168,CS0219,CS0414,CS0649,CS0169,CS8981",
             "-out:" + quote(project.ref_path)]
    lines += ["-reference:" + quote(r) for r in references]
    lines += [quote(extra_usings_file)]
    lines += [quote(s) for s in project.sources]
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")


def write_usings(project):
    os.makedirs(GEN_DIR, exist_ok=True)
    path = os.path.join(GEN_DIR, project.key + ".GlobalUsings.g.cs")
    names = IMPLICIT_USINGS + (WEB_USINGS if project.web else [])
    lines = ["// <auto-generated/> The SDK's implicit usings and the project's <Using> items (corpus/tools/make_rsp.py)."]
    lines += [f"global using global::{n};" for n in names]
    lines += [f"global using global::{n};" for n in project.usings if n not in names]
    lines += [f"global using static global::{n};" for n in project.static_usings]
    lines += [f"global using {a} = global::{n};" for a, n in project.aliases]
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    return path


def main():
    framework = newest_pack("Microsoft.NETCore.App.Ref")
    aspnet = newest_pack("Microsoft.AspNetCore.App.Ref")
    torchsharp_dir = os.path.join(PACKAGES, "torchsharp", "0.107.0")
    if not os.path.isdir(torchsharp_dir):
        raise SystemExit("TorchSharp 0.107.0 is not in the NuGet cache (make-rsp.sh restores it)")
    torchsharp = package_lib("torchsharp", "0.107.0")
    transitive = package_lib("google.protobuf", "3.21.9") + package_lib("sharpziplib", "1.4.0") \
        + package_lib("skiasharp", "2.88.6")
    package_refs = torchsharp + transitive
    known = {name: [dll for package, version in ids for dll in package_lib(package, version)]
             for name, ids in KNOWN_PACKAGES.items()}

    def extra_packages(project):
        names = set(project.packages)
        if any(USING_XUNIT.search(open(f, encoding="utf-8", errors="replace").read()) for f in project.own_sources):
            names.add("xunit")
        return [dll for name in sorted(known) if name in names for dll in known[name]]

    repos = [line.split()[0].replace("/", "+") for line in open(os.environ.get("REPOSITORIES", os.path.join(os.path.dirname(os.path.abspath(__file__)), "repositories.txt")))
             if line.strip() and not line.startswith("#")]
    for d in (RSP_DIR, DEPS_DIR):
        os.makedirs(d, exist_ok=True)
        for old in glob.glob(os.path.join(d, "*.rsp")):
            os.remove(old)

    all_projects = {}
    corpus, summary = [], []
    for repo in repos:
        if not os.path.isdir(os.path.join(SRC, repo)):
            log(f"warning: {repo} is not extracted (tools/extract.sh)")
            continue
        projects = repo_projects(repo)
        for p in projects:
            if p.csproj:
                all_projects[p.csproj] = p
        chosen = [p for p in projects
                  if not p.is_torchsharp_itself and any(uses_torchsharp(s) for s in p.own_sources)]
        if not chosen:
            log(f"warning: {repo}: no project with TorchSharp code")
        corpus.extend(chosen)

    corpus_keys = {p.key for p in corpus}

    def closure(project):
        """Transitive project references, dependencies first."""
        order, seen = [], set()

        def visit(p, stack):
            for target in p.project_refs:
                dep = all_projects.get(target)
                if dep is None or target in seen:
                    continue
                if target in stack:
                    log(f"warning: project reference cycle through {target}")
                    continue
                seen.add(target)
                if not dep.is_torchsharp_itself:
                    visit(dep, stack | {target})
                order.append(dep)
        visit(project, {project.csproj})
        return order

    emit_order, emitted = [], set()
    for p in corpus:
        deps = closure(p)
        refs = list(framework) + (aspnet if p.web else []) + package_refs + extra_packages(p)
        for d in deps:
            if d.is_torchsharp_itself:
                continue
            refs.append(d.ref_path)
            if d.key not in emitted:
                emitted.add(d.key)
                emit_order.append(d)
        p.resolved_refs = refs
        write_rsp(os.path.join(RSP_DIR, p.key + ".rsp"), p, refs, write_usings(p))
        summary.append((p.key, len(p.sources), [d.key for d in deps if not d.is_torchsharp_itself]))

    # Response files for referenced projects outside the corpus (compiled to metadata only, never analysed).
    written_deps = set()

    def write_dep(d):
        if d.key in corpus_keys or d.key in written_deps:
            return
        written_deps.add(d.key)
        sub = [x for x in closure(d) if not x.is_torchsharp_itself]
        refs = list(framework) + (aspnet if d.web else []) + package_refs + extra_packages(d) \
            + [x.ref_path for x in sub]
        write_rsp(os.path.join(DEPS_DIR, d.key + ".rsp"), d, refs, write_usings(d))

    # Emit order: every referenced project after its own references.
    ordered, placed = [], set()

    def place(d):
        if d.key in placed:
            return
        for x in closure(d):
            if not x.is_torchsharp_itself:
                place(x)
        placed.add(d.key)
        ordered.append(d)

    for d in emit_order:
        place(d)
    for d in ordered:
        write_dep(d)
    with open(os.path.join(DEPS_DIR, "emit-order.txt"), "w") as f:
        for d in ordered:
            folder = RSP_DIR if d.key in corpus_keys else DEPS_DIR
            f.write(os.path.join(folder, d.key + ".rsp") + "\n")

    for key, n, deps in summary:
        print(f"{key}: {n} files" + (f"; references {', '.join(deps)}" if deps else ""))
    print(f"{len(summary)} projects in {len({k.split('+')[0] + '+' + k.split('+')[1] for k, _, _ in summary})} repositories;"
          f" {len(ordered)} referenced projects compiled to metadata ({len(written_deps)} outside the corpus)")


if __name__ == "__main__":
    main()
