#!/usr/bin/env python3
"""Checks the layout rules of the workspace's crates.

- No import cycles between modules: an edge A -> B is any path in A's
  (non-test) code that names B or an item in B through `crate::`,
  `super::`, `self::` or a child module's name. Test code (`mod tests`,
  everything after `#[cfg(test)]` at the top level) is left out.
- No import cycles between top-level modules either, each taken with
  everything under it.
- Every source file opens with a `//!` doc comment saying its job.
- Files longer than 400 lines are listed (a hint, not a failure).

Exit status 1 when a rule is broken. Run from anywhere:
`python3 .ci/layout.py`.
"""
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CRATES = ["proto", "net", "route", "vnet", "testkit", "bench", "e2e", "lab/linkemu"]
LONG = 400


def module_of(src, path):
    rel = os.path.relpath(path, src)[:-3].split(os.sep)
    if rel == ["lib"]:
        return ()
    if rel[-1] == "mod":
        rel = rel[:-1]
    return tuple(rel)


def strip_tests(text):
    # Top-level test modules and everything after a top-level #[cfg(test)].
    m = re.search(r"^#\[cfg\(test\)\]", text, re.M)
    text = text[: m.start()] if m else text
    # Comments and strings say nothing about imports.
    text = re.sub(r"//[^\n]*", "", text)
    text = re.sub(r'"(?:\\.|[^"\\])*"', '""', text)
    return text


def paths_in(text):
    """Every `a::b::c` path, with `use` groups expanded."""
    out = []
    use = r"^\s*(?:pub(?:\([^)]*\))?\s+)?use\s+([^;]+);"
    for m in re.finditer(use, text, re.M | re.S):
        out.extend(expand(re.sub(r"\s+", "", m.group(1))))
    body = re.sub(use, "", text, flags=re.M | re.S)
    out.extend(m.group(0) for m in re.finditer(r"\b(?:[A-Za-z_][A-Za-z0-9_]*::)+[A-Za-z_][A-Za-z0-9_]*", body))
    return out


def expand(tree):
    m = re.match(r"^(.*?)\{(.*)\}$", tree)
    if not m:
        return [tree.split(" as ")[0]]
    prefix, inner = m.group(1), m.group(2)
    parts, depth, cur = [], 0, ""
    for c in inner:
        if c == "," and depth == 0:
            parts.append(cur)
            cur = ""
            continue
        depth += c == "{"
        depth -= c == "}"
        cur += c
    parts.append(cur)
    out = []
    for p in parts:
        if p in ("", "self"):
            out.append(prefix.rstrip(":"))
        else:
            out.extend(expand(prefix + p))
    return out


def resolve(path, here, children, modules):
    segs = [s for s in path.split("::") if s]
    if not segs:
        return None
    if segs[0] == "crate":
        base, rest = (), segs[1:]
    elif segs[0] in ("super", "self"):
        base = here
        rest = segs
        while rest and rest[0] in ("super", "self"):
            if rest[0] == "super":
                base = base[:-1]
            rest = rest[1:]
    elif segs[0] in children:
        base, rest = here, segs
    else:
        return None
    target = base
    for seg in rest:
        if target + (seg,) in modules:
            target = target + (seg,)
        else:
            break
    return target


def check_crate(name):
    src = os.path.join(ROOT, name, "src")
    files = {}
    for dirpath, _, names in os.walk(src):
        for f in names:
            # main.rs is a crate of its own (the binary) over lib.rs.
            if f.endswith(".rs") and not (dirpath == src and f == "main.rs"):
                p = os.path.join(dirpath, f)
                files[module_of(src, p)] = p
    modules = set(files)
    problems, long_files, edges = [], [], {}
    for mod, p in sorted(files.items()):
        text = open(p, encoding="utf-8").read()
        if mod and mod[-1] == "tests":
            continue
        if not text.lstrip().startswith("//!"):
            problems.append(f"{os.path.relpath(p, ROOT)}: does not open with a //! line saying its job")
        lines = text.count("\n")
        if lines > LONG:
            long_files.append(f"{os.path.relpath(p, ROOT)}: {lines} lines")
        code = strip_tests(text)
        children = set(re.findall(r"^\s*(?:pub(?:\([^)]*\))?\s+)?mod\s+([a-z_0-9]+)\s*;", code, re.M))
        targets = set()
        for path in paths_in(code):
            t = resolve(path, mod, children, modules)
            if t is not None and t != mod:
                targets.add(t)
        edges[mod] = targets
    cycles = find_cycles(edges)
    for cycle in cycles:
        shown = ", ".join("::".join(m) or "(crate root)" for m in cycle)
        problems.append(f"{name}: modules that import each other (in a cycle): {shown}")
    # The same between top-level modules, each with everything under it:
    # a subsystem's files may lean on each other, subsystems may not.
    top = {}
    for mod, targets in edges.items():
        for t in targets:
            if mod and t and mod[0] != t[0]:
                top.setdefault(mod[:1], set()).add(t[:1])
    for cycle in find_cycles(top):
        shown = ", ".join(m[0] for m in cycle)
        problems.append(f"{name}: top-level modules that import each other (in a cycle): {shown}")
    return problems, long_files


def find_cycles(edges):
    """Strongly connected components with more than one module."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(edges.get(v, ())):
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
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def main():
    problems, long_files = [], []
    for crate in CRATES:
        if os.path.isdir(os.path.join(ROOT, crate, "src")):
            p, l = check_crate(crate)
            problems += p
            long_files += l
    for line in long_files:
        print(f"note: longer than {LONG} lines: {line}")
    for line in problems:
        print(f"error: {line}")
    if problems:
        sys.exit(1)
    print("layout: no import cycles; every file says its job")


if __name__ == "__main__":
    main()
