#!/usr/bin/env python3
"""Drive csharp-ls over stdio: do MlPitfalls' analyzer diagnostics (MLP*) and code fixes show up?

Usage:
  python3 csharp-ls-check.py --root DIR --file REL/PATH.cs [--solution X.sln] [--mode pull|push]
                        [--analyzers on|off] [--timeout 180] [--server "dotnet csharp-ls"] [--cwd DIR]

Exit code: 0 if at least one MLP diagnostic was seen, 2 if none (timeout), 3 on protocol/server failure.
Prints one line per MLP diagnostic and, for each distinct MLP diagnostic, the titles of the code actions
the server returns for its range.
"""
import argparse
import json
import os
import pathlib
import queue
import re
import shlex
import subprocess
import sys
import threading
import time

T0 = time.monotonic()


def log(*a):
    print(f"[{time.monotonic() - T0:7.1f}s]", *a, flush=True)


class Lsp:
    def __init__(self, cmd, cwd, analyzers, wire_log=None):
        self.proc = subprocess.Popen(cmd, cwd=cwd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE)
        self.analyzers = analyzers
        self.next_id = 1
        self.lock = threading.Lock()
        self.pending = {}          # id -> queue for the response
        self.notifications = queue.Queue()
        self.wire = open(wire_log, "w") if wire_log else None
        threading.Thread(target=self._reader, daemon=True).start()
        threading.Thread(target=self._stderr, daemon=True).start()

    # ---- transport ----
    def _send(self, msg):
        body = json.dumps(msg).encode()
        if self.wire:
            self.wire.write("C->S " + body.decode() + "\n"); self.wire.flush()
        with self.lock:
            self.proc.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
            self.proc.stdin.flush()

    def _stderr(self):
        for line in self.proc.stderr:
            if self.wire:
                self.wire.write("STDERR " + line.decode(errors="replace")); self.wire.flush()

    def _reader(self):
        out = self.proc.stdout
        while True:
            headers = {}
            while True:
                line = out.readline()
                if not line:
                    self.notifications.put({"method": "<eof>"})
                    return
                line = line.decode().strip()
                if not line:
                    break
                k, v = line.split(":", 1)
                headers[k.strip().lower()] = v.strip()
            body = out.read(int(headers["content-length"]))
            msg = json.loads(body)
            if self.wire:
                self.wire.write("S->C " + body.decode() + "\n"); self.wire.flush()
            if "id" in msg and "method" in msg:
                self._answer_server_request(msg)
            elif "id" in msg:
                q = self.pending.pop(msg["id"], None)
                if q:
                    q.put(msg)
            else:
                self.notifications.put(msg)

    def _answer_server_request(self, msg):
        method, params = msg["method"], msg.get("params") or {}
        result = None
        if method == "workspace/configuration":
            result = []
            for item in params.get("items", []):
                section = item.get("section")
                if section == "csharp":
                    result.append({"analyzersEnabled": self.analyzers, "logLevel": "info"})
                elif section == "csharp.analyzersEnabled":
                    result.append(self.analyzers)
                else:
                    result.append(None)
            log("server asked workspace/configuration", json.dumps(params.get("items")), "->", json.dumps(result))
        elif method in ("client/registerCapability", "client/unregisterCapability",
                        "window/workDoneProgress/create", "workspace/diagnostic/refresh",
                        "workspace/codeLens/refresh", "workspace/semanticTokens/refresh",
                        "workspace/inlayHint/refresh"):
            if method == "client/registerCapability":
                log("server registered", [r.get("method") for r in params.get("registrations", [])])
            if method == "workspace/diagnostic/refresh":
                self.notifications.put({"method": "<diagnostic-refresh>"})
        elif method == "window/showMessageRequest":
            result = None
        else:
            log("unhandled server request", method, "(answering null)")
        self._send({"jsonrpc": "2.0", "id": msg["id"], "result": result})

    # ---- API ----
    def request(self, method, params, timeout=120):
        rid = self.next_id
        self.next_id += 1
        q = queue.Queue()
        self.pending[rid] = q
        self._send({"jsonrpc": "2.0", "id": rid, "method": method, "params": params})
        try:
            return q.get(timeout=timeout)
        except queue.Empty:
            self.pending.pop(rid, None)
            return {"error": {"message": f"timeout after {timeout}s waiting for {method}"}}

    def notify(self, method, params):
        self._send({"jsonrpc": "2.0", "method": method, "params": params})


