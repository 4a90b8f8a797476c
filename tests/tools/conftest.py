"""Tests that run an external tool (`chalice package`, asl-validator on node, cfn-lint): no
servers, but slow.

Everything in this folder carries the `tools` marker, so `-m 'not tools'` still leaves it out.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from infra.deploy.aws import package

HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.tools)


@pytest.fixture(scope="session")
def packaged_stage(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """The SAM template of a stage as `chalice package` writes it (deployment.zip beside it),
    packaged once per session: each run takes seconds, and the tests only read what it wrote."""
    templates: dict[str, Path] = {}

    def template(stage: str) -> Path:
        if stage not in templates:
            templates[stage] = package(stage, tmp_path_factory.mktemp(stage),
                                       with_dependencies=False)
        return templates[stage]

    return template
