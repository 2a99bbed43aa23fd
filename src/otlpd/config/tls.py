"""TLS settings, with the Collector's ``configtls`` keys."""

from __future__ import annotations

import ssl
import tempfile
from pathlib import Path

from pydantic import model_validator

from otlpd.config.base import Strict
from otlpd.config.units import Duration, Secret

_VERSIONS = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}


class _Common(Strict):
    ca_file: str = ""
    ca_pem: Secret = ""
    cert_file: str = ""
    cert_pem: Secret = ""
    key_file: str = ""
    key_pem: Secret = ""
    min_version: str = "1.2"
    max_version: str = ""
    reload_interval: Duration = 0.0

    @model_validator(mode="after")
    def _check(self) -> _Common:
        for name in ("min_version", "max_version"):
            value = getattr(self, name)
            if value and value not in _VERSIONS:
                raise ValueError(f"{name} must be one of {sorted(_VERSIONS)}, not {value!r}")
        if bool(self.cert_file or self.cert_pem) != bool(self.key_file or self.key_pem):
            raise ValueError("cert_file and key_file must be given together")
        if self.reload_interval:
            raise ValueError("reload_interval is not supported by otlpd; restart to load new certificates")
        return self

    def grpc_problem(self) -> str | None:
        """Settings Python's gRPC cannot honour; refused rather than silently ignored."""
        if getattr(self, "insecure_skip_verify", False):
            return "insecure_skip_verify is not available for gRPC in otlpd; set ca_file to the server's CA"
        if self.min_version != "1.2" or self.max_version:
            return "min_version / max_version are not available for gRPC in otlpd (gRPC uses TLS 1.2 and 1.3)"
        return None

    def read(self, file: str, pem: str) -> bytes | None:
        if pem:
            return pem.encode()
        if file:
            return Path(file).read_bytes()
        return None

    def ssl_context(self, purpose: ssl.Purpose) -> ssl.SSLContext:
        if purpose is ssl.Purpose.SERVER_AUTH:
            # ca_file / ca_pem replace the system roots (as in the Collector and gRPC), not add to them
            ca = self.read(self.ca_file, self.ca_pem)
            ctx = ssl.create_default_context(purpose, cadata=ca.decode() if ca else None)
        else:
            ctx = ssl.create_default_context(purpose)  # a server trusts only client_ca_file
        ctx.minimum_version = _VERSIONS[self.min_version]
        if self.max_version:
            ctx.maximum_version = _VERSIONS[self.max_version]
        self._load_cert_chain(ctx)
        return ctx

    def _load_cert_chain(self, ctx: ssl.SSLContext) -> None:
        if not (self.cert_file or self.cert_pem):
            return
        if not (self.cert_pem or self.key_pem):
            try:
                ctx.load_cert_chain(self.cert_file, self.key_file)
            except OSError as exc:  # name the files: ssl's own message does not
                raise OSError(
                    f"cannot load cert_file {self.cert_file} / key_file {self.key_file}: {exc}"
                ) from None
            return
        # ssl loads a certificate chain only from files: write inline PEMs to a private (0700) temp dir
        with tempfile.TemporaryDirectory() as tmp:
            cert, key = Path(tmp, "cert.pem"), Path(tmp, "key.pem")
            cert.write_bytes(self.read(self.cert_file, self.cert_pem) or b"")
            key.write_bytes(self.read(self.key_file, self.key_pem) or b"")
            ctx.load_cert_chain(cert, key)


class TLSClientConfig(_Common):
    insecure: bool = False
    insecure_skip_verify: bool = False
    server_name_override: str = ""

    def client_context(self) -> ssl.SSLContext:
        ctx = self.ssl_context(ssl.Purpose.SERVER_AUTH)
        if self.insecure_skip_verify:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        return ctx


class TLSServerConfig(_Common):
    client_ca_file: str = ""

    @model_validator(mode="after")
    def _needs_cert(self) -> TLSServerConfig:
        if not (self.cert_file or self.cert_pem):
            raise ValueError("a server TLS config needs cert_file and key_file")
        return self

    def server_context(self) -> ssl.SSLContext:
        ctx = self.ssl_context(ssl.Purpose.CLIENT_AUTH)
        if self.client_ca_file:
            ctx.load_verify_locations(self.client_ca_file)
            ctx.verify_mode = ssl.CERT_REQUIRED
        return ctx
