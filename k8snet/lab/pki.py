"""The lab's certificates and service-account tokens.

One self-signed CA per lab signs the API server's serving certificate and the
admin's client certificate (CN kubernetes-admin, O system:masters, as kubeadm
writes them). Service-account tokens are JWTs signed with the lab's own
service-account key (``sa.key``, as kubeadm names it; ES256);
:mod:`k8snet.lab.api.tokens` issues and checks them.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from .privatefiles import write_private

_VALIDITY = dt.timedelta(days=365)


def _name(cn: str, org: str | None = None) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    if org:
        attrs.insert(0, x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
    return x509.Name(attrs)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


@dataclass(frozen=True)
class Pki:
    directory: Path

    @property
    def ca_cert(self) -> Path:
        return self.directory / "ca.crt"

    @property
    def server_cert(self) -> Path:
        return self.directory / "apiserver.crt"

    @property
    def server_key(self) -> Path:
        return self.directory / "apiserver.key"

    @property
    def admin_cert(self) -> Path:
        return self.directory / "admin.crt"

    @property
    def admin_key(self) -> Path:
        return self.directory / "admin.key"

    @property
    def token_key(self) -> Path:
        """The private key that signs service-account tokens (kube-apiserver's
        ``--service-account-signing-key-file``)."""
        return self.directory / "sa.key"

    def create(self, server_ips: list[str], server_names: list[str]) -> None:
        """Makes a fresh CA, serving certificate, admin certificate and token key."""
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = _name("k8snet-lab-ca")
        now = dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=5)
        ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
              .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
              .not_valid_before(now).not_valid_after(now + 10 * _VALIDITY)
              .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
              .add_extension(x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True)
              .sign(ca_key, hashes.SHA256()))
        self.ca_cert.write_bytes(ca.public_bytes(serialization.Encoding.PEM))

        def leaf(subject: x509.Name, usage: x509.ObjectIdentifier, sans: list[x509.GeneralName]) -> tuple[bytes, bytes]:
            key = ec.generate_private_key(ec.SECP256R1())
            builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(ca_name)
                       .public_key(key.public_key()).serial_number(x509.random_serial_number())
                       .not_valid_before(now).not_valid_after(now + _VALIDITY)
                       .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                       .add_extension(x509.ExtendedKeyUsage([usage]), critical=False))
            if sans:
                builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
            cert = builder.sign(ca_key, hashes.SHA256())
            return cert.public_bytes(serialization.Encoding.PEM), _key_pem(key)

        sans: list[x509.GeneralName] = [x509.DNSName(n) for n in server_names]
        sans += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in server_ips]
        cert, key = leaf(_name("kube-apiserver"), ExtendedKeyUsageOID.SERVER_AUTH, sans)
        self.server_cert.write_bytes(cert)
        write_private(self.server_key, key)
        cert, key = leaf(_name("kubernetes-admin", "system:masters"), ExtendedKeyUsageOID.CLIENT_AUTH, [])
        self.admin_cert.write_bytes(cert)
        write_private(self.admin_key, key)
        self.ensure_token_key()

    def ensure_token_key(self) -> None:
        """Creates the token-signing key if it is missing (a lab made before tokens were
        JWTs kept an HMAC secret instead; its old tokens stop working, new ones are issued)."""
        if not self.token_key.exists():
            write_private(self.token_key, _key_pem(ec.generate_private_key(ec.SECP256R1())))

    def server_ssl_context(self) -> ssl.SSLContext:
        """TLS for the API server: client certificates are optional (tokens also work)
        but, when presented, must be signed by the lab's CA."""
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(self.ca_cert))
        ctx.load_cert_chain(self.server_cert, self.server_key)
        ctx.verify_mode = ssl.CERT_OPTIONAL
        return ctx
