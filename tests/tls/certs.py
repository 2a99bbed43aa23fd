"""Throwaway certificates for the TLS tests, made with the ``openssl`` CLI."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Pair:
    cert: Path
    key: Path


@dataclass(frozen=True)
class Certs:
    ca: Path  # signs everything below except the rogue_* ones
    server: Pair  # SAN IP:127.0.0.1, DNS:localhost
    client: Pair  # clientAuth, signed by ``ca``
    other_name: Pair  # SAN DNS:otlpd.test only: does not match 127.0.0.1
    rogue_ca: Path  # another CA, never named in a ca_file / client_ca_file
    rogue_server: Pair  # SAN IP:127.0.0.1, DNS:localhost, signed by ``rogue_ca``
    rogue_client: Pair  # clientAuth, signed by ``rogue_ca``


def _openssl(*args: str) -> None:
    done = subprocess.run(["openssl", *args], capture_output=True, text=True, timeout=30)
    if done.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(args)} failed:\n{done.stderr}")


def _key(path: Path) -> Path:
    _openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", str(path))
    return path


def _ca(d: Path, name: str) -> Path:
    key, cert = _key(d / f"{name}.key"), d / f"{name}.pem"
    _openssl(
        "req", "-x509", "-new", "-key", str(key), "-out", str(cert), "-days", "2",
        "-subj", f"/CN={name}",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        "-addext", "subjectKeyIdentifier=hash",
    )  # fmt: skip
    return cert


def _leaf(d: Path, name: str, ca: Path, usage: str, san: str | None = None) -> Pair:
    key, csr, cert, ext = _key(d / f"{name}.key"), d / f"{name}.csr", d / f"{name}.pem", d / f"{name}.ext"
    lines = [
        "basicConstraints=critical,CA:FALSE",
        "keyUsage=critical,digitalSignature",
        f"extendedKeyUsage={usage}",
        "subjectKeyIdentifier=hash",
        "authorityKeyIdentifier=keyid,issuer",
    ]
    if san:
        lines.append(f"subjectAltName={san}")
    ext.write_text("\n".join(lines) + "\n")
    _openssl("req", "-new", "-key", str(key), "-out", str(csr), "-subj", f"/CN={name}")
    _openssl(
        "x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca.with_suffix(".key")),
        "-CAcreateserial", "-out", str(cert), "-days", "2", "-extfile", str(ext),
    )  # fmt: skip
    return Pair(cert, key)


def make_certs(d: Path) -> Certs:
    ca = _ca(d, "ca")
    rogue_ca = _ca(d, "rogue-ca")
    return Certs(
        ca=ca,
        server=_leaf(d, "server", ca, "serverAuth", "IP:127.0.0.1,DNS:localhost"),
        client=_leaf(d, "client", ca, "clientAuth"),
        other_name=_leaf(d, "other-name", ca, "serverAuth", "DNS:otlpd.test"),
        rogue_ca=rogue_ca,
        rogue_server=_leaf(d, "rogue-server", rogue_ca, "serverAuth", "IP:127.0.0.1,DNS:localhost"),
        rogue_client=_leaf(d, "rogue-client", rogue_ca, "clientAuth"),
    )
