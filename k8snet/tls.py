"""Certificates for a Service, in Python: the tutorial's ``make keys`` done properly.

The tutorial makes a self-signed certificate with only ``CN=my-nginx`` and later
turns verification off (``curl -k``). Here a small CA signs a server certificate
whose subjectAltName lists every DNS name the Service answers to
(``my-nginx``, ``my-nginx.<ns>``, ``my-nginx.<ns>.svc``,
``my-nginx.<ns>.svc.cluster.local``), so clients can verify the server against the
CA by name — RFC 6125 clients (browsers, Go, Python) ignore the CN entirely::

    ca = k8snet.tls.create_ca()
    server = k8snet.tls.server_cert(ca, "my-nginx", "default")
    secret = k8snet.tls.tls_secret("nginxsecret", server.chain_pem(ca), server.key_pem)
    k8snet.tls.verify_https("10.244.1.2", ca.cert_pem, hostname="my-nginx")

This is the helper's own PKI for learners' workloads; the lab cluster's certificates
are made by :mod:`k8snet.lab.pki`.
"""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import socket
import ssl
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["KeyPair", "HttpsResponse", "create_ca", "server_cert", "service_dns_names", "tls_secret",
           "verify_chain", "verify_https", "subject_alt_names"]

#: As ``openssl req -x509 -days 365`` in the tutorial's Makefile.
DEFAULT_DAYS = 365
#: The tutorial's key size (``-newkey rsa:2048``); every TLS stack accepts it.
KEY_BITS = 2048
#: Certificates start a little in the past: a node whose clock lags must still accept them.
_BACKDATE = dt.timedelta(minutes=5)


@dataclass(frozen=True)
class KeyPair:
    """A certificate and its private key, both PEM (what files and Secrets hold)."""

    cert_pem: bytes
    key_pem: bytes

    @property
    def certificate(self) -> x509.Certificate:
        return x509.load_pem_x509_certificate(self.cert_pem)

    def chain_pem(self, ca: KeyPair) -> bytes:
        """Leaf then CA: what a server sends (nginx's ``ssl_certificate`` takes the chain)."""
        return self.cert_pem + ca.cert_pem


def _name(common_name: str, organization: str | None) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if organization:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    return x509.Name(attrs)


def _new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)


def _key_pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _validity(days: int) -> tuple[dt.datetime, dt.datetime]:
    start = dt.datetime.now(dt.timezone.utc) - _BACKDATE
    return start, start + _BACKDATE + dt.timedelta(days=days)


def create_ca(common_name: str = "k8snet-ca", *, organization: str | None = "k8snet",
              days: int = DEFAULT_DAYS) -> KeyPair:
    """A self-signed CA that may sign server certificates (and nothing below them)."""
    key = _new_key()
    name = _name(common_name, organization)
    not_before, not_after = _validity(days)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(not_before).not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                         crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    return KeyPair(cert.public_bytes(serialization.Encoding.PEM), _key_pem(key))


def service_dns_names(service: str, namespace: str = "default", cluster_domain: str = "cluster.local") -> list[str]:
    """Every name a Service resolves under from inside the cluster (the pod's DNS search path)."""
    return [service, f"{service}.{namespace}", f"{service}.{namespace}.svc",
            f"{service}.{namespace}.svc.{cluster_domain}"]


