#!/usr/bin/env python3
"""Lists the cycles between tessera's modules (src/), so that none creeps back in.

A module depends on another when its code names it: a `use` of `crate::a::b`,
`super::x` or `child::y`, or a path such as `crate::a::f(..)` in the code (comments, doc
links and `#[cfg(test)]` modules excluded; a `pub use` re-export is not a use). A
parent that uses a child's items and a child that uses its parent's own items form a
cycle, as do two siblings that use each other.
Prints each cycle (a strongly connected set of modules) and exits 1 if there is one.
Usage: scripts/module-cycles.py [SRC_DIR]
"""
import os
import re
import sys

SRC = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "src")


def module_of(path):
    rel = os.path.relpath(path, SRC)[:-3].split(os.sep)
    if rel[-1] in ("mod", "lib", "main"):
        rel = rel[:-1]
    return tuple(rel)


def strip_comments(text):
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return "\n".join(re.sub(r"//.*", "", line) for line in text.split("\n"))


def test_free(text):
    """The file from its first `#[cfg(test)] mod` block on (tests and test fixtures may use
    anything)."""
    m = re.search(r"#\[cfg\(test\)\]\s*(?:pub(?:\([^)]*\))?\s+)?mod \w+\s*\{", text)
    return text[: m.start()] if m else text


def paths_in(text, children=()):
    """Every `crate::…`/`super::…`/`self::…` path (and `child::…` for the module's own
    children), expanding `use a::{b, c::d}` groups."""
    out = []
    for m in re.finditer(r"(\bpub(?:\([^)]*\))?\s+)?\buse\s+([^;]+);", text):
        if m.group(1):
            continue  # a re-export surfaces a child's items; it is not a use of them
        out.extend(expand(m.group(2).replace("\n", " ")))
    body = re.sub(r"\buse\s+[^;]+;", "", text)
    out.extend(re.findall(r"\b((?:crate|super|self)(?:::\w+)+)", body))
    for child in children:
        out.extend(re.findall(r"(?<![:\w])(" + child + r"(?:::\w+)+)", body))
    return out


def expand(tree):
    tree = tree.strip()
    i = tree.find("{")
    if i < 0:
        return [tree.split(" as ")[0].strip()]
    prefix, inner = tree[:i], tree[i + 1 : tree.rfind("}")]
    parts, depth, cur = [], 0, ""
    for ch in inner:
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
            continue
        depth += ch == "{"
        depth -= ch == "}"
        cur += ch
    parts.append(cur)
    return [p for part in parts if part.strip() for p in expand(prefix + part.strip())]


def resolve(module, path, modules):
    segs = path.split("::")
    base = list(module)
    if segs[0] == "crate":
        base, segs = [], segs[1:]
    else:
        while segs and segs[0] in ("super", "self"):
            if segs[0] == "super":
                base = base[:-1]
            segs = segs[1:]
    full = tuple(base + segs)
    while full and full not in modules:
        full = full[:-1]
    return full


def main():
    files = {}
    for root, _, names in os.walk(SRC):
        for n in names:
            if n.endswith(".rs"):
                p = os.path.join(root, n)
                files[module_of(p)] = p
    modules = set(files) | {()}
    edges = {m: set() for m in modules}
    for m, p in files.items():
        text = test_free(strip_comments(open(p).read()))
        children = [c[-1] for c in files if len(c) == len(m) + 1 and c[: len(m)] == m]
        for path in paths_in(text, children):
            target = resolve(m, path, modules)
            # A module's own items are not a dependency.
            if target == m:
                continue
            # The crate root (lib.rs/main.rs) only declares and re-exports.
            if target == ():
                continue
            edges[m].add(target)
    cycles = [c for c in sccs(edges) if len(c) > 1]
    for c in cycles:
        print("cycle: " + " <-> ".join("/".join(x) or "crate" for x in sorted(c)))
    print(f"{len(files)} modules, {len(cycles)} cycles")
    sys.exit(1 if cycles else 0)


def sccs(edges):
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            out.append(comp)

    sys.setrecursionlimit(10000)
    for v in list(edges):
        if v not in index:
            visit(v)
    return out


if __name__ == "__main__":
    main()
