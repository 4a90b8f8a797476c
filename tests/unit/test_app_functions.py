"""Every action family has its step Lambda, deployed under the handler Chalice gives it."""

from __future__ import annotations

import app as app_module
from chalicelib.steps.actions import FAMILIES
from chalicelib.steps.registry import PARTICIPANT_FAMILIES, function_name


def test_each_family_has_a_step_lambda_whose_handler_exists() -> None:
    functions = {fn.name: fn.handler_string for fn in app_module.app.pure_lambda_functions}
    for family in [*FAMILIES, *PARTICIPANT_FAMILIES]:
        name = function_name(family)
        assert functions[name] == f"app.{name}"
        assert callable(getattr(app_module, name))
    assert functions["saga_recorder"] == "app.saga_recorder"
