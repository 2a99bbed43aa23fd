from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.exporters.helpers import run_async_test
from tests.support.sink import Sink


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: Any) -> bool | None:
    return run_async_test(pyfuncitem)


@pytest.fixture
def other_sink() -> Iterator[Sink]:
    """A second peer, for tests with two upstreams."""
    with Sink() as s:
        yield s
