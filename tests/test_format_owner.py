"""The run format has one owner (rundir.py): no other module spells a summary.json field or a
status, and actbench's modules import one another without cycles (every import points down)."""

from __future__ import annotations

import ast
import re

from actbench import rundir

from .conftest import REPO

PACKAGE = REPO / "actbench"
# plan.py names its own endings after the statuses (Ending.COMPLETED = Status.COMPLETED.value)
OWNER = {"rundir.py"}


def _imports(path) -> set[str]:  # type: ignore[no-untyped-def]
    """actbench modules a module imports, at the top or inside functions."""
    modules = {p.stem for p in PACKAGE.glob("*.py")}
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module == "actbench":
            out |= {a.name for a in node.names if a.name in modules}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("actbench."):
            out.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            out |= {a.name.split(".")[1] for a in node.names if a.name.startswith("actbench.")}
    return out - {path.stem}


def test_no_module_imports_one_that_imports_it_back() -> None:
    graph = {p.stem: _imports(p) for p in PACKAGE.glob("*.py")}
    for start in graph:  # depth-first from each module: never back to where it began
        seen, todo = set(), list(graph[start])
        while todo:
            mod = todo.pop()
            assert mod != start, f"{start} imports itself through {sorted(seen)}"
            if mod not in seen:
                seen.add(mod)
                todo.extend(graph.get(mod, ()))


def _string_literals(path) -> list[tuple[int, str]]:  # type: ignore[no-untyped-def]
    """String constants outside docstrings and f-string text."""
    tree = ast.parse(path.read_text())
    docs = {
        id(n.body[0].value)
        for n in ast.walk(tree)
        if isinstance(n, (ast.Module, ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef))
        and n.body
        and isinstance(n.body[0], ast.Expr)
        and isinstance(n.body[0].value, ast.Constant)
    }
    return [
        (n.lineno, n.value)
        for n in ast.walk(tree)
        if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docs
    ]


def test_only_the_format_module_spells_summary_fields_and_statuses() -> None:
    """Summary fields that are not also config keys (activation, epochs, ... name both) or
    plain words (name, seed, status, notes, error, params), and every status value."""
    from actbench import config

    config_keys = {
        k for key in config.flatten(config.Config().model_dump()) for k in key.split(".")
    }
    plain = {"name", "seed", "status", "notes", "error", "params"}
    fields = set(rundir.Summary.model_fields) - config_keys - plain
    statuses = {s.value for s in rundir.Status}
    spelled = []
    for path in sorted(PACKAGE.glob("*.py")):
        if path.name in OWNER:
            continue
        for line, text in _string_literals(path):
            if text in fields or text in statuses:
                spelled.append(f"{path.name}:{line}: {text!r}")
    assert spelled == []


def test_only_the_format_module_names_run_files() -> None:
    names = {f.name for f in rundir.FILES} | set(rundir.SWEEP_TABLES.values())
    spelled = [
        f"{path.name}:{line}: {text!r}"
        for path in sorted(PACKAGE.glob("*.py"))
        if path.name not in OWNER
        for line, text in _string_literals(path)
        if text in names or re.fullmatch(r"[a-z0-9_]+\.(csv|json|npz|pt)", text)
    ]
    assert spelled == []
