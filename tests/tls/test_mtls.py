"""Mutual TLS: B's receiver has client_ca_file, so A's exporter must present a client certificate."""

from __future__ import annotations

from typing import Any

import pytest

from tests.tls.certs import Certs, Pair
from tests.tls.helpers import Upstream, assert_delivered, assert_not_delivered, ca, relay, running, upstream

EXPORTERS = ["otlp", "otlphttp"]


def client_cert(pair: Pair) -> dict[str, Any]:
    return {"cert_file": str(pair.cert), "key_file": str(pair.key)}


@pytest.mark.parametrize("exporter", EXPORTERS)
def test_a_client_certificate_from_the_client_ca_is_accepted(
    certs: Certs, mtls_upstream: Upstream, exporter: str
) -> None:
    with running(a := relay(exporter, mtls_upstream, {**ca(certs), **client_cert(certs.client)})):
        assert_delivered(a, mtls_upstream, f"mtls-{exporter}")


@pytest.mark.parametrize("exporter", EXPORTERS)
@pytest.mark.parametrize("client", ["none", "rogue"])
def test_without_a_trusted_client_certificate_nothing_gets_through(
    certs: Certs, mtls_upstream: Upstream, exporter: str, client: str
) -> None:
    """No client certificate, or one from a CA that is B's ca_file but not its client_ca_file."""
    tls = ca(certs) if client == "none" else {**ca(certs), **client_cert(certs.rogue_client)}
    with running(a := relay(exporter, mtls_upstream, tls, fail_fast=True)):
        assert_not_delivered(a, mtls_upstream, exporter, f"mtls-{client}-{exporter}")


@pytest.mark.parametrize("exporter", EXPORTERS)
def test_inline_pems_work_on_both_ends(certs: Certs, exporter: str) -> None:
    """cert_pem / key_pem / ca_pem instead of files: B's server certificate and A's client certificate."""
    server = {
        "cert_pem": certs.server.cert.read_text(),
        "key_pem": certs.server.key.read_text(),
        "client_ca_file": str(certs.ca),
    }
    client = {
        "ca_pem": certs.ca.read_text(),
        "cert_pem": certs.client.cert.read_text(),
        "key_pem": certs.client.key.read_text(),
    }
    with upstream(server) as up, running(a := relay(exporter, up, client)):
        assert_delivered(a, up, f"pem-{exporter}")
