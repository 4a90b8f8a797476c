"""No status, phase or machine error name is spelled outside the lifecycle module.

A name written twice drifts (the compiler once retried an error the runtime meant as final), so
every string constant of the service's source is checked: one equal to a name, or an SQL
literal ('RUNNING') inside a query, is a copy of what chalicelib/domain/lifecycle.py says.
Dict keys and subscripts are field names ("action" is also a step's field), not copies.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from chalicelib.domain import lifecycle

ROOT = Path(__file__).parents[2]
SOURCES = sorted([ROOT / "app.py", *(ROOT / "chalicelib").rglob("*.py"),
                  *(ROOT / "infra" / "verify").rglob("*.py")])
LIFECYCLE = ROOT / "chalicelib" / "domain" / "lifecycle.py"

NAMES = frozenset(
    {*lifecycle.ExecutionStatus, *lifecycle.StepStatus, *lifecycle.Phase, *lifecycle.RunStatus,
     *lifecycle.NEVER_RETRIED, lifecycle.TASK_TIMEOUT, lifecycle.ANY_ERROR,
     *lifecycle.LAMBDA_SERVICE_ERRORS, *(end.error for end in lifecycle.ENDS)})
# A line that spells one as something else (a field called "action") says so.
PRAGMA = "# a field name, not a phase"
SQL_LITERAL = re.compile(r"'([A-Za-z_.]+)'")


def _skipped(tree: ast.AST) -> set[int]:
    """ids of the constants that are names of fields, not values: dict keys, subscripts,
    docstrings."""
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Dict):
            skipped.update(id(key) for key in node.keys if key is not None)
        elif isinstance(node, ast.Subscript):
            skipped.add(id(node.slice))
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", None) in (
                "get", "pop", "setdefault") and node.args:
            skipped.add(id(node.args[0]))
        elif isinstance(node, ast.JoinedStr):  # f-strings: messages and field paths
            skipped.update(id(value) for value in node.values)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                skipped.add(id(first.value))
    return skipped


def spelled_names(path: Path, root: Path = ROOT) -> list[str]:
    source = path.read_text()
    tree = ast.parse(source)
    skipped = _skipped(tree)
    lines = source.splitlines()
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Constant) or not isinstance(node.value, str):
            continue
        if id(node) in skipped or PRAGMA in lines[node.lineno - 1]:
            continue
        text = node.value
        if text in NAMES:
            found.append(f"{path.relative_to(root)}:{node.lineno}: {text!r}")
        for literal in SQL_LITERAL.findall(text):
            if literal in NAMES:
                found.append(f"{path.relative_to(root)}:{node.lineno}: SQL '{literal}'")
    return found


def test_the_check_finds_a_spelled_name(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text('"""Doc RUNNING."""\nx = {"action": 1}\nif s == "COMPENSATED": pass\n'
                      'q = "SELECT 1 WHERE status IN (\'RUNNING\')"\ne = "StepAborted"\n'
                      f'y = "action"  {PRAGMA}\n')
    found = sorted(spelled_names(sample, tmp_path), key=lambda line: int(line.split(":")[1]))
    assert [line.split(": ", 1)[1] for line in found] == [
        "'COMPENSATED'", "SQL 'RUNNING'", "'StepAborted'"]


@pytest.mark.parametrize("path", [p for p in SOURCES if p != LIFECYCLE],
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_no_lifecycle_name_is_spelled_outside_the_lifecycle_module(path: Path) -> None:
    assert spelled_names(path) == []
