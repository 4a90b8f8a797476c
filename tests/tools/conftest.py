"""Tests that run an external checker (asl-validator on node, cfn-lint): no servers, but slow.

Everything in this folder carries the `tools` marker, so `-m 'not tools'` still leaves it out.
"""

from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.tools)
