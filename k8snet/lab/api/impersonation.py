"""``kubectl --as``/``--as-group``: acting as another user (apiserver's impersonation
filter). The requester needs the ``impersonate`` verb on ``users`` (or on the
``serviceaccounts`` object), on each of ``groups``, ``uids`` and
``userextras/<key>``; the request then runs with the impersonated identity only.
"""

from __future__ import annotations

from typing import Callable, Iterator, Protocol

from .. import errors
from .authorizer import Decision
from .identity import AUTHENTICATED, UserInfo, service_account_groups, split_service_account
from .rbac import Attributes
from .requestinfo import denied

USER = "Impersonate-User"
GROUP = "Impersonate-Group"
UID = "Impersonate-Uid"
EXTRA_PREFIX = "Impersonate-Extra-"

Authorize = Callable[[UserInfo, Attributes], Decision]


class Headers(Protocol):
    """A request's headers, a header repeated once per value (aiohttp's CIMultiDictProxy)."""

    def get(self, key: str) -> str | None: ...
    def getall(self, key: str, default: list[str]) -> list[str]: ...
    def __iter__(self) -> Iterator[str]: ...


def impersonated(headers: Headers, requester: UserInfo, authorize: Authorize) -> UserInfo:
    """The identity the request acts as: the requester's own without impersonation
    headers, else the impersonated one once every part of it is allowed."""
    name = headers.get(USER)
    groups = list(headers.getall(GROUP, []))
    uid = headers.get(UID)
    extra: dict[str, list[str]] = {}
    for key in headers:
        if key.lower().startswith(EXTRA_PREFIX.lower()):
            extra.setdefault(key[len(EXTRA_PREFIX):].lower(), []).extend(headers.getall(key, []))
    if name is None:
        if groups or uid or extra:
            raise errors.bad_request("requested impersonation of groups, uid or extras without impersonating a user")
        return requester

    def check(attrs: Attributes) -> None:
        if not authorize(requester, attrs).allowed:
            raise denied(requester, attrs)

    service_account = split_service_account(name)
    if service_account is not None:
        check(Attributes("impersonate", namespace=service_account[0], resource="serviceaccounts",
                         name=service_account[1]))
        if not groups:
            groups = list(service_account_groups(service_account[0]))
    else:
        check(Attributes("impersonate", resource="users", name=name))
    for group in groups:
        check(Attributes("impersonate", resource="groups", name=group))
    if uid is not None:
        check(Attributes("impersonate", api_group="authentication.k8s.io", resource="uids", name=uid))
    for key, values in extra.items():
        for value in values:
            check(Attributes("impersonate", api_group="authentication.k8s.io", resource="userextras",
                             subresource=key, name=value))
    if name != "system:anonymous" and AUTHENTICATED not in groups:
        groups.append(AUTHENTICATED)
    return UserInfo(name, tuple(groups), uid or "", tuple(sorted((k, tuple(v)) for k, v in extra.items())))
