"""Who is calling: a client certificate signed by the lab CA, or a bearer token.

The TLS layer has already verified any client certificate against the lab's CA
(``ssl.CERT_OPTIONAL``), so a certificate being present means it is ours; its CN is
the user and its O values the groups, as with kubeadm's ``kubernetes-admin`` in
``system:masters``. Service-account tokens are bound JWTs checked by
:class:`~k8snet.lab.api.tokens.TokenIssuer`. The health and version endpoints are
public, like on kubeadm clusters (``system:public-info-viewer`` for
``system:unauthenticated``).
"""

from __future__ import annotations

from typing import Any

from .identity import AUTHENTICATED, UserInfo
from .tokens import Lookup, TokenIssuer

PUBLIC_PATHS = frozenset({"/version", "/healthz", "/livez", "/readyz"})


def certificate_user(peercert: dict[str, Any] | None) -> UserInfo | None:
    """CN and O values of a verified peer certificate (``ssl.SSLSocket.getpeercert()`` shape)."""
    if not peercert:
        return None
    name, groups = None, []
    for rdn in peercert.get("subject", ()):
        for attr, value in rdn:
            if attr == "commonName":
                name = str(value)
            elif attr == "organizationName":
                groups.append(str(value))
    return UserInfo(name, (*groups, AUTHENTICATED)) if name else None


class Authenticator:
    def __init__(self, tokens: TokenIssuer, audience: str, lookup: Lookup):
        self.tokens = tokens
        self.audience = audience
        self.lookup = lookup

    def bearer_user(self, authorization: str | None) -> UserInfo | None:
        """The user of an ``Authorization: Bearer <token>`` header, if the token is valid."""
        if not authorization:
            return None
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        # Tokens are base64url text: anything else is forged.
        if scheme.lower() != "bearer" or not token or not token.isascii() or not token.isprintable():
            return None
        return self.tokens.authenticate(token, self.audience, self.lookup)

    def authenticate(self, peercert: dict[str, Any] | None, authorization: str | None) -> UserInfo | None:
        """The caller, or None if the request is anonymous or its credential is not good."""
        return certificate_user(peercert) or self.bearer_user(authorization)


def is_public(path: str) -> bool:
    return path in PUBLIC_PATHS or any(path.startswith(p + "/") for p in ("/healthz", "/livez", "/readyz"))
