"""Bound service-account tokens, as kube-apiserver issues and checks them
(pkg/serviceaccount: claims.go, jwt.go).

A token is a JWT signed ES256 with the lab's ``sa.key``. Its claims::

    iss, sub (system:serviceaccount:<ns>:<name>), aud (list), exp, nbf, iat, jti,
    kubernetes.io: {namespace, serviceaccount: {name, uid}, pod: {name, uid}
                    | secret: {...} | node: {...}, warnafter}

The API accepts it only if the signature, issuer and time window are right, one of
its audiences is the API's, and the ServiceAccount — and the object it is bound to
— still exist with the same uid (a deleted and re-created one has another).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import time
import uuid
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Callable

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from ..contracts import Obj
from ..pki import Pki
from .identity import UserInfo, service_account_user, split_service_account

ALGORITHM = "ES256"
_LEEWAY = 60  # seconds of clock skew, as the real validator allows for nbf/exp
# Kinds a token may be bound to (TokenRequest boundObjectRef) and their store keys.
BOUND_KINDS = {"Pod": "pods", "Secret": "secrets", "Node": "nodes"}

# (store key, namespace, name) -> the stored object or None
Lookup = Callable[[str, str, str], Obj | None]


def api_audience(cluster_domain: str) -> str:
    """kubeadm's --service-account-issuer, which is also the API's audience."""
    return f"https://kubernetes.default.svc.{cluster_domain}"


@dataclass(frozen=True)
class BoundObject:
    kind: str  # Pod, Secret or Node
    name: str
    uid: str


@dataclass(frozen=True)
class TokenIssuer:
    pki: Pki
    issuer: str

    @cached_property
    def _private_key(self) -> ec.EllipticCurvePrivateKey:
        key = serialization.load_pem_private_key(self.pki.token_key.read_bytes(), password=None)
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        return key

    def issue(self, namespace: str, service_account: str, sa_uid: str, *, audiences: list[str], ttl_seconds: int,
              bound: BoundObject | None = None, warn_after: int | None = None, now: int | None = None) -> str:
        """A signed token valid for ``ttl_seconds`` from now."""
        now = int(time.time()) if now is None else now
        private: dict[str, Any] = {"namespace": namespace,
                                   "serviceaccount": {"name": service_account, "uid": sa_uid}}
        if bound is not None:
            private[bound.kind.lower()] = {"name": bound.name, "uid": bound.uid}
        if warn_after is not None:
            private["warnafter"] = now + warn_after
        claims = {"aud": audiences, "exp": now + ttl_seconds, "iat": now, "iss": self.issuer, "jti": str(uuid.uuid4()),
                  "kubernetes.io": private, "nbf": now, "sub": f"system:serviceaccount:{namespace}:{service_account}"}
        return jwt.encode(claims, self._private_key, algorithm=ALGORITHM, headers={"kid": self.key_id})

    @cached_property
    def key_id(self) -> str:
        """The key's id in the header (the real one is a hash of the public key too)."""
        der = self._private_key.public_key().public_bytes(serialization.Encoding.DER,
                                                          serialization.PublicFormat.SubjectPublicKeyInfo)
        return jwt.utils.base64url_encode(hashlib.sha256(der).digest()).decode()

    def claims(self, token: str, audience: str) -> dict[str, Any] | None:
        """The verified claims, or None if forged, expired, not yet valid, from another
        issuer or not meant for ``audience``."""
        try:
            return jwt.decode(token, self._private_key.public_key(), algorithms=[ALGORITHM], audience=audience,
                              issuer=self.issuer, leeway=_LEEWAY,
                              options={"require": ["exp", "iat", "nbf", "iss", "aud", "sub"]})
        except jwt.PyJWTError:
            return None

    def authenticate(self, token: str, audience: str, lookup: Lookup) -> UserInfo | None:
        """The service account a token names, if it is valid for the API and every
        object it is bound to still exists with its uid (pkg/serviceaccount's validator)."""
        claims = self.claims(token, audience)
        if claims is None:
            return None
        private = claims.get("kubernetes.io")
        who = split_service_account(str(claims["sub"]))
        if not isinstance(private, dict) or who is None:
            return None
        namespace, name = who
        sa_ref = private.get("serviceaccount") or {}
        if private.get("namespace") != namespace or sa_ref.get("name") != name:
            return None
        sa = lookup("serviceaccounts", namespace, name)
        if not _same(sa, sa_ref.get("uid")):
            return None
        extra: dict[str, tuple[str, ...]] = {"authentication.kubernetes.io/credential-id": (f"JTI={claims.get('jti', '')}",)}
        for kind, key in BOUND_KINDS.items():
            ref = private.get(kind.lower())
            if ref is None:
                continue
            if not isinstance(ref, dict):
                return None
            obj = lookup(key, "" if kind == "Node" else namespace, str(ref.get("name", "")))
            if not _same(obj, ref.get("uid")):
                return None  # the real validator: "token has been invalidated"
            if kind in ("Pod", "Node"):
                extra[f"authentication.kubernetes.io/{kind.lower()}-name"] = (str(ref["name"]),)
                extra[f"authentication.kubernetes.io/{kind.lower()}-uid"] = (str(ref.get("uid", "")),)
        return service_account_user(namespace, name, str(sa_ref.get("uid", "")), tuple(sorted(extra.items())))


def _same(obj: Obj | None, uid: Any) -> bool:
    """The object exists and is the one the token names; one being deleted stays good
    until a minute past its deletionTimestamp (a pod's grace period), as in the real
    validator."""
    if obj is None:
        return False
    meta = obj.get("metadata") or {}
    if not uid or meta.get("uid") != uid:
        return False
    deleted = meta.get("deletionTimestamp")
    if deleted:
        try:
            when = dt.datetime.fromisoformat(str(deleted).replace("Z", "+00:00")).timestamp()
        except ValueError:
            return False
        return when >= time.time() - _LEEWAY
    return True
