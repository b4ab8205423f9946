"""Imports only go down: no import circle anywhere in ``lima`` (module- and function-level imports alike); core
below the stages below the pipeline; inside each stage and the pipeline no module imports a layer above its own
(the layers of ``lima/<stage>/README.md``)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

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


def readme_layers(package: str) -> dict[str, tuple[str, ...]]:
    """``{layer: module names}``, bottom first, from the ``| layer | module | …`` table of
    ``lima/<package>/README.md``: a row whose first cell is empty belongs to the layer above it, and the
    second cell names the modules in backticks."""
    layers: dict[str, tuple[str, ...]] = {}
    layer, in_table = "", False
    for line in (ROOT / package / "README.md").read_text(encoding="utf-8").splitlines():
        if line.startswith("| layer |"):
            in_table = True
            continue
        if not in_table or line.startswith("|---"):
            continue
        if not line.startswith("|"):
            break
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        layer = cells[0] or layer
        layers[layer] = layers.get(layer, ()) + tuple(re.findall(r"`([a-z0-9_]+)`", cells[1]))
    return layers


def test_readme_layers_reads_the_table():
    assert readme_layers("finetune")["runners"] == ("run",)
    assert "judge" in readme_layers("eval")["runners"] and "sources" in readme_layers("curation")["adapters"]


# Each stage's layers, bottom first, as its README.md gives them: a module imports its own layer or those below.
STAGE_LAYERS = {stage: readme_layers(stage) for stage in ("eval", "curation", "finetune", "pipeline")}
STAGES = ("curation", "finetune", "eval")


def _layer(stage: str, module: str) -> int | None:
    parts = module.split(".")
    if parts[:2] != ["lima", stage] or len(parts) < 3:
        return None
    for rank, names in enumerate(STAGE_LAYERS[stage].values()):
        if parts[2] in names:
            return rank
    raise AssertionError(
        f"{module}: not in any layer of lima/{stage}/README.md; add a row for it to that table"
    )


def upward_imports(stage: str, edges: dict[str, set[str]]) -> list[str]:
    names = list(STAGE_LAYERS[stage])
    upward = []
    for module, targets in edges.items():
        own = _layer(stage, module)
        if own is None:
            continue
        for target in targets:
            rank = _layer(stage, target)
            if rank is not None and rank > own:
                upward.append(f"{module} ({names[own]}) imports {target} ({names[rank]})")
    return sorted(upward)


def test_an_upward_import_is_found():
    edges = {"lima.finetune.config": {"lima.finetune.run"}, "lima.finetune.run": {"lima.finetune.config"}}
    assert upward_imports("finetune", edges) == [
        "lima.finetune.config (records) imports lima.finetune.run (runners)"
    ]


@pytest.mark.parametrize("stage", list(STAGE_LAYERS))
def test_imports_inside_a_stage_only_go_down(stage):
    upward = upward_imports(stage, import_graph())
    assert not upward, "imports that go up: " + "; ".join(upward)


def cross_package_imports(edges: dict[str, set[str]]) -> list[str]:
    """Core imports only core; a stage imports core and itself; the pipeline anything but the CLI."""

    def package(module: str) -> str:
        parts = module.split(".")
        return parts[1] if len(parts) > 1 and parts[1] in (*STAGES, "core", "pipeline") else "top"

    allowed = {"core": {"core"}, "pipeline": {"core", "pipeline", *STAGES}}
    wrong = []
    for module, targets in edges.items():
        own = package(module)
        if own == "top":  # lima.cli and lima.__main__ gather every command
            continue
        for target in targets:
            if package(target) not in allowed.get(own, {"core", own}):
                wrong.append(f"{module} imports {target}")
    return sorted(wrong)


def test_a_cross_package_import_is_found():
    edges = {
        "lima.core.io": {"lima.eval.metrics"},
        "lima.eval.judge": {"lima.finetune.run", "lima.core.io"},
        "lima.pipeline.run": {"lima.eval.judge"},
        "lima.cli": {"lima.pipeline.commands"},
    }
    assert cross_package_imports(edges) == [
        "lima.core.io imports lima.eval.metrics",
        "lima.eval.judge imports lima.finetune.run",
    ]


def test_core_below_the_stages_below_the_pipeline():
    wrong = cross_package_imports(import_graph())
    assert not wrong, "imports across packages that go up or sideways: " + "; ".join(wrong)


@pytest.mark.parametrize("package", ["core", *STAGE_LAYERS])
def test_every_module_is_written_down(package):
    """Each package's README.md names every module (and, for a stage, every module is in a layer)."""
    readme = (ROOT / package / "README.md").read_text(encoding="utf-8")
    for path in sorted((ROOT / package).iterdir()):
        name = path.stem if path.suffix == ".py" else path.name
        if name.startswith("_") or not (path.suffix == ".py" or (path / "__init__.py").exists()):
            continue
        assert f"`{name}`" in readme, f"lima/{package}/README.md does not mention {name}"
        if package in STAGE_LAYERS:
            assert _layer(package, f"lima.{package}.{name}") is not None
