#!/usr/bin/env python3
"""Cycles among the library's modules (issue 13: "no circle of imports").

Reads every src/**/*.rs, takes the `crate::a::b` paths (and `use super::`
is within a module, so not counted; nor are test modules, inline or in a
tests.rs) and reports each strongly connected
set of modules at depth 1 (src/<module>) and depth 2 (src/<m>/<sub>).
Exit 1 if there is a cycle. Usage: scripts/module-cycles.py [depth]
"""
import os, re, sys
from collections import defaultdict

depth = int(sys.argv[1]) if len(sys.argv) > 1 else 2
root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src")
edges = defaultdict(set)

def module_of(rel):
    parts = rel[:-3].split(os.sep)
    if parts[-1] == "mod":
        parts = parts[:-1]
    return "::".join(parts[:depth]) if parts and parts[0] not in ("lib", "main") else None

for dirpath, _, files in os.walk(root):
    for f in files:
        # test modules (`#[cfg(test)] mod tests;` files) are not the library's imports
        if not f.endswith(".rs") or f == "tests.rs":
            continue
        rel = os.path.relpath(os.path.join(dirpath, f), root)
        src = module_of(rel)
        if src is None:
            continue
        text = open(os.path.join(dirpath, f)).read()
        text = re.sub(r"#\[cfg\(test\)\]\s*mod tests \{.*", "", text, flags=re.S)
        for m in re.finditer(r"crate::((?:[a-z_]+::)*[a-z_]+)", text):
            path = m.group(1).split("::")
            # the deepest prefix that is a module file or folder
            target = None
            for k in range(min(depth, len(path)), 0, -1):
                cand = os.path.join(root, *path[:k])
                if os.path.isdir(cand) or os.path.exists(cand + ".rs"):
                    target = "::".join(path[:k])
                    break
            if target and target != src and not src.startswith(target + "::") and not target.startswith(src + "::"):
                edges[src].add(target)

# Tarjan
index, low, stack, on, out, n = {}, {}, [], set(), [], [0]
def visit(v):
    index[v] = low[v] = n[0]; n[0] += 1; stack.append(v); on.add(v)
    for w in edges.get(v, ()):
        if w not in index:
            visit(w); low[v] = min(low[v], low[w])
        elif w in on:
            low[v] = min(low[v], index[w])
    if low[v] == index[v]:
        comp = []
        while True:
            w = stack.pop(); on.discard(w); comp.append(w)
            if w == v: break
        if len(comp) > 1:
            out.append(sorted(comp))
sys.setrecursionlimit(10000)
for v in list(edges):
    if v not in index:
        visit(v)
for comp in out:
    print("cycle:", " <-> ".join(comp))
    for a in comp:
        print("   ", a, "->", ", ".join(sorted(b for b in edges[a] if b in comp)))
print(f"{len(out)} cycles among {len(set(edges) | set().union(*edges.values()))} modules (depth {depth})")
sys.exit(1 if out else 0)
