"""otlpd → otlpd over TLS: A's otlp / otlphttp exporter to B's OTLP receiver with a certificate.

SDK → A (plain OTLP/gRPC in) → exporter with ``tls`` → B (OTLP over TLS) → Sink.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from otlpd.pdata import Signal
from tests.support.process import Otlpd
from tests.support.sink import Sink
from tests.tls.certs import Certs
from tests.tls.helpers import (
    Upstream,
    a_config,
    assert_arrives,
    assert_delivered,
    assert_not_delivered,
    b_config,
    ca,
    failed_sends,
    relay,
    running,
    send,
    server_tls,
    upstream,
)

EXPORTERS = ["otlp", "otlphttp"]
# B's receiver transport that each of A's exporters talks to
TRANSPORT = {"otlp": "grpc", "otlphttp": "http"}
# The environment variable each client stack reads its system roots from.
ROOTS_ENV = {"otlp": "GRPC_DEFAULT_SSL_ROOTS_FILE_PATH", "otlphttp": "SSL_CERT_FILE"}


@pytest.mark.parametrize("exporter", EXPORTERS)
def test_every_signal_arrives_intact_through_a_tls_hop(certs: Certs, sink: Sink, exporter: str) -> None:
    b = Otlpd(b_config(sink, server_tls(certs.server)))
    a = Otlpd(a_config(exporter, b, ca(certs)))
    with running(b, a):
        for signal in Signal:
            run = f"{exporter}-{signal.value}"
            assert_arrives(sink, signal, run, send(signal, a.grpc_endpoint, run), lambda: a.logs() + b.logs())
            # it went over the transport this exporter speaks, into B's TLS listener
            accepted = b.metric(
                "otlpd_receiver_accepted_items_total", signal=signal.value, transport=TRANSPORT[exporter]
            )
            assert accepted == sink.state.items(signal), signal
        assert failed_sends(a, exporter) == 0
        assert a.terminate() == 0
        assert b.terminate() == 0


@pytest.mark.parametrize("exporter", EXPORTERS)
def test_without_ca_file_a_private_ca_is_not_trusted(tls_upstream: Upstream, exporter: str) -> None:
    """No ca_file: the system roots are used, and they do not include the test CA."""
    with running(a := relay(exporter, tls_upstream, {}, fail_fast=True)):
        assert_not_delivered(a, tls_upstream, exporter, f"untrusted-{exporter}")


@pytest.mark.parametrize("exporter", EXPORTERS)
def test_without_ca_file_the_system_roots_are_used(
    certs: Certs, tls_upstream: Upstream, exporter: str
) -> None:
    """The control for the test above: make the test CA the system roots and it is trusted."""
    with running(a := relay(exporter, tls_upstream, {}, env={ROOTS_ENV[exporter]: str(certs.ca)})):
        assert_delivered(a, tls_upstream, f"system-roots-{exporter}")


def test_otlphttp_insecure_skip_verify_accepts_an_unverifiable_certificate(tls_upstream: Upstream) -> None:
    with running(a := relay("otlphttp", tls_upstream, {"insecure_skip_verify": True})):
        assert_delivered(a, tls_upstream, "skip-verify")


def test_otlphttp_insecure_does_not_turn_off_verification_of_https(tls_upstream: Upstream) -> None:
    """``insecure`` means plaintext for gRPC; an https:// URL is still verified (as in the Collector)."""
    with running(a := relay("otlphttp", tls_upstream, {"insecure": True}, fail_fast=True)):
        assert_not_delivered(a, tls_upstream, "otlphttp", "insecure-https")


@pytest.fixture(scope="module")
def other_name_upstream(certs: Certs) -> Iterator[Upstream]:
    """B whose certificate names only DNS:otlpd.test, while A dials 127.0.0.1."""
    with upstream(server_tls(certs.other_name)) as up:
        yield up


@pytest.mark.parametrize("exporter", EXPORTERS)
@pytest.mark.parametrize("override", ["otlpd.test", ""])
def test_server_name_override_checks_the_certificate_against_another_name(
    certs: Certs, other_name_upstream: Upstream, exporter: str, override: str
) -> None:
    tls: dict[str, Any] = {**ca(certs), "server_name_override": override}
    run = f"override-{exporter}-{override or 'none'}"
    with running(a := relay(exporter, other_name_upstream, tls, fail_fast=True)):
        if override:
            assert_delivered(a, other_name_upstream, run)
        else:
            assert_not_delivered(a, other_name_upstream, exporter, run)


@pytest.mark.parametrize("exporter", EXPORTERS)
def test_ca_file_is_the_only_trusted_ca(certs: Certs, exporter: str) -> None:
    """With ca_file set, a certificate from another CA is refused even if that CA is a system root."""
    with upstream(server_tls(certs.rogue_server)) as up:
        a = relay(exporter, up, ca(certs), fail_fast=True, env={ROOTS_ENV[exporter]: str(certs.rogue_ca)})
        with running(a):
            assert_not_delivered(a, up, exporter, f"other-ca-{exporter}")


def test_otlphttp_tls_versions_must_overlap(certs: Certs) -> None:
    """B's HTTP receiver with min_version 1.3 refuses A's otlphttp exporter capped at max_version 1.2."""
    tls = {**ca(certs), "max_version": "1.2"}
    with (
        # TLS versions are an HTTP-side setting: Python's gRPC cannot pin them (a config error there)
        upstream(server_tls(certs.server), server_tls(certs.server, min_version="1.3")) as up,
        running(a := relay("otlphttp", up, tls, fail_fast=True)),
    ):
        assert_not_delivered(a, up, "otlphttp", "tls-1.2")
