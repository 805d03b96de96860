"""Who is calling: a client certificate signed by the lab CA, or a bearer token.

The TLS layer has already verified any client certificate against the lab's CA
(``ssl.CERT_OPTIONAL``), so a certificate being present means it is ours; its CN is
the user, as with kubeadm's ``kubernetes-admin``. Service-account tokens are
verified by :meth:`k8snet.lab.pki.Pki.verify_token`. The health and version
endpoints are public, like on kubeadm clusters (``system:public-info-viewer``).
"""

from __future__ import annotations

from typing import Any

from ..pki import Pki

PUBLIC_PATHS = frozenset({"/version", "/healthz", "/livez", "/readyz"})


def certificate_user(peercert: dict[str, Any] | None) -> str | None:
    """The CN of a verified peer certificate (``ssl.SSLSocket.getpeercert()`` shape)."""
    if not peercert:
        return None
    for rdn in peercert.get("subject", ()):
        for attr, value in rdn:
            if attr == "commonName":
                return str(value)
    return None


def bearer_user(authorization: str | None, pki: Pki) -> str | None:
    """The user of an ``Authorization: Bearer <token>`` header, if the token is valid."""
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    # Tokens are base64url text: anything else is forged (and would make the constant-time
    # comparison raise TypeError for non-ASCII text instead of answering 401).
    if scheme.lower() != "bearer" or not token or not token.isascii() or not token.isprintable():
        return None
    return pki.verify_token(token)


def authenticate(peercert: dict[str, Any] | None, authorization: str | None, pki: Pki) -> str | None:
    """The caller's user name, or None if the request is anonymous or forged."""
    return certificate_user(peercert) or bearer_user(authorization, pki)


def is_public(path: str) -> bool:
    return path in PUBLIC_PATHS or any(path.startswith(p + "/") for p in ("/healthz", "/livez", "/readyz"))
