from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.sink import Sink


@pytest.fixture
def sink() -> Iterator[Sink]:
    with Sink() as s:
        yield s
