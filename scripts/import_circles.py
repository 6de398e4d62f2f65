#!/usr/bin/env python3
"""Lists import circles between the top-level modules of src/ (each `crate::X` a file names,
comments left out; --no-tests leaves out each file's `mod tests`). Exit status 1 when there is one.

    python3 scripts/import_circles.py [src] [--no-tests]
"""
import os, re, sys
args = [a for a in sys.argv[1:] if not a.startswith("--")]
root = args[0] if args else "src"
skip_tests = "--no-tests" in sys.argv
tops = {os.path.splitext(n)[0] for n in os.listdir(root) if n != "lib.rs" and (n.endswith(".rs") or os.path.isdir(os.path.join(root, n)))}
edges = {t: set() for t in tops}
why = {}
for d, _, files in os.walk(root):
    for f in files:
        if not f.endswith(".rs"): continue
        p = os.path.join(d, f)
        rel = os.path.relpath(p, root).split(os.sep)
        if rel == ["lib.rs"]: continue
        me = os.path.splitext(rel[0])[0]
        text = open(p).read()
        if skip_tests:
            i = text.find("#[cfg(test)]\nmod tests")
            if i >= 0: text = text[:i]
        text = re.sub(r"//[^\n]*", "", text)  # comments and doc comments
        # crate::a, and each name of a group: crate::{a::.., b}
        names = re.findall(r"\bcrate::([a-z_][a-z0-9_]*)", text)
        for g in re.findall(r"\bcrate::\{([^;]*?)\}\s*;", text, re.S):
            names += re.findall(r"(?:^|[,{]\s*)([a-z_][a-z0-9_]*)", g)
        for n in names:
            if n in tops and n != me:
                edges[me].add(n); why.setdefault((me, n), p)
# Tarjan's strongly connected components
idx, low, st, on, out, c = {}, {}, [], set(), [], [0]
def sc(v):
    idx[v] = low[v] = c[0]; c[0] += 1; st.append(v); on.add(v)
    for w in edges[v]:
        if w not in idx: sc(w); low[v] = min(low[v], low[w])
        elif w in on: low[v] = min(low[v], idx[w])
    if low[v] == idx[v]:
        comp = []
        while True:
            w = st.pop(); on.discard(w); comp.append(w)
            if w == v: break
        if len(comp) > 1: out.append(sorted(comp))
for v in sorted(tops):
    if v not in idx: sc(v)
for comp in out:
    print("circle:", " ".join(comp))
    for a in comp:
        for b in sorted(edges[a] & set(comp)):
            print(f"  {a} -> {b} ({why[(a, b)]})")
print("no circle" if not out else f"{len(out)} circle(s)")
sys.exit(1 if out else 0)
