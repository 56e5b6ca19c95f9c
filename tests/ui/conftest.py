"""The ``lab`` fixture: the dashboard in-process with three users (tests/ui/lab.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.ui.lab import Lab, make_lab


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    yield from make_lab(tmp_path_factory.mktemp("ui-lab"))
