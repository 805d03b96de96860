"""k8snet.tls: CA, server certificate with the Service's names, TLS Secret, verification.

The HTTPS checks run a real TLS server on loopback in a thread (no root needed).
"""

from __future__ import annotations

import base64
import socket
import ssl
import subprocess
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

import k8snet
from k8snet import tls


@pytest.fixture(scope="module")
def ca() -> tls.KeyPair:
    return tls.create_ca()


@pytest.fixture(scope="module")
def server(ca: tls.KeyPair) -> tls.KeyPair:
    return tls.server_cert(ca, "my-nginx", "web")


def test_reexported_lazily() -> None:
    assert k8snet.tls is tls


def test_service_dns_names() -> None:
    assert tls.service_dns_names("my-nginx", "web") == [
        "my-nginx", "my-nginx.web", "my-nginx.web.svc", "my-nginx.web.svc.cluster.local"]


def test_server_cert_chain_verifies(ca: tls.KeyPair, server: tls.KeyPair) -> None:
    tls.verify_chain(server.cert_pem, ca.cert_pem)
    with pytest.raises(ValueError, match="does not match certificate issuer"):
        tls.verify_chain(server.cert_pem, tls.create_ca("someone-else").cert_pem)
    # the same CA name with another key: the signature check is what fails
    with pytest.raises(InvalidSignature):
        tls.verify_chain(server.cert_pem, tls.create_ca().cert_pem)


def test_server_cert_subject_and_sans(server: tls.KeyPair) -> None:
    cert = server.certificate
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "my-nginx"
    assert cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "my-nginx"
    assert tls.subject_alt_names(server.cert_pem) == tls.service_dns_names("my-nginx", "web")
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.SERVER_AUTH in eku


def test_extra_names_take_ips(ca: tls.KeyPair) -> None:
    pair = tls.server_cert(ca, "svc", "ns", extra_names=("10.244.1.2", "svc.example"))
    assert tls.subject_alt_names(pair.cert_pem)[-2:] == ["svc.example", "10.244.1.2"]


def test_ca_is_a_ca(ca: tls.KeyPair) -> None:
    assert ca.certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca


def test_tls_secret_shape(server: tls.KeyPair, ca: tls.KeyPair) -> None:
    secret = tls.tls_secret("nginxsecret", server.cert_pem, server.key_pem, "web")
    assert secret == {
        "apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
        "metadata": {"name": "nginxsecret", "namespace": "web"},
        "data": {"tls.crt": base64.b64encode(server.cert_pem).decode(),
                 "tls.key": base64.b64encode(server.key_pem).decode()},
    }
    assert "namespace" not in tls.tls_secret("s", b"c", b"k")["metadata"]
    with_ca = tls.tls_secret("s", b"c", b"k", ca_pem=ca.cert_pem)
    assert base64.b64decode(with_ca["data"]["ca.crt"]) == ca.cert_pem


@contextmanager
def https_server(tmp_path: Path, cert_pem: bytes, key_pem: bytes) -> Iterator[int]:
    """A one-thread HTTPS server on 127.0.0.1 answering every request with a fixed page."""
    (tmp_path / "c.pem").write_bytes(cert_pem)
    (tmp_path / "k.pem").write_bytes(key_pem)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(tmp_path / "c.pem", tmp_path / "k.pem")
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.1)  # so the thread notices ``stop`` promptly
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.settimeout(5)
            try:
                with ctx.wrap_socket(conn, server_side=True) as s:
                    s.recv(4096)
                    s.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\nhello")
            except (ssl.SSLError, OSError):
                pass  # the client rejected our certificate: expected in some tests

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        listener.close()
        thread.join(5)


def test_verify_https_by_service_name(tmp_path: Path, ca: tls.KeyPair, server: tls.KeyPair) -> None:
    with https_server(tmp_path, server.chain_pem(ca), server.key_pem) as port:
        for name in tls.service_dns_names("my-nginx", "web"):
            resp = tls.verify_https("127.0.0.1", ca.cert_pem, hostname=name, port=port)
            assert (resp.status, resp.body) == (200, "hello")
        assert "commonName=my-nginx" in resp.peer_subject
        assert "my-nginx.web.svc" in resp.peer_alt_names
        with pytest.raises(ssl.SSLCertVerificationError):
            tls.verify_https("127.0.0.1", ca.cert_pem, hostname="other-service", port=port)
        with pytest.raises(ssl.SSLCertVerificationError):
            tls.verify_https("127.0.0.1", tls.create_ca().cert_pem, hostname="my-nginx", port=port)


def test_make_keys_cert_has_no_san_and_fails_strict_verification(tmp_path: Path) -> None:
    """The tutorial's ``make keys`` certificate: CN only. RFC 6125 clients (Go, browsers,
    verify_https) do not fall back to the CN, so even trusting the cert itself fails."""
    key, crt = tmp_path / "nginx.key", tmp_path / "nginx.crt"
    subprocess.run(["openssl", "req", "-x509", "-nodes", "-days", "365", "-newkey", "rsa:2048",
                    "-keyout", str(key), "-out", str(crt), "-subj", "/CN=my-nginx/O=my-nginx"],
                   check=True, capture_output=True)
    assert tls.subject_alt_names(crt.read_bytes()) == []
    with https_server(tmp_path, crt.read_bytes(), key.read_bytes()) as port:
        with pytest.raises(ssl.SSLCertVerificationError, match="match|mismatch"):
            tls.verify_https("127.0.0.1", crt.read_bytes(), hostname="my-nginx", port=port)
