"""Fixtures: throwaway certificates (once per session) and the TLS upstreams the tests share."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

from tests.tls.certs import Certs, make_certs
from tests.tls.helpers import Upstream, server_tls, upstream


@pytest.fixture(scope="session")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    if shutil.which("openssl") is None:
        pytest.skip("the openssl CLI is not installed; it is needed to make throwaway test certificates")
    return make_certs(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="package")
def tls_upstream(certs: Certs) -> Iterator[Upstream]:
    """B with the server certificate (IP:127.0.0.1, DNS:localhost) from the test CA; no client auth."""
    with upstream(server_tls(certs.server)) as up:
        yield up


@pytest.fixture(scope="package")
def mtls_upstream(certs: Certs) -> Iterator[Upstream]:
    """B that also requires a client certificate from the test CA (client_ca_file).

    Its ca_file names the rogue CA: on a server ca_file is not a client CA (as in the Collector),
    only client_ca_file is, so a client certificate from the rogue CA must be refused.
    """
    with upstream(server_tls(certs.server, client_ca_file=str(certs.ca), ca_file=str(certs.rogue_ca))) as up:
        yield up
