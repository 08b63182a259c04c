"""Shared fixtures. Tests run against the local PostgreSQL (see pyproject's [tool.pytest_env])."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def workflows_dir() -> Path:
    return REPO / "workflows"
