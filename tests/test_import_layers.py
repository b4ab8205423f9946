"""Imports only go down: no import circle anywhere in ``lima`` (module- and function-level imports alike), and
inside ``lima/eval`` no module imports a layer above its own (the layers of ``lima/eval/README.md``)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "lima"


def _modules() -> dict[str, Path]:
    mods = {}
    for path in ROOT.rglob("*.py"):
        parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        mods[".".join(parts)] = path
    return mods


def import_graph() -> dict[str, set[str]]:
    """``{module: modules it imports}`` over every ``import`` statement, wherever it stands in the file."""
    mods = _modules()

    def resolve(name: str) -> str | None:
        while name and name not in mods:
            name = name.rpartition(".")[0]
        return name or None

    edges: dict[str, set[str]] = {m: set() for m in mods}
    for module, path in mods.items():
        package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package[: len(package) - (node.level - 1)]
                    base = ".".join(up + ([base] if base else []))
                targets = [base] + [f"{base}.{alias.name}" for alias in node.names]
            else:
                continue
            for target in targets:
                if target.split(".")[0] != "lima":
                    continue
                found = resolve(target)
                # a module importing its own package's face (lima.eval from lima.eval.judging) is no edge
                if found and found != module and not module.startswith(found + "."):
                    edges[module].add(found)
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for start in sorted(edges):
        if start in index:
            continue
        work = [(start, iter(sorted(edges[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_circle_in_lima():
    found = cycles(import_graph())
    assert not found, "import circles: " + "; ".join(" <-> ".join(c) for c in found)


# lima/eval's layers (lima/eval/README.md), bottom first: a module imports its own layer or those below.
EVAL_LAYERS = {
    "bottom": ("config", "decoding", "parsers", "records", "templates"),
    "metrics": ("metrics", "alpaca_eval_lc", "arena_hard_stats", "summary"),
    "engines": ("reask", "judging", "calibration", "backends", "generation", "grading"),
    "adapters": ("formats", "inputs", "agreement"),
    "protocols": ("protocols",),
    "runners": ("judge", "grade", "calibrate", "generate", "report", "resume_guard"),
    "commands": ("commands",),
}


def _eval_layer(module: str) -> int | None:
    parts = module.split(".")
    if parts[:2] != ["lima", "eval"] or len(parts) < 3:
        return None
    for rank, names in enumerate(EVAL_LAYERS.values()):
        if parts[2] in names:
            return rank
    raise AssertionError(
        f"{module}: not in any layer of lima/eval/README.md; add it there and to EVAL_LAYERS"
    )


def test_lima_eval_imports_only_go_down():
    names = list(EVAL_LAYERS)
    upward = []
    for module, targets in import_graph().items():
        own = _eval_layer(module)
        if own is None:
            continue
        for target in targets:
            rank = _eval_layer(target)
            if rank is not None and rank > own:
                upward.append(f"{module} ({names[own]}) imports {target} ({names[rank]})")
    assert not upward, "imports that go up: " + "; ".join(sorted(upward))


def test_the_layers_are_written_down():
    readme = (ROOT / "eval" / "README.md").read_text(encoding="utf-8")
    for names in EVAL_LAYERS.values():
        for name in names:
            assert f"`{name}" in readme, f"lima/eval/README.md does not mention {name}"