# Title shapes of MlPitfalls' own code fixes (src/MlPitfalls.CodeFixes), to tell them apart from the server's
# built-in Roslyn refactorings (Extract method, Introduce local, ...), which carry no diagnostics in their answer.
MLP_FIX_TITLE = re.compile(
    r"zero_grad\(\)' at the start of the loop|^Move the gradient clearing before backward|"
    r"^Create the layer with '.*: false'|^Give the output layer a bias|"
    r"^Call '.*\.(eval|train)\(\)' (before|at the start)|"
    r"^Use permute\(|^Call contiguous\(\) before view|^Use reshape instead of view|"
    r"^Pass the logits to the loss|^Remove the final .* layer|^Use a LogSoftmax layer|^Use log_softmax instead|"
    r"^Use .* instead$|^Apply log_softmax over|^Pass log_target: false")


def is_mlp(d):
    return str(d.get("code", "")).startswith("MLP")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", required=True)
    ap.add_argument("--file", required=True, action="append", help="file(s) to open, relative to --root")
    ap.add_argument("--solution", help="passed to csharp-ls --solution (relative to --cwd)")
    ap.add_argument("--mode", choices=["pull", "push"], default="pull")
    ap.add_argument("--analyzers", choices=["on", "off"], default="on")
    ap.add_argument("--timeout", type=float, default=180)
    ap.add_argument("--server", default="dotnet csharp-ls")
    ap.add_argument("--cwd", default=None, help="cwd for the server (default: --root)")
    ap.add_argument("--wire-log", default=None)
    args = ap.parse_args()

    root = pathlib.Path(args.root).resolve()
    cmd = shlex.split(args.server) + ["--loglevel", "info"]
    if args.solution:
        cmd += ["--solution", args.solution]
    log("starting:", " ".join(cmd), "cwd=", args.cwd or root)
    lsp = Lsp(cmd, args.cwd or str(root), args.analyzers == "on", args.wire_log)

    text_doc_caps = {
        "synchronization": {"didSave": True},
        "codeAction": {"codeActionLiteralSupport": {"codeActionKind": {"valueSet": [
            "", "quickfix", "refactor", "refactor.extract", "refactor.inline", "refactor.rewrite",
            "source", "source.organizeImports"]}}, "resolveSupport": {"properties": ["edit"]},
            "dataSupport": True},
    }
    if args.mode == "pull":
        text_doc_caps["diagnostic"] = {"dynamicRegistration": True, "relatedDocumentSupport": False}
    else:
        text_doc_caps["publishDiagnostics"] = {"relatedInformation": True}
    init = lsp.request("initialize", {
        "processId": os.getpid(),
        "rootUri": root.as_uri(),
        "rootPath": str(root),
        "workspaceFolders": [{"uri": root.as_uri(), "name": root.name}],
        "capabilities": {
            "workspace": {"configuration": True, "workspaceFolders": True,
                          "didChangeConfiguration": {"dynamicRegistration": True},
                          "diagnostics": {"refreshSupport": True}},
            "textDocument": text_doc_caps,
            "window": {"workDoneProgress": True},
        },
        "initializationOptions": {"csharp": {"analyzersEnabled": args.analyzers == "on"}},
    }, timeout=120)
    if "error" in init:
        log("initialize failed:", init["error"]); return 3
    caps = init["result"]["capabilities"]
    log("initialized; server info:", init["result"].get("serverInfo"),
        "diagnosticProvider:", caps.get("diagnosticProvider"), "codeActionProvider:", caps.get("codeActionProvider"))
    lsp.notify("initialized", {})
    lsp.notify("workspace/didChangeConfiguration",
               {"settings": {"csharp": {"analyzersEnabled": args.analyzers == "on"}}})

    uris = []
    for rel in args.file:
        path = root / rel
        uri = path.as_uri()
        uris.append(uri)
        lsp.notify("textDocument/didOpen", {"textDocument": {
            "uri": uri, "languageId": "csharp", "version": 1, "text": path.read_text()}})
        log("didOpen", rel)

    deadline = time.monotonic() + args.timeout
    mlp = {}      # uri -> list of MLP diagnostics
    seen_any = {}  # uri -> all diagnostics from the latest result
    first_mlp_at = None
    while time.monotonic() < deadline and not all(mlp.get(u) for u in uris):
        # drain notifications
        try:
            while True:
                n = lsp.notifications.get(timeout=0.5 if args.mode == "pull" else 2)
                m = n.get("method")
                if m == "<eof>":
                    log("server exited, rc=", lsp.proc.poll()); return 3
                if m == "textDocument/publishDiagnostics":
                    p = n["params"]
                    seen_any[p["uri"]] = p["diagnostics"]
                    found = [d for d in p["diagnostics"] if is_mlp(d)]
                    log(f"publishDiagnostics {pathlib.Path(p['uri']).name}: {len(p['diagnostics'])} diagnostics, "
                        f"{len(found)} MLP; codes={sorted({str(d.get('code')) for d in p['diagnostics']})}")
                    if found:
                        mlp[p["uri"]] = found
                elif m == "window/logMessage" or m == "window/showMessage":
                    msg = n["params"]["message"]
                    if any(k in msg.lower() for k in ("solution", "project", "error", "fail", "load")):
                        log("server:", msg[:300])
                elif m == "$/progress":
                    v = n["params"].get("value", {})
                    if v.get("kind") in ("begin", "end") or v.get("message"):
                        log("progress:", v.get("kind"), v.get("title", ""), v.get("message", ""))
        except queue.Empty:
            pass
        if args.mode == "pull":
            for uri in uris:
                if mlp.get(uri):
                    continue
                r = lsp.request("textDocument/diagnostic", {"textDocument": {"uri": uri}}, timeout=max(5, deadline - time.monotonic()))
                if "error" in r:
                    log("textDocument/diagnostic error:", r["error"].get("message"))
                    time.sleep(2)
                    continue
                items = (r.get("result") or {}).get("items") or []
                seen_any[uri] = items
                found = [d for d in items if is_mlp(d)]
                log(f"textDocument/diagnostic {pathlib.Path(uri).name}: {len(items)} diagnostics, {len(found)} MLP; "
                    f"codes={sorted({str(d.get('code')) for d in items})}")
                if found:
                    mlp[uri] = found
                else:
                    time.sleep(3)
        if first_mlp_at is None and any(mlp.values()):
            first_mlp_at = time.monotonic() - T0

    print()
    if not any(mlp.values()):
        log(f"NO MLP diagnostics within {args.timeout:.0f}s (analyzersEnabled={args.analyzers}, mode={args.mode})")
        for uri, ds in seen_any.items():
            for d in ds:
                log("  other:", d.get("code"), d["message"][:120])
        lsp.proc.terminate()
        return 2

    log(f"first MLP diagnostic after {first_mlp_at:.1f}s")
    for uri, ds in mlp.items():
        for d in ds:
            s = d["range"]["start"]
            print(f"MLP-DIAGNOSTIC {pathlib.Path(uri).name}({s['line'] + 1},{s['character'] + 1}) "
                  f"{d.get('code')} severity={d.get('severity')}: {d['message'][:140]}")

    print()
    any_mlp_fix = False
    for uri, ds in mlp.items():
        for d in ds:
            t = time.monotonic()
            r = lsp.request("textDocument/codeAction", {
                "textDocument": {"uri": uri}, "range": d["range"],
                "context": {"diagnostics": [d], "triggerKind": 1}}, timeout=120)
            if "error" in r:
                print(f"CODE-ACTIONS for {d.get('code')}: ERROR {r['error']}")
                continue
            actions = r.get("result") or []
            print(f"CODE-ACTIONS for {d.get('code')} at {pathlib.Path(uri).name} line {d['range']['start']['line'] + 1} "
                  f"({time.monotonic() - t:.1f}s): {len(actions)} offered")
            for a in actions:
                fixes = [x.get("code") for x in (a.get("diagnostics") or [])]
                print(f"    - {a.get('title')!r} kind={a.get('kind')} diagnostics={fixes}")
            if any(MLP_FIX_TITLE.search(a.get("title", "")) or
                   any(str(x.get("code", "")).startswith("MLP") for x in (a.get("diagnostics") or []))
                   for a in actions):
                any_mlp_fix = True
    # control: a compiler/IDE diagnostic with a built-in fix (CS8019 unnecessary using -> "Remove unnecessary usings")
    for uri, ds in seen_any.items():
        for d in ds:
            if str(d.get("code")) in ("CS8019", "IDE0005"):
                r = lsp.request("textDocument/codeAction", {
                    "textDocument": {"uri": uri}, "range": d["range"],
                    "context": {"diagnostics": [d], "triggerKind": 1}}, timeout=120)
                titles = [a.get("title") for a in (r.get("result") or [])]
                print(f"CONTROL CODE-ACTIONS for {d.get('code')} at {pathlib.Path(uri).name} line "
                      f"{d['range']['start']['line'] + 1}: {titles}")
                break
    print()
    log("summary: MLP ids seen:", sorted({str(d.get("code")) for ds in mlp.values() for d in ds}),
        "| code action tied to an MLP diagnostic:", any_mlp_fix)
    lsp.request("shutdown", None, timeout=20)
    lsp.notify("exit", None)
    try:
        lsp.proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        lsp.proc.kill()
    return 0


if __name__ == "__main__":
    sys.exit(main())
