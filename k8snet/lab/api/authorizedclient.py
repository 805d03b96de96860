"""The in-process components' way into the API: :class:`ApiCore` called directly (no
HTTP), but as a named identity whose every call is authorized like a request.

The controllers, each kubelet, each kube-proxy and the LoadBalancer announcer get
one (identity.py names who they are, bootstrappolicy.py what they may do); a call
their roles do not allow fails with the same 403 a real component would get.
"""

from __future__ import annotations

from typing import Any, AsyncIterator

from ..contracts import Obj, PatchType
from .authorizer import Authorizer
from .core import ApiCore
from .identity import UserInfo
from .rbac import Attributes
from .requestinfo import denied, selected_value


class AuthorizedClient:
    def __init__(self, core: ApiCore, authorizer: Authorizer, user: UserInfo):
        self.core = core
        self.authorizer = authorizer
        self.user = user

    def _check(self, verb: str, key: str, namespace: str | None, name: str | None = None,
               subresource: str | None = None, field_selector: str | None = None) -> None:
        res = self.core.resource(key)
        ns = (namespace or "") if res.namespaced else (name or "") if res.key == "namespaces" else ""
        if verb in ("list", "watch"):  # as requestinfo: a list of one object by name is that name's
            name = selected_value(field_selector or "", "metadata.name")
        attrs = Attributes(verb, True, ns, res.group, res.plural, subresource or "", name or "",
                           field_selector=field_selector or "")
        decision = self.authorizer.authorize(self.user, attrs)
        if not decision.allowed:
            raise denied(self.user, attrs, decision.reason)

    async def get(self, key: str, namespace: str | None, name: str, *, subresource: str | None = None) -> Obj:
        self._check("get", key, namespace, name, subresource)
        return await self.core.get(key, namespace, name, subresource=subresource)

    async def list(self, key: str, namespace: str | None = None, *, label_selector: str | None = None,
                   field_selector: str | None = None) -> Obj:
        self._check("list", key, namespace, field_selector=field_selector)
        return await self.core.list(key, namespace, label_selector=label_selector, field_selector=field_selector)

    def watch(self, key: str, namespace: str | None = None, *, resource_version: str | None = None,
              label_selector: str | None = None, field_selector: str | None = None) -> AsyncIterator[Obj]:
        self._check("watch", key, namespace, field_selector=field_selector)
        return self.core.watch(key, namespace, resource_version=resource_version, label_selector=label_selector,
                               field_selector=field_selector)

    async def create(self, key: str, namespace: str | None, body: Obj, *, subresource: str | None = None,
                     name: str | None = None) -> Obj:
        self._check("create", key, namespace, name if subresource else None, subresource)
        return await self.core.create(key, namespace, body, subresource=subresource, name=name, user=self.user)

    async def update(self, key: str, namespace: str | None, name: str, body: Obj, *,
                     subresource: str | None = None) -> Obj:
        self._check("update", key, namespace, name, subresource)
        return await self.core.update(key, namespace, name, body, subresource=subresource, user=self.user)

    async def patch(self, key: str, namespace: str | None, name: str, patch: Any, *,
                    patch_type: PatchType = "merge", subresource: str | None = None,
                    field_manager: str | None = None, force: bool = False) -> Obj:
        self._check("patch", key, namespace, name, subresource)
        return await self.core.patch(key, namespace, name, patch, patch_type=patch_type, subresource=subresource,
                                     field_manager=field_manager, force=force, user=self.user)

    async def delete(self, key: str, namespace: str | None, name: str, *,
                     grace_period_seconds: int | None = None, propagation_policy: str | None = None,
                     preconditions: Obj | None = None) -> Obj:
        self._check("delete", key, namespace, name)
        return await self.core.delete(key, namespace, name, grace_period_seconds=grace_period_seconds,
                                      propagation_policy=propagation_policy, preconditions=preconditions,
                                      user=self.user)
