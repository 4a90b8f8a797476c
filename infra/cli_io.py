"""What a `saga` command reads and prints: JSON or YAML files given to it (a misuse error,
exit 2, naming the file and its problem) and its answer, for people or (--json) scripts."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import yaml

from infra.api_client import ApiError


def emit(args: argparse.Namespace, body: Any, human: str) -> None:
    print(json.dumps(body, indent=2) if args.json else human)


def load(path: str) -> Any:
    """A JSON or YAML file (by its suffix; - for stdin) as JSON data; a misuse error (exit 2)
    naming the file and what is wrong with it."""
    name = "stdin" if path == "-" else path
    as_yaml = path.endswith((".yaml", ".yml"))
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise ApiError(-2, f"cannot read {name}: {error.strerror or error}") from None
    except UnicodeDecodeError:
        raise ApiError(-2, f"{name} is not UTF-8 text") from None
    try:
        data = yaml.safe_load(text) if as_yaml else json.loads(text)
    except yaml.YAMLError as error:
        raise ApiError(-2, f"{name} is not valid YAML: {_yaml_problem(error)}") from None
    except json.JSONDecodeError as error:
        raise ApiError(-2, f"{name} is not valid JSON: {error.msg} (line {error.lineno}, "
                           f"column {error.colno})") from None
    try:  # YAML has more types than JSON (dates, sets) and may hold .nan
        json.dumps(data, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise ApiError(-2, f"{name} holds a value JSON cannot carry ({error}); quote dates "
                           "and times") from None
    return data


def _yaml_problem(error: yaml.YAMLError) -> str:
    """What PyYAML found, and where (1-based), on one line."""
    if isinstance(error, yaml.MarkedYAMLError):
        mark = error.problem_mark or error.context_mark
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        return f"{error.problem or error.context or 'malformed'}{where}"
    return str(error).splitlines()[0] if str(error) else type(error).__name__
