"""Fixtures of the upload tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from uploadkit import BILLION_LAUGHS


@pytest.fixture
def billion_laughs_xml(tmp_path: Path) -> Path:
    path = tmp_path / "export.xml"
    path.write_text(BILLION_LAUGHS)
    return path