def server_cert(ca: KeyPair, service: str = "my-nginx", namespace: str = "default", *,
                organization: str | None = None, extra_names: tuple[str, ...] = (),
                cluster_domain: str = "cluster.local", days: int = DEFAULT_DAYS) -> KeyPair:
    """A serving certificate for ``service`` signed by ``ca``.

    Subject ``CN=<service>, O=<service>`` as the tutorial's ``make keys``
    (``-subj "/CN=my-nginx/O=my-nginx"``); the subjectAltName carries the Service's
    DNS names plus ``extra_names`` (DNS names, or IP addresses such as a pod IP).
    """
    ca_cert = ca.certificate
    ca_key = serialization.load_pem_private_key(ca.key_pem, password=None)
    if not isinstance(ca_key, rsa.RSAPrivateKey):  # the kit makes only RSA CAs (ca() above)
        raise ValueError(f"the CA key is a {type(ca_key).__name__}, not an RSA key")
    key = _new_key()
    sans: list[x509.GeneralName] = [x509.DNSName(n) for n in service_dns_names(service, namespace, cluster_domain)]
    sans += [_general_name(n) for n in extra_names]
    not_before, not_after = _validity(days)
    cert = (x509.CertificateBuilder()
            .subject_name(_name(service, organization if organization is not None else service))
            .issuer_name(ca_cert.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(not_before).not_valid_after(min(not_after, ca_cert.not_valid_after_utc))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=True,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                         crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    return KeyPair(cert.public_bytes(serialization.Encoding.PEM), _key_pem(key))


def _general_name(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def subject_alt_names(cert_pem: bytes) -> list[str]:
    """The certificate's DNS and IP subjectAltNames ([] when it has none, like a ``make keys`` cert)."""
    cert = x509.load_pem_x509_certificate(cert_pem)
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return [*ext.get_values_for_type(x509.DNSName), *(str(ip) for ip in ext.get_values_for_type(x509.IPAddress))]


def tls_secret(name: str, cert_pem: bytes, key_pem: bytes, namespace: str | None = None, *,
               ca_pem: bytes | None = None) -> dict[str, Any]:
    """A ``kubernetes.io/tls`` Secret manifest, as ``kubectl create secret tls`` makes it.

    ``ca_pem``, when given, goes in ``ca.crt`` (the key cert-manager uses) so a client
    can mount the Secret and trust the CA without trusting the server's own key.
    """
    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode("ascii")

    metadata: dict[str, Any] = {"name": name}
    if namespace is not None:
        metadata["namespace"] = namespace
    data = {"tls.crt": b64(cert_pem), "tls.key": b64(key_pem)}
    if ca_pem is not None:
        data["ca.crt"] = b64(ca_pem)
    return {"apiVersion": "v1", "kind": "Secret", "metadata": metadata, "type": "kubernetes.io/tls", "data": data}


def verify_chain(cert_pem: bytes, ca_pem: bytes) -> None:
    """Raises if the first certificate in ``cert_pem`` is not validly signed by the CA
    or is outside its validity period (no hostname check; see :func:`verify_https`)."""
    cert = x509.load_pem_x509_certificate(cert_pem)
    ca = x509.load_pem_x509_certificate(ca_pem)
    cert.verify_directly_issued_by(ca)  # issuer name, signature: raises ValueError / InvalidSignature
    now = dt.datetime.now(dt.timezone.utc)
    if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
        raise ValueError(f"certificate is not valid now (valid {cert.not_valid_before_utc} to "
                         f"{cert.not_valid_after_utc})")


@dataclass(frozen=True)
class HttpsResponse:
    """One verified HTTPS exchange: what came back and who proved to be the server."""

    status: int
    body: str
    peer_subject: str
    peer_alt_names: list[str]


def verify_https(address: str, ca_pem: bytes, *, hostname: str, port: int = 443, path: str = "/",
                 timeout: float = 5.0) -> HttpsResponse:
    """GET ``https://<hostname><path>`` from ``address:port`` with full verification.

    The chain must lead to ``ca_pem`` and ``hostname`` must be one of the certificate's
    subjectAltNames: the CN is never consulted, as in Go and browsers. Connecting to an
    address but checking a name is what ``curl --resolve`` does, so a pod IP can be
    checked against the Service's name. Raises ``ssl.SSLCertVerificationError``
    when the certificate does not verify (the case ``curl -k`` hides).
    """
    context = ssl.create_default_context(cadata=ca_pem.decode("ascii"))
    # Python (like curl) otherwise accepts a CN-only certificate; Go, browsers and
    # RFC 6125 do not, and that is the failure learners meet with the tutorial's cert.
    context.hostname_checks_common_name = False
    with socket.create_connection((address, port), timeout=timeout) as raw:
        with context.wrap_socket(raw, server_hostname=hostname) as tls:
            # typeshed's union of value types cannot be unpacked field by field
            peer: dict[str, Any] = dict(tls.getpeercert() or {})
            # HTTP/1.0: the body ends at EOF, never chunked
            request = f"GET {path} HTTP/1.0\r\nHost: {hostname}\r\n\r\n"
            tls.sendall(request.encode("ascii"))
            chunks = []
            while chunk := tls.recv(65536):
                chunks.append(chunk)
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1]) if head.startswith(b"HTTP/") else 0
    subject = ",".join(f"{k}={v}" for rdn in peer.get("subject", ()) for k, v in rdn)
    alt_names = [value for _, value in peer.get("subjectAltName", ())]
    return HttpsResponse(status, body.decode("utf-8", "replace"), subject, alt_names)
