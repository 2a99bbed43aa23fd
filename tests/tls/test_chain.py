"""otlpd → otlpd over TLS: A's otlp / otlphttp exporter to B's OTLP receiver with a certificate.

SDK → A (plain OTLP/gRPC in) → exporter with ``tls`` → B (OTLP over TLS) → Sink.
"""

from __future__ import annotations

from typing import Any

import pytest

from otlpd.pdata import Signal
from tests.support.process import Otlpd
from tests.support.sink import Sink
from tests.tls.conftest import Certs
from tests.tls.helpers import (
    a_config,
    assert_delivered,
    assert_not_delivered,
    b_config,
    ca,
    failed_sends,
    received,
    send,
    server_tls,
)

# B's receiver transport that each of A's exporters talks to
TRANSPORT = {"otlp": "grpc", "otlphttp": "http"}


@pytest.mark.parametrize("exporter", ["otlp", "otlphttp"])
def test_every_signal_arrives_intact_through_a_tls_hop(certs: Certs, sink: Sink, exporter: str) -> None:
    with (
        Otlpd(b_config(sink, server_tls(certs.server))) as b,
        Otlpd(a_config(exporter, b, ca(certs))) as a,
    ):
        sent = {signal: send(signal, a.grpc_endpoint, f"{exporter}-{signal.value}") for signal in Signal}
        for signal in Signal:
            n = len(sent[signal])
            assert sink.wait_for_items(signal, n) == n, f"{signal}:\n{a.logs()}\n{b.logs()}"
            assert received(sink, signal) == sent[signal], signal
            # it went over the transport this exporter speaks, into B's TLS listener
            accepted = b.metric(
                "otlpd_receiver_accepted_items_total", signal=signal.value, transport=TRANSPORT[exporter]
            )
            assert accepted == n, signal
        assert failed_sends(a, exporter) == 0
        assert a.terminate() == 0
        assert b.terminate() == 0


@pytest.mark.parametrize("exporter", ["otlp", "otlphttp"])
def test_without_ca_file_a_private_ca_is_not_trusted(certs: Certs, sink: Sink, exporter: str) -> None:
    """No ca_file: the system roots are used, which do not include the test CA."""
    with (
        Otlpd(b_config(sink, server_tls(certs.server))) as b,
        Otlpd(a_config(exporter, b, {}, fail_fast=True)) as a,
    ):
        assert_not_delivered(a, b, sink, exporter, "untrusted")
        assert a.terminate() == 0, a.logs()


# The environment variable each client stack reads its system roots from.
ROOTS_ENV = {"otlp": "GRPC_DEFAULT_SSL_ROOTS_FILE_PATH", "otlphttp": "SSL_CERT_FILE"}


@pytest.mark.parametrize("exporter", ["otlp", "otlphttp"])
def test_without_ca_file_the_system_roots_are_used(certs: Certs, sink: Sink, exporter: str) -> None:
    """The control for the test above: make the test CA a system root and it is trusted."""
    with (
        Otlpd(b_config(sink, server_tls(certs.server))) as b,
        Otlpd(a_config(exporter, b, {}), env={ROOTS_ENV[exporter]: str(certs.ca)}) as a,
    ):
        assert_delivered(a, sink, "system-roots")


def test_otlphttp_insecure_skip_verify_accepts_an_unverifiable_certificate(certs: Certs, sink: Sink) -> None:
    with (
        Otlpd(b_config(sink, server_tls(certs.server))) as b,
        Otlpd(a_config("otlphttp", b, {"insecure_skip_verify": True})) as a,
    ):
        assert_delivered(a, sink, "skip-verify")


def test_otlphttp_insecure_does_not_turn_off_verification_of_https(certs: Certs, sink: Sink) -> None:
    """``insecure`` means plaintext for gRPC; an https:// URL is still verified (as in the Collector)."""
    with (
        Otlpd(b_config(sink, server_tls(certs.server))) as b,
        Otlpd(a_config("otlphttp", b, {"insecure": True}, fail_fast=True)) as a,
    ):
        assert_not_delivered(a, b, sink, "otlphttp", "insecure-https")


@pytest.mark.parametrize("exporter", ["otlp", "otlphttp"])
@pytest.mark.parametrize("override", ["otlpd.test", ""])
def test_server_name_override_checks_the_certificate_against_another_name(
    certs: Certs, sink: Sink, exporter: str, override: str
) -> None:
    """B's certificate names only otlpd.test; A dials 127.0.0.1."""
    tls: dict[str, Any] = {**ca(certs), "server_name_override": override}
    with (
        Otlpd(b_config(sink, server_tls(certs.other_name))) as b,
        Otlpd(a_config(exporter, b, tls, fail_fast=True)) as a,
    ):
        if override:
            assert_delivered(a, sink, "override")
        else:
            assert_not_delivered(a, b, sink, exporter, "name-mismatch")


def test_otlphttp_ca_file_is_the_only_trusted_ca(certs: Certs, sink: Sink) -> None:
    """With ca_file set, a certificate from another CA is refused even if that CA is a system root."""
    with (
        Otlpd(b_config(sink, server_tls(certs.rogue_server))) as b,
        Otlpd(a_config("otlphttp", b, ca(certs), fail_fast=True), env={"SSL_CERT_FILE": str(certs.rogue_ca)}) as a,
    ):
        assert_not_delivered(a, b, sink, "otlphttp", "other-ca")
