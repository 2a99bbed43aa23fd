from __future__ import annotations

from typing import Any

import pytest

from tests.exporters.helpers import run_async_test


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: Any) -> bool | None:
    return run_async_test(pyfuncitem)
