"""Deployment inputs and template edits that need no packaging: function names, references,
the stack's parameters, the packaged requirements (the packaged templates: tests/tools)."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest

import app as app_module
from infra.deploy.aws import read_parameters, runtime_requirements, vendor_sdk
from infra.deploy.template import chalice_function_name, references
from infra.stack.paths import PROJECT_ROOT


def test_logical_ids_map_back_to_chalice_function_names() -> None:
    for fn in app_module.app.pure_lambda_functions:
        logical = "".join(part.capitalize() for part in fn.name.split("_"))
        assert chalice_function_name(logical) == fn.name


def test_references_finds_ref_getatt_and_sub() -> None:
    fragment = {"a": {"Ref": "One"}, "b": [{"Fn::GetAtt": ["Two", "Arn"]}],
                "c": {"Fn::Sub": "x-${Three}-${AWS::Region}-${Four.Arn}"}, "d": "Five",
                "e": {"Fn::Sub": ["${Local}-${Six}", {"Local": {"Ref": "Seven"}}]}}
    assert references(fragment) == {"One", "Two", "Three", "Four", "Six", "Seven"}


def test_stack_parameters_are_checked_before_anything_is_deployed(tmp_path: Path) -> None:
    good = tmp_path / "good.json"
    good.write_text(json.dumps({"MySQLSecret": "s1", "MongoSecret": "s2", "AuthSecret": "s3",
                                "KafkaBrokers": "b:9092", "MskClusterArn": "arn:msk"}))
    assert read_parameters(good)["KafkaBrokers"] == "b:9092"
    partial = tmp_path / "partial.json"
    partial.write_text(json.dumps({"MySQLSecret": "s1"}))
    with pytest.raises(ValueError, match=r"missing parameter.*MongoSecret"):
        read_parameters(partial)
    typed = tmp_path / "typed.json"
    typed.write_text(json.dumps({"MySQLSecret": 1}))
    with pytest.raises(ValueError, match="JSON object of string values"):
        read_parameters(typed)
    with pytest.raises(ValueError, match="cannot read"):
        read_parameters(tmp_path / "absent.json")


def test_the_packaged_requirements_are_the_runtime_ones() -> None:
    names = {r.split(">")[0].split("<")[0].split("=")[0] for r in runtime_requirements()}
    assert {"chalice", "boto3", "pymysql", "pymongo", "kafka-python"} <= names
    assert not names & {"pytest", "moto", "ruff", "cfn-lint"}
    # The participant SDK is a dependency, but not on PyPI: it is vendored instead.
    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]
    assert any(r.startswith("saga-participant") for r in project["dependencies"])
    assert "saga-participant" not in names


def test_the_participant_sdk_is_vendored_into_the_package(tmp_path: Path) -> None:
    copied = vendor_sdk(tmp_path)
    assert copied == tmp_path / "vendor" / "saga_participant"
    assert {"__init__.py", "contract.py", "errors.py", "participant.py", "py.typed"} <= {
        path.name for path in copied.iterdir()}
    assert not list(copied.rglob("__pycache__"))
