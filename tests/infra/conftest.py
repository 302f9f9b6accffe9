"""Fixtures for the infrastructure checks (helpers live in infra_templates.py)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.infra.infra_templates import all_templates, load_asl


@pytest.fixture(scope="session")
def templates() -> dict[str, dict[str, Any]]:
    return all_templates()


@pytest.fixture(scope="session")
def persist_asl() -> dict[str, Any]:
    return load_asl("persist.asl.json")
