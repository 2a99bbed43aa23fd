from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.receivers.otlp.helpers import gateway_config
from tests.support.process import Otlpd
from tests.support.sink import Sink


@pytest.fixture(scope="package")
def otlpd(package_sink: Sink) -> Iterator[Otlpd]:
    """One ``otlpd serve`` for the receiver tests of this package, exporting to ``package_sink``."""
    with Otlpd(gateway_config(package_sink)) as process:
        yield process
