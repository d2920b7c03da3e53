"""The package's import structure: one-way layers, no cycles, no private names across modules.

Every ``import`` inside ``gaitedge/`` counts, also those inside functions: a lazy
import of a higher layer is still a dependency on it.  The layers, lowest first
(docs/architecture.md):

    core -> data -> models -> training -> quant -> export -> runtime/protocol
         -> device/firmware/stream -> cli
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import gaitedge

PKG = Path(gaitedge.__file__).resolve().parent

#: module (or package) -> layer; the longest matching prefix decides
LAYERS: dict[str, int] = {
    "gaitedge": 0, "gaitedge.errors": 0, "gaitedge.config": 0, "gaitedge.rundir": 0, "gaitedge.resources": 0,
    "gaitedge.c_literals": 0,
    "gaitedge.data": 1, "gaitedge.events": 1, "gaitedge.metrics": 1,
    "gaitedge.models": 2, "gaitedge.checkpoint": 2, "gaitedge.bptt": 2,
    "gaitedge.training": 3,
    "gaitedge.quant": 4, "gaitedge.memory": 4,
    "gaitedge.export": 5,
    "gaitedge.runtime": 6, "gaitedge.protocol": 6,
    "gaitedge.device": 7, "gaitedge.firmware": 7, "gaitedge.stream": 7,
    "gaitedge.cli": 8, "gaitedge.__main__": 8,
}
LAYER_NAMES = ["core", "data", "models", "training", "quant", "export", "runtime/protocol",
               "device/firmware/stream", "cli"]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PKG.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in PKG.rglob("*.py") if "csrc" not in p.relative_to(PKG).parts}


def imports(mods: dict[str, Path]) -> dict[str, set[tuple[str, str]]]:
    """module -> {(imported module, imported name or "")} for imports of gaitedge modules."""
    out: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for name, path in mods.items():
        pkg = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                for a in node.names:
                    if a.name.split(".")[0] == "gaitedge":
                        out[name].add((a.name, ""))
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = pkg.split(".")[: len(pkg.split(".")) - (node.level - 1)]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                if target.split(".")[0] != "gaitedge":
                    continue
                for a in node.names:
                    sub = f"{target}.{a.name}"
                    out[name].add((sub, "") if sub in mods else (target, a.name))
    return out


def layer_of(module: str) -> int:
    best = max((p for p in LAYERS if module == p or module.startswith(p + ".")), key=len)
    return LAYERS[best]


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one member (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in list(edges):
        if root in index:
            continue
        work = [(root, iter(sorted(edges.get(root, ()))))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on.add(root)
        while work:
            v, it = work[-1]
            for w in it:
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(edges.get(w, ())))))
                    break
                if w in on:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    comp = []
                    while True:
                        w = stack.pop()
                        on.discard(w)
                        comp.append(w)
                        if w == v:
                            break
                    if len(comp) > 1:
                        found.append(sorted(comp))
    return found


MODS = modules()
IMPORTS = imports(MODS)


def test_every_module_has_a_layer():
    # each top-level module or package of gaitedge is placed explicitly (none falls to core by default)
    tops = {".".join(m.split(".")[:2]) for m in MODS if m != "gaitedge"}
    assert sorted(t for t in tops if t not in LAYERS) == []


def test_no_lower_layer_imports_a_higher_one():
    bad = []
    for src, targets in IMPORTS.items():
        for dst, _ in targets:
            if layer_of(dst) > layer_of(src):
                bad.append(f"{src} ({LAYER_NAMES[layer_of(src)]}) imports {dst} ({LAYER_NAMES[layer_of(dst)]})")
    assert not bad, "\n".join(sorted(bad))


def test_no_import_cycles_between_modules():
    edges = {src: {dst for dst, _ in t if dst in MODS and dst != src} for src, t in IMPORTS.items()}
    # a package's __init__ importing its own submodules is its table of contents, not a cycle
    edges = {s: {d for d in ds if not d.startswith(s + ".")} for s, ds in edges.items()}
    assert cycles(edges) == []


def test_no_import_cycles_between_packages():
    def top(m: str) -> str:
        return ".".join(m.split(".")[:2])

    edges: dict[str, set[str]] = defaultdict(set)
    for src, targets in IMPORTS.items():
        for dst, _ in targets:
            if top(src) != top(dst) and top(dst) != "gaitedge":
                edges[top(src)].add(top(dst))
    assert cycles(edges) == []


def test_no_private_names_across_modules():
    bad = sorted(f"{src} imports {name} from {dst}" for src, t in IMPORTS.items() for dst, name in t
                 if name.startswith("_") and not name.startswith("__") and dst != src)
    assert not bad, "\n".join(bad)


def test_only_the_cli_parses_arguments():
    users = sorted(m for m, p in MODS.items() if "argparse" in {
        a.name for n in ast.walk(ast.parse(p.read_text(encoding="utf-8"))) if isinstance(n, ast.Import) for a in n.names})
    assert all(m.startswith("gaitedge.cli") for m in users), users


def test_the_checker_sees_a_violation():
    # the rules above would catch a data module that imports training, and a two-module cycle
    assert layer_of("gaitedge.training.train") > layer_of("gaitedge.data.spec")
    assert cycles({"a": {"b"}, "b": {"a"}, "c": set()}) == [["a", "b"]]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": set()}) == []
