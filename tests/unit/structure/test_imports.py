"""The package's import graph (read with ``ast``, not by importing): no private name crosses a module boundary, and
no two modules depend on each other around a circle, counting the imports inside functions too."""
import ast
from pathlib import Path

import edgeopt

ROOT = Path(edgeopt.__file__).parent


def _graph():
    mods = {}
    for f in sorted(ROOT.rglob("*.py")):
        rel = f.relative_to(ROOT.parent).with_suffix("")
        name = ".".join(rel.parts)
        mods[name[:-9] if name.endswith(".__init__") else name] = f
    edges, private = {m: set() for m in mods}, []
    for m, f in mods.items():
        pkg_parts = m.split(".") if f.name == "__init__.py" else m.split(".")[:-1]
        for n in ast.walk(ast.parse(f.read_text())):
            if isinstance(n, ast.ImportFrom):
                if n.level:
                    base = pkg_parts[:len(pkg_parts) - (n.level - 1)]
                    tgt = ".".join(base + ([n.module] if n.module else []))
                else:
                    tgt = n.module or ""
                if not tgt.startswith("edgeopt"):
                    continue
                for a in n.names:
                    full = f"{tgt}.{a.name}"
                    if full in mods:
                        edges[m].add(full)
                    elif tgt in mods:
                        edges[m].add(tgt)
                        if a.name.startswith("_") and not a.name.startswith("__") and tgt != m:
                            private.append(f"{m} imports {tgt}.{a.name}")
            elif isinstance(n, ast.Import):
                edges[m].update(a.name for a in n.names if a.name in mods)
    return {m: es - {m} for m, es in edges.items()}, private


def _circles(edges):
    """Strongly connected groups of more than one module (Tarjan); a package's ``__init__`` importing its own
    submodules is a dependency like any other."""
    def deps(v):
        return edges[v]

    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in deps(v):
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

    for v in edges:
        if v not in index:
            visit(v)
    return out


def test_no_private_name_crosses_a_module_boundary():
    assert _graph()[1] == []


def test_no_import_circle_between_modules():
    edges, _ = _graph()
    assert len(edges) > 90  # the whole package was read
    assert _circles(edges) == []
