"""Fixtures shared by the receiver tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.sink import Sink


@pytest.fixture(scope="package")
def package_sink() -> Iterator[Sink]:
    with Sink() as s:
        yield s
