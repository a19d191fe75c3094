"""Certificates for TLS tests, made with openssl: a CA, servers for two names, a client.

ECDSA P-256 keys and two-day certificates: quick to make, and what a robot's broker could
use. ``wrong_*`` is a server certificate signed by the same CA for another name, to see
host name checking refuse it.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Certs", "make_certs"]

_EC = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")


@dataclass(frozen=True)
class Certs:
    ca: Path
    cert: Path         # the server, for localhost and 127.0.0.1
    key: Path
    wrong_cert: Path   # signed by the same CA, but for wrong.example
    wrong_key: Path
    client_cert: Path  # a client certificate (CN=tars-cli), for require_certificate
    client_key: Path


def _openssl(*args: str | Path) -> None:
    subprocess.run(["openssl", *map(str, args)], check=True, capture_output=True, timeout=30)


def _signed(d: Path, ca: Path, ca_key: Path, name: str, ext: str) -> tuple[Path, Path]:
    key, csr, cert = d / f"{name}.key", d / f"{name}.csr", d / f"{name}.crt"
    ext_file = d / f"{name}.ext"
    ext_file.write_text(ext)
    _openssl("req", "-new", *_EC, "-keyout", key, "-out", csr, "-subj", f"/CN={name}")
    _openssl("x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial",
             "-days", "2", "-out", cert, "-extfile", ext_file)
    return cert, key


def _server(d: Path, ca: Path, ca_key: Path, name: str, san: str) -> tuple[Path, Path]:
    return _signed(d, ca, ca_key, name, f"subjectAltName={san}\nbasicConstraints=CA:FALSE\n"
                   "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n")


def make_certs(d: Path) -> Certs:
    """Every certificate and key, written into ``d``."""
    ca, ca_key = d / "ca.crt", d / "ca.key"
    _openssl("req", "-x509", *_EC, "-keyout", ca_key, "-out", ca, "-days", "2",
             "-subj", "/CN=TARS test CA", "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    cert, key = _server(d, ca, ca_key, "localhost", "DNS:localhost,IP:127.0.0.1")
    wrong_cert, wrong_key = _server(d, ca, ca_key, "wrong.example", "DNS:wrong.example")
    client_cert, client_key = _signed(d, ca, ca_key, "tars-cli",
                                      "basicConstraints=CA:FALSE\nkeyUsage=critical,"
                                      "digitalSignature\nextendedKeyUsage=clientAuth\n")
    return Certs(ca, cert, key, wrong_cert, wrong_key, client_cert, client_key)
