"""The API's semantics, shared by the HTTP server and the in-process clients.

:class:`ApiCore` implements :class:`k8snet.lab.contracts.ApiClient` on top of the
store: metadata bookkeeping, namespaces' lifecycle, admission on every write,
optimistic concurrency, selectors, subresources (status, scale, binding, token,
finalize) and the real deletion rules (finalizers, graceful pod deletion, namespace
termination). Every failure is an :class:`~k8snet.lab.errors.ApiError`.

Writes have no ``await`` between reading the stored object and writing the new one,
so each is atomic with respect to the other coroutines of the loop.
"""

from __future__ import annotations

import asyncio
import builtins  # the classes below have a list() method, which shadows list in their annotations
import datetime as dt
import json
import uuid
from typing import TYPE_CHECKING, Any, AsyncIterator, Callable, Protocol

from .. import errors
from .. import store as store_mod
from ..config import LabConfig
from ..contracts import Obj, PatchType
from ..errors import ApiError
from ..generatednames import random_suffix
from ..pki import Pki
from ..store import Store
from ..timefmt import from_unix, now, rfc3339
from . import gotypes, listoptions, schema
from . import patch as patch_mod
from .clone import clone
from .identity import UserInfo
from .registry import strategy_for
from .registry.strategy import SYSTEM_METADATA
from .resources import Resource, by_key
from .selectors import parse_field_selector, parse_label_selector
from .tokens import BOUND_KINDS, BoundObject, TokenIssuer, api_audience

if TYPE_CHECKING:  # injected by the supervisor; imported for the type only
    from .admission import Admission

_GENERATE_ATTEMPTS = 8  # the RetryGenerateName feature's retries on a collision
_BOOKMARK_EVERY = 60.0
_FRESH_WAIT = 3.0   # the watch cache's blockTimeout for a version it has not reached yet
_FRESH_POLL = 0.05
_CONFLICT_WHY = "the object has been modified; please apply your changes to the latest version and try again"
# etcd's default --max-request-bytes: the largest object the real cluster can store.
MAX_STORED_BYTES = 1536 * 1024
# The namespaces the NamespaceLifecycle admission plugin never lets go.
PROTECTED_NAMESPACES = frozenset({"default", "kube-system", "kube-public", "kube-node-lease"})
# TokenRequest lifetimes (ValidateTokenRequest): at least 10 minutes, at most 2^32 s.
# (kubeadm sets no --service-account-max-token-expiration; LabConfig.max_token_expiration_seconds can.)
_MIN_TOKEN_SECONDS = 600
_MAX_TOKEN_SECONDS = 2 ** 32
# token.WarnOnlyBoundTokenExpirationSeconds and ExpirationExtensionSeconds
EXTENDED_TOKEN_REQUEST_SECONDS = 3607
_EXTENDED_TOKEN_SECONDS = 365 * 24 * 3600


def now_rfc3339(offset_seconds: int = 0) -> str:
    return rfc3339(now() + dt.timedelta(seconds=offset_seconds))


def generate_name(prefix: str) -> str:
    """``generateName`` + 5 random characters, the prefix cut to 58 like the real one."""
    return prefix[:58] + random_suffix()


def not_served() -> ApiError:
    return ApiError(404, "NotFound", "the server could not find the requested resource", {})


def forbidden(res: Resource, name: str, why: str) -> ApiError:
    qualified = f"{res.plural}.{res.group}" if res.group else res.plural
    return ApiError(403, "Forbidden", f'{qualified} "{name}" is forbidden: {why}',
                    {"name": name, "group": res.group, "kind": res.plural})


def _meta(obj: Obj) -> Obj:
    return obj.setdefault("metadata", {})


def _rv(obj: Obj) -> str:
    return str(obj.get("metadata", {}).get("resourceVersion", ""))


class WriteGuard(Protocol):
    """A check of a write against who makes it, after admission and before storage
    (what needs the request's user: RBAC's escalation checks, NodeRestriction).
    ``operation`` is admission's: CREATE, UPDATE or DELETE; ``new`` is None on a
    delete, ``old`` on a create. It raises an ApiError to refuse."""

    def __call__(self, user: UserInfo, operation: str, res: Resource, namespace: str, name: str,
                 new: Obj | None, old: Obj | None, subresource: str | None) -> None: ...


class ApiCore:
    def __init__(self, config: LabConfig, store: Store, admission: Admission, pki: Pki):
        self.config = config
        self.store = store
        self.admission = admission
        self.pki = pki
        self.tokens = TokenIssuer(pki, api_audience(config.cluster_domain))
        # Checks of writes by who makes them; a write without a user (the core called
        # directly, as tests do) skips them, as the real server's do without one.
        self.guards: builtins.list[WriteGuard] = []

    def _guard(self, user: UserInfo | None, operation: str, res: Resource, namespace: str, name: str,
               new: Obj | None, old: Obj | None, subresource: str | None = None) -> None:
        if user is not None:
            for guard in self.guards:
                guard(user, operation, res, namespace, name, new, old, subresource)

    # -- lookups -------------------------------------------------------------
    @staticmethod
    def resource(key: str) -> Resource:
        try:
            return by_key(key)
        except KeyError:
            raise not_served() from None

    @staticmethod
    def _namespace(res: Resource, namespace: str | None) -> str:
        if not res.namespaced:
            return ""
        if not namespace:
            raise errors.bad_request("the server could not find the requested resource: a namespace is required")
        return namespace

    def _load(self, res: Resource, namespace: str, name: str) -> Obj:
        obj = self.store.get(res.key, namespace, name)
        if obj is None:
            raise errors.not_found(res.group, res.plural, name)
        return obj

    @staticmethod
    def _check_subresource(res: Resource, subresource: str | None, verb: str) -> None:
        if subresource is None:
            return
        sub = res.subresource(subresource)
        if sub is None:
            raise not_served()
        if verb not in sub.verbs:
            raise errors.method_not_allowed(f'{verb} is not supported on resources of kind "{res.plural}/{subresource}"')

    # -- reads -----------------------------------------------------------------
    async def get(self, key: str, namespace: str | None, name: str, *, subresource: str | None = None) -> Obj:
        res = self.resource(key)
        self._check_subresource(res, subresource, "get")
        if subresource not in (None, "status", "scale"):
            raise errors.bad_request(f"{res.plural}/{subresource} is served by its own handler")
        obj = self._load(res, self._namespace(res, namespace), name)
        return self._scale(res, obj) if subresource == "scale" else obj

    async def list(self, key: str, namespace: str | None = None, *, label_selector: str | None = None,
                   field_selector: str | None = None) -> Obj:
        res = self.resource(key)
        match = self._matcher(res, label_selector, field_selector)
        items, rv = self.store.list(res.key, namespace or None if res.namespaced else None)
        return {"kind": res.list_kind, "apiVersion": res.api_version,
                "metadata": {"resourceVersion": str(rv)}, "items": [o for o in items if match(o)]}

    @staticmethod
    def _matcher(res: Resource, label_selector: str | None, field_selector: str | None) -> Callable[[Obj], bool]:
        labels = parse_label_selector(label_selector)
        fields = parse_field_selector(field_selector, res.key)
        if not labels.requirements and not fields.requirements:
            return lambda obj: True
        return lambda obj: labels.matches(obj.get("metadata", {}).get("labels")) and fields.matches(obj)

    def watch(self, key: str, namespace: str | None = None, *, resource_version: str | None = None,
              resource_version_match: str | None = None, send_initial_events: bool | None = None,
              label_selector: str | None = None, field_selector: str | None = None,
              allow_bookmarks: bool = False, timeout_seconds: float | None = None) -> AsyncIterator[Obj]:
        """Watch events; the options, selectors and resource are checked now (so a bad
        request fails before a response starts), a too-old or too-new version on the
        first iteration (the real watch reports those as an ERROR event).

        With ``send_initial_events`` (the default from version "" or "0") the watch is
        a streaming list: the matching objects as ADDED events, then, if bookmarks are
        allowed, a BOOKMARK annotated ``k8s.io/initial-events-end`` carrying the
        version of that state, then the changes after it.
        """
        res = self.resource(key)
        opts = listoptions.watch_options(resource_version, resource_version_match, send_initial_events,
                                         allow_bookmarks)
        match = self._matcher(res, label_selector, field_selector)
        version = None
        if opts.resource_version not in ("", "0"):
            try:
                version = int(opts.resource_version)
            except ValueError:
                raise errors.bad_request(f'invalid resource version: "{opts.resource_version}"') from None
        namespace = namespace or None if res.namespaced else None
        if opts.streams_initial_events:
            return self._watch(res, namespace, opts, match, timeout_seconds, start=None, not_older_than=version)
        # Without initial events: the changes after the version, or from now on (taken
        # now, not at the first iteration, so no change in between is lost).
        start = version if version is not None else self.store.resource_version
        return self._watch(res, namespace, opts, match, timeout_seconds, start=start, not_older_than=None)

    async def _watch(self, res: Resource, namespace: str | None, opts: listoptions.WatchOptions,
                     match: Callable[[Obj], bool], timeout_seconds: float | None, *, start: int | None,
                     not_older_than: int | None) -> AsyncIterator[Obj]:
        """Events after ``start``; with ``start`` None, the current state (once the store
        is ``not_older_than``) as ADDED events first, and the changes after it."""
        loop = asyncio.get_running_loop()
        deadline = None if timeout_seconds is None else loop.time() + timeout_seconds
        initial: list[Obj] = []
        if start is None:
            # "Not older than" the given version: the current state, once the store has
            # reached that version (the cacher's waitUntilFreshAndBlock).
            if not_older_than is not None:
                await self._wait_until_fresh(not_older_than)
            items, start = self.store.list(res.key, namespace)
            initial = [o for o in items if match(o)]
        with self.store.watch(res.key, namespace, start) as cursor:
            for obj in initial:
                yield {"type": "ADDED", "object": obj}
            if opts.ends_initial_events_with_bookmark:
                yield _bookmark(res, start, initial_events_end=True)
            while True:
                wait = _BOOKMARK_EVERY if opts.allow_bookmarks else None
                if deadline is not None:
                    remaining = deadline - loop.time()
                    if remaining <= 0:
                        return
                    wait = remaining if wait is None else min(wait, remaining)
                event = await cursor.next(wait)
                if event is None:
                    if opts.allow_bookmarks and (deadline is None or loop.time() < deadline):
                        yield _bookmark(res, cursor.progress)
                    continue
                out = _filtered(event, match)
                if out is not None:
                    yield out

    async def _wait_until_fresh(self, version: int) -> None:
        """Waits up to :data:`_FRESH_WAIT` seconds for the store to reach ``version``,
        then fails as the real server does (504, cause ResourceVersionTooLarge)."""
        loop = asyncio.get_running_loop()
        give_up = loop.time() + _FRESH_WAIT
        # The store is the source of truth, so a newer version can only come from writes
        # happening right now; polling a few times covers that rare case cheaply.
        while self.store.resource_version < version:
            if loop.time() >= give_up:
                raise errors.too_large_resource_version(version, self.store.resource_version)
            await asyncio.sleep(_FRESH_POLL)

    # -- create ------------------------------------------------------------------
    async def create(self, key: str, namespace: str | None, body: Obj, *, subresource: str | None = None,
                     name: str | None = None, dry_run: bool = False, field_validation: str | None = None,
                     warnings: builtins.list[str] | None = None, user: UserInfo | None = None) -> Obj:
        res = self.resource(key)
        ns = self._namespace(res, namespace)
        if subresource is not None:
            self._check_subresource(res, subresource, "create")
            if name is None:
                raise errors.bad_request(f"{res.plural}/{subresource} needs the object's name")
            if subresource == "binding":
                return self._bind(res, ns, name, body, dry_run)
            if subresource == "token":
                self._guard(user, "CREATE", res, ns, name, body if isinstance(body, dict) else None, None, subresource)
                return self._token(ns, name, body)
            raise errors.bad_request(f"{res.plural}/{subresource} is served by its own handler")
        obj = _prepare(res, body, ns)
        _check_fields(res, obj, None, field_validation, warnings)
        meta = obj["metadata"]
        if name is not None and meta.get("name") and meta["name"] != name:
            raise errors.bad_request(f"the name of the object ({meta['name']}) does not match the name on the URL ({name})")
        for field in (*SYSTEM_METADATA, "resourceVersion", "selfLink"):
            meta.pop(field, None)
        if not meta.get("name"):
            meta["name"] = name or self._generated_name(res, ns, meta)
        self._check_namespace_open(res, ns, meta["name"])
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = now_rfc3339()
        obj = self.admission.admit_create(res, obj)
        self._guard(user, "CREATE", res, ns, meta["name"], obj, None)
        _check_size(res, obj)
        if dry_run:
            if self.store.get(res.key, ns, meta["name"]) is not None:
                raise errors.already_exists(res.group, res.plural, meta["name"])
            return obj
        return self.store.create(res.key, ns, obj["metadata"]["name"], obj)

    def _generated_name(self, res: Resource, namespace: str, meta: Obj) -> str:
        prefix = meta.get("generateName")
        if not prefix or not isinstance(prefix, str):
            raise errors.invalid(res.group, res.kind, "", [
                ("FieldValueRequired", "metadata.name", "Required value: name or generateName is required")])
        for _ in range(_GENERATE_ATTEMPTS):
            candidate = generate_name(prefix)
            if self.store.get(res.key, namespace, candidate) is None:
                return candidate
        raise errors.already_exists(res.group, res.plural, candidate)

    def _check_namespace_open(self, res: Resource, namespace: str, name: str) -> None:
        if not res.namespaced:
            return
        ns = self.store.get("namespaces", "", namespace)
        if ns is None:
            raise errors.not_found("", "namespaces", namespace)
        if ns["metadata"].get("deletionTimestamp") or ns.get("status", {}).get("phase") == "Terminating":
            raise forbidden(res, name, f"unable to create new content in namespace {namespace} "
                                       "because it is being terminated")

    # -- update ------------------------------------------------------------------
    async def update(self, key: str, namespace: str | None, name: str, body: Obj, *,
                     subresource: str | None = None, dry_run: bool = False, field_validation: str | None = None,
                     warnings: builtins.list[str] | None = None, user: UserInfo | None = None) -> Obj:
        res = self.resource(key)
        ns = self._namespace(res, namespace)
        self._check_subresource(res, subresource, "update")
        if subresource == "scale":
            return self._update_scale(res, ns, name, body, dry_run, user)
        if subresource not in (None, "status", "finalize"):
            raise errors.bad_request(f"{res.plural}/{subresource} cannot be updated")
        obj = _prepare(res, body, ns)
        meta = obj["metadata"]
        if meta.get("name") and meta["name"] != name:
            raise errors.bad_request(f"the name of the object ({meta['name']}) does not match the name on the URL ({name})")
        meta["name"] = name
        current = self.store.get(res.key, ns, name)
        if current is None:
            if strategy_for(res.key).allow_create_on_update and subresource is None:
                return await self.create(key, namespace, obj, dry_run=dry_run, field_validation=field_validation,
                                         warnings=warnings, user=user)
            raise errors.not_found(res.group, res.plural, name)
        _check_fields(res, obj, current, field_validation, warnings)
        return self._replace(res, current, obj, subresource, dry_run, user)

    def _replace(self, res: Resource, current: Obj, new: Obj, subresource: str | None, dry_run: bool,
                 user: UserInfo | None) -> Obj:
        """Writes ``new`` over ``current``: resourceVersion precondition, system metadata
        kept, admission, and removal when the last finalizer goes."""
        name, ns = current["metadata"]["name"], current["metadata"].get("namespace", "")
        meta = _meta(new)
        if meta.get("resourceVersion") and str(meta["resourceVersion"]) != _rv(current):
            raise errors.conflict(res.group, res.plural, name, _CONFLICT_WHY)
        if meta.get("uid") and meta["uid"] != current["metadata"].get("uid"):
            raise errors.conflict(res.group, res.plural, name, f"Precondition failed: UID in precondition: "
                                  f"{meta['uid']}, UID in object meta: {current['metadata'].get('uid')}")
        meta["name"] = name
        if ns:
            meta["namespace"] = ns
        gotypes.check(res, new)
        _check_metadata(res, new)
        new = self.admission.admit_update(res, current, new, subresource)
        self._guard(user, "UPDATE", res, ns, name, new, current, subresource)
        if strategy_for(res.key).removes_on_update(current, new):
            if dry_run:
                return new
            return self.store.delete(res.key, ns, name, expected_rv=_rv(current), final=new, current=current)
        if dry_run:
            return new
        _check_size(res, new)
        return self.store.update(res.key, ns, name, new, expected_rv=_rv(current), current=current)

    # -- patch -------------------------------------------------------------------
    async def patch(self, key: str, namespace: str | None, name: str, patch: Any, *,
                    patch_type: PatchType = "merge", subresource: str | None = None,
                    field_manager: str | None = None, force: bool = False, dry_run: bool = False,
                    field_validation: str | None = None, warnings: builtins.list[str] | None = None,
                    user: UserInfo | None = None) -> Obj:
        obj, _ = await self.patch_created(key, namespace, name, patch, patch_type=patch_type,
                                          subresource=subresource, field_manager=field_manager, force=force,
                                          dry_run=dry_run, field_validation=field_validation, warnings=warnings,
                                          user=user)
        return obj

    async def patch_created(self, key: str, namespace: str | None, name: str, patch: Any, *,
                            patch_type: PatchType = "merge", subresource: str | None = None,
                            field_manager: str | None = None, force: bool = False, dry_run: bool = False,
                            field_validation: str | None = None, warnings: builtins.list[str] | None = None,
                            user: UserInfo | None = None) -> tuple[Obj, bool]:
        """Like :meth:`patch`, also telling whether an apply patch created the object (201)."""
        res = self.resource(key)
        ns = self._namespace(res, namespace)
        self._check_subresource(res, subresource, "patch")
        if subresource not in (None, "status", "scale"):
            raise errors.bad_request(f"{res.plural}/{subresource} cannot be patched")
        if patch_type not in ("merge", "strategic", "json", "apply"):
            raise errors.unsupported_media_type(str(patch_type))
        if patch_type == "apply":
            if not field_manager:
                raise errors.invalid("meta.k8s.io", "PatchOptions", "", [
                    ("FieldValueRequired", "fieldManager", "Required value: is required for apply patch")])
            if not isinstance(patch, dict):
                raise errors.bad_request("the apply patch must be an object")
        current = self.store.get(res.key, ns, name)
        if current is None:
            if patch_type == "apply" and subresource is None:
                applied = _prepare(res, patch, ns)
                applied["metadata"].setdefault("name", name)
                created = patch_mod.server_side_apply(None, applied, res, field_manager or "", force)
                obj = await self.create(key, namespace, created, name=name, dry_run=dry_run,
                                        field_validation=field_validation, warnings=warnings, user=user)
                return obj, True
            raise errors.not_found(res.group, res.plural, name)
        if subresource == "scale":
            scale = self._scale(res, current)
            return self._update_scale(res, ns, name, self._patched(res, scale, patch, patch_type, field_manager, force),
                                      dry_run, user), False
        new = self._patched(res, current, patch, patch_type, field_manager, force)
        if not isinstance(new, dict) or not isinstance(new.get("metadata", {}), dict):
            raise errors.bad_request("the patch produced an object that is not a Kubernetes object")
        if new.get("metadata", {}).get("name", name) != name:
            raise errors.bad_request(f"the name of the object ({new['metadata']['name']}) does not match "
                                     f"the name on the URL ({name})")
        _check_fields(res, new, current, field_validation, warnings)
        return self._replace(res, current, new, subresource, dry_run, user), False

    @staticmethod
    def _patched(res: Resource, current: Obj, patch: Any, patch_type: str, field_manager: str | None,
                 force: bool) -> Obj:
        base = clone(current)
        if patch_type == "apply":
            return patch_mod.server_side_apply(base, patch, res, field_manager or "", force)
        return patch_mod.apply_patch(base, patch, patch_type, res)

    # -- delete ------------------------------------------------------------------
    async def delete(self, key: str, namespace: str | None, name: str, *,
                     grace_period_seconds: int | None = None, propagation_policy: str | None = None,
                     preconditions: Obj | None = None, dry_run: bool = False, user: UserInfo | None = None) -> Obj:
        res = self.resource(key)
        ns = self._namespace(res, namespace)
        current = self._load(res, ns, name)
        _check_preconditions(res, current, preconditions)
        self._guard(user, "DELETE", res, ns, name, None, current)
        if propagation_policy not in (None, "Background", "Foreground", "Orphan"):
            raise errors.invalid("meta.k8s.io", "DeleteOptions", "", [
                ("FieldValueNotSupported", "propagationPolicy", f'Unsupported value: "{propagation_policy}": '
                 'supported values: "Foreground", "Background", "Orphan", "nil"')])
        if grace_period_seconds is not None and (isinstance(grace_period_seconds, bool)
                                                 or not isinstance(grace_period_seconds, int)
                                                 or grace_period_seconds < 0):
            raise errors.invalid("meta.k8s.io", "DeleteOptions", "", [
                ("FieldValueInvalid", "gracePeriodSeconds", f"Invalid value: {grace_period_seconds}: must be >= 0")])
        new = clone(current)
        meta = new["metadata"]
        finalizers = [f for f in meta.get("finalizers") or [] if f not in ("orphan", "foregroundDeletion")
                      or propagation_policy is None]
        if propagation_policy == "Orphan":
            finalizers.append("orphan")
        elif propagation_policy == "Foreground":
            finalizers.append("foregroundDeletion")
        if finalizers:
            meta["finalizers"] = list(dict.fromkeys(finalizers))
        else:
            meta.pop("finalizers", None)
        if res.key == "namespaces":
            if name in PROTECTED_NAMESPACES:
                raise forbidden(res, name, "this namespace may not be deleted")
            return self._delete_namespace(res, current, new, dry_run)
        grace = strategy_for(res.key).grace_period(current, grace_period_seconds)
        already = meta.get("deletionTimestamp") is not None
        if already and grace >= (meta.get("deletionGracePeriodSeconds") or 0) and new == current:
            return current  # deleting again changes nothing unless it shortens the grace period
        if grace == 0 and not meta.get("finalizers"):
            return new if dry_run else self.store.delete(res.key, ns, name, expected_rv=_rv(current),
                                                         current=current)
        if not already or grace < (meta.get("deletionGracePeriodSeconds") or 0):
            meta["deletionTimestamp"] = now_rfc3339(grace)
            meta["deletionGracePeriodSeconds"] = grace
        return new if dry_run else self.store.update(res.key, ns, name, new, expected_rv=_rv(current),
                                                     current=current)

    def _delete_namespace(self, res: Resource, current: Obj, new: Obj, dry_run: bool) -> Obj:
        """Deleting a namespace starts termination; the namespace controller empties it
        and clears spec.finalizers (finalize), then the namespace goes."""
        meta, name = new["metadata"], current["metadata"]["name"]
        if meta.get("deletionTimestamp"):
            if not (new.get("spec") or {}).get("finalizers") and not meta.get("finalizers"):
                return new if dry_run else self.store.delete(res.key, "", name, expected_rv=_rv(current), final=new,
                                                             current=current)
            if new == current:
                return current
        else:
            meta["deletionTimestamp"] = now_rfc3339()
            meta["deletionGracePeriodSeconds"] = 0
            spec = new.setdefault("spec", {})
            spec["finalizers"] = list(dict.fromkeys([*(spec.get("finalizers") or []), "kubernetes"]))
            new.setdefault("status", {})["phase"] = "Terminating"
        return new if dry_run else self.store.update(res.key, "", name, new, expected_rv=_rv(current), current=current)

    async def delete_collection(self, key: str, namespace: str | None = None, *,
                                label_selector: str | None = None, field_selector: str | None = None,
                                grace_period_seconds: int | None = None, propagation_policy: str | None = None,
                                dry_run: bool = False, user: UserInfo | None = None) -> Obj:
        """Deletes every matching object; the list of what was deleted (or is now deleting)."""
        listed = await self.list(key, namespace, label_selector=label_selector, field_selector=field_selector)
        done = []
        for obj in listed["items"]:
            m = obj["metadata"]
            try:
                done.append(await self.delete(key, m.get("namespace"), m["name"], dry_run=dry_run,
                                              grace_period_seconds=grace_period_seconds,
                                              propagation_policy=propagation_policy, user=user))
            except ApiError as err:
                if err.code != 404:  # gone meanwhile is fine
                    raise
        listed["items"] = done
        listed["metadata"]["resourceVersion"] = str(self.store.resource_version)
        return listed

    # -- subresources ----------------------------------------------------------------
    @staticmethod
    def _scale(res: Resource, obj: Obj) -> Obj:
        m = obj["metadata"]
        return {"kind": "Scale", "apiVersion": "autoscaling/v1",
                "metadata": {k: m[k] for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
                             if k in m},
                "spec": {"replicas": (obj.get("spec") or {}).get("replicas", 0)},
                "status": {"replicas": (obj.get("status") or {}).get("replicas", 0),
                           "selector": strategy_for(res.key).scale_selector(obj)}}

    def _update_scale(self, res: Resource, ns: str, name: str, body: Any, dry_run: bool,
                      user: UserInfo | None) -> Obj:
        scale = _prepare_typed(body, "autoscaling/v1", "Scale")
        replicas = (scale.get("spec") or {}).get("replicas", 0)
        if isinstance(replicas, bool) or not isinstance(replicas, int) or replicas < 0:
            raise errors.invalid("autoscaling", "Scale", name, [
                ("FieldValueInvalid", "spec.replicas", f"Invalid value: {replicas!r}: must be greater than or equal to 0")])
        current = self._load(res, ns, name)
        new = clone(current)
        new.setdefault("spec", {})["replicas"] = replicas
        new["metadata"]["resourceVersion"] = scale["metadata"].get("resourceVersion") or _rv(current)
        return self._scale(res, self._replace(res, current, new, None, dry_run, user))

    def _bind(self, res: Resource, ns: str, name: str, body: Any, dry_run: bool) -> Obj:
        """pods/binding: the scheduler's write of spec.nodeName (plus PodScheduled)."""
        if res.key != "pods":
            raise not_served()
        binding = _prepare_typed(body, "v1", "Binding")
        node = (binding.get("target") or {}).get("name")
        if not node or not isinstance(node, str):
            raise errors.invalid("", "Binding", name, [("FieldValueRequired", "target.name", "Required value")])
        pod = self._load(res, ns, name)
        if pod["metadata"].get("deletionTimestamp"):
            raise errors.conflict("", "pods/binding", name, f"pod {name} is being deleted, cannot be assigned to a host")
        bound = (pod.get("spec") or {}).get("nodeName")
        if bound:
            raise errors.conflict("", "pods/binding", name, f'pod {name} is already assigned to node "{bound}"')
        new = clone(pod)
        new.setdefault("spec", {})["nodeName"] = node
        annotations = binding["metadata"].get("annotations")
        if isinstance(annotations, dict) and annotations:
            new["metadata"]["annotations"] = {**(new["metadata"].get("annotations") or {}), **annotations}
        status = new.setdefault("status", {})
        conditions = [c for c in status.get("conditions") or [] if c.get("type") != "PodScheduled"]
        status["conditions"] = [*conditions, {"type": "PodScheduled", "status": "True", "lastProbeTime": None,
                                              "lastTransitionTime": now_rfc3339()}]
        if not dry_run:
            self.store.update(res.key, ns, name, new, expected_rv=_rv(pod), current=pod)
        return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}

    def _token(self, ns: str, name: str, body: Any) -> Obj:
        """serviceaccounts/token: a TokenRequest answered with a bound token
        (pkg/registry/core/serviceaccount/storage/token.go)."""
        request = _prepare_typed(body, "authentication.k8s.io/v1", "TokenRequest")
        sa = self._load(by_key("serviceaccounts"), ns, name)
        spec = dict(request.get("spec") or {})
        ttl = spec.get("expirationSeconds", 3600)
        if isinstance(ttl, bool) or not isinstance(ttl, int):
            raise errors.bad_request('TokenRequest in version "v1" cannot be handled as a TokenRequest: json: '
                                     "cannot unmarshal non-integer into Go struct field TokenRequestSpec."
                                     "spec.expirationSeconds of type int64")
        why = ("may not specify a duration less than 10 minutes" if ttl < _MIN_TOKEN_SECONDS else
               "may not specify a duration larger than 2^32 seconds" if ttl > _MAX_TOKEN_SECONDS else "")
        if why:
            raise errors.invalid("authentication.k8s.io", "TokenRequest", name, [
                ("FieldValueInvalid", "spec.expirationSeconds", f"Invalid value: {ttl}: {why}")])
        audiences = spec.get("audiences") or [self.tokens.issuer]
        if not isinstance(audiences, list) or not all(isinstance(a, str) and a for a in audiences):
            raise errors.bad_request("spec.audiences must be a list of non-empty strings")
        bound = self._bound_object(ns, name, spec.get("boundObjectRef"))
        maximum = self.config.max_token_expiration_seconds
        if maximum and ttl > maximum:  # cut to the configured maximum, not refused
            ttl = maximum
        # The kubelet's default 3607 s marks a token that may outlive its refresh: it
        # stays valid for a year (with a warnafter) for clients that reread it late
        # (--service-account-extend-token-expiration, on by default).
        lifetime, warn_after = ttl, None
        if bound is not None and bound.kind == "Pod" and ttl == EXTENDED_TOKEN_REQUEST_SECONDS \
                and self.tokens.issuer in audiences:
            lifetime, warn_after = max(_EXTENDED_TOKEN_SECONDS, maximum), ttl
        now = int(dt.datetime.now(dt.timezone.utc).timestamp())
        token = self.tokens.issue(ns, name, sa["metadata"]["uid"], audiences=audiences, ttl_seconds=lifetime,
                                  bound=bound, warn_after=warn_after, now=now)
        expiry = rfc3339(from_unix(now + ttl))
        return {"kind": "TokenRequest", "apiVersion": "authentication.k8s.io/v1",
                "metadata": {"name": name, "namespace": ns, "creationTimestamp": None},
                "spec": {**spec, "audiences": audiences, "expirationSeconds": ttl,
                         "boundObjectRef": spec.get("boundObjectRef")},
                "status": {"token": token, "expirationTimestamp": expiry}}

    def _bound_object(self, ns: str, sa_name: str, ref: Any) -> BoundObject | None:
        """The object a token is bound to, checked as the real TokenRequest does."""
        if not ref:
            return None
        if not isinstance(ref, dict):
            raise errors.bad_request("spec.boundObjectRef must be an object")
        kind, name, uid = ref.get("kind"), str(ref.get("name") or ""), ref.get("uid")
        key = BOUND_KINDS.get(str(kind)) if ref.get("apiVersion", "v1") == "v1" else None
        if key is None:
            raise errors.bad_request(f"cannot bind token to object of type /{ref.get('apiVersion', '')}, Kind={kind}")
        res = by_key(key)
        obj = self._load(res, "" if kind == "Node" else ns, name)
        if uid and obj["metadata"]["uid"] != uid:
            raise errors.conflict("", str(kind), name, f"the UID in the bound object reference ({uid}) does not "
                                  "match the UID in record. The object might have been deleted and then recreated")
        if kind == "Pod" and (obj.get("spec") or {}).get("serviceAccountName", "default") != sa_name:
            raise errors.bad_request(f'cannot bind token for serviceaccount "{sa_name}" to pod running with '
                                     "different serviceaccount name.")
        return BoundObject(str(kind), name, obj["metadata"]["uid"])


# -- helpers -------------------------------------------------------------------------------

def _bookmark(res: Resource, resource_version: int, *, initial_events_end: bool = False) -> Obj:
    """A BOOKMARK: an empty object of the watched kind carrying only a version (and, at
    the end of a streaming list's initial events, the annotation that says so)."""
    meta: Obj = {"resourceVersion": str(resource_version), "creationTimestamp": None}
    if initial_events_end:
        meta["annotations"] = {listoptions.INITIAL_EVENTS_END: "true"}
    return {"type": "BOOKMARK", "object": {"kind": res.kind, "apiVersion": res.api_version, "metadata": meta}}


def _filtered(event: store_mod.Event, match: Callable[[Obj], bool]) -> Obj | None:
    """A store event as the watcher sees it through its selectors: an object that
    starts matching is ADDED, one that stops matching is DELETED (cacher semantics)."""
    if event.type == "MODIFIED" and event.prev is not None:
        now, before = match(event.object), match(event.prev)
        if now:
            return {"type": "MODIFIED" if before else "ADDED", "object": event.object}
        if before:
            gone = {**event.prev, "metadata": {**event.prev.get("metadata", {}), "resourceVersion": str(event.rv)}}
            return {"type": "DELETED", "object": gone}
        return None
    return {"type": event.type, "object": event.object} if match(event.object) else None


def _prepare_typed(body: Any, api_version: str, kind: str) -> Obj:
    """A request body of a fixed type (Scale, Binding, TokenRequest), checked and copied."""
    if not isinstance(body, dict):
        raise errors.bad_request(f"the body of the request must be a {kind} object")
    _check_type(body, api_version, kind)
    body = clone(body)
    if not isinstance(body.setdefault("metadata", {}) or {}, dict):
        raise errors.bad_request("metadata must be an object")
    body["metadata"] = body["metadata"] or {}
    return body


def _check_type(body: Obj, api_version: str, kind: str) -> None:
    got_version, got_kind = body.get("apiVersion"), body.get("kind")
    if got_version and got_version != api_version:
        raise errors.bad_request(f"the API version in the data ({got_version}) does not match the expected "
                                 f"API version ({api_version})")
    if got_kind and got_kind != kind:
        version = api_version.rpartition("/")[2]
        raise errors.bad_request(f'{got_kind} in version "{version}" cannot be handled as a {kind}: '
                                 f"the object provided is unrecognized (must be of type {kind})")


def _prepare(res: Resource, body: Any, namespace: str) -> Obj:
    """A copy of a request body for ``res``: type checked, apiVersion/kind filled in,
    namespace taken from the URL (400 if the body names another one)."""
    body = _prepare_typed(body, res.api_version, res.kind)
    obj = {"apiVersion": res.api_version, "kind": res.kind, **body}  # in the order the real server writes them
    obj["apiVersion"], obj["kind"] = res.api_version, res.kind
    meta = obj["metadata"]
    if res.namespaced:
        if meta.get("namespace") and meta["namespace"] != namespace:
            raise errors.bad_request("the namespace of the provided object does not match the namespace sent on the request")
        meta["namespace"] = namespace
    else:
        meta.pop("namespace", None)
    gotypes.check(res, obj)
    _check_metadata(res, obj)
    return obj


def _check_size(res: Resource, obj: Obj) -> None:
    """413 for an object larger than the store takes (etcd's request limit)."""
    size = len(json.dumps(obj, separators=(",", ":")))
    if size > MAX_STORED_BYTES:
        raise ApiError(413, "RequestEntityTooLarge", f"Request entity too large: etcdserver: request is too large "
                       f"({res.kind} {(obj.get('metadata') or {}).get('name')!r} is {size} bytes; "
                       f"limit is {MAX_STORED_BYTES})")


def _check_metadata(res: Resource, obj: Obj) -> None:
    """The metadata shapes the core itself relies on (selectors, finalizers)."""
    meta, name = obj["metadata"], str(obj["metadata"].get("name") or "")
    causes = []
    for field in ("labels", "annotations"):
        value = meta.get(field)
        if value is not None and (not isinstance(value, dict)
                                  or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items())):
            causes.append(("FieldValueInvalid", f"metadata.{field}", "Invalid value: must be a map of strings"))
    finalizers = meta.get("finalizers")
    if finalizers is not None and (not isinstance(finalizers, list) or not all(isinstance(f, str) for f in finalizers)):
        causes.append(("FieldValueInvalid", "metadata.finalizers", "Invalid value: must be a list of strings"))
    for field in ("name", "generateName", "namespace"):
        if meta.get(field) is not None and not isinstance(meta[field], str):
            causes.append(("FieldValueInvalid", f"metadata.{field}", "Invalid value: must be a string"))
    if causes:
        raise errors.invalid(res.group, res.kind, name, causes)


def _check_fields(res: Resource, obj: Obj, current: Obj | None, validation: str | None,
                  warnings: list[str] | None) -> None:
    """fieldValidation: Strict refuses unknown fields, Warn reports them. Fields the
    stored object already had are not the request's fault."""
    if validation not in ("Strict", "Warn"):
        return
    unknown = schema.unknown_fields(res, obj)
    if current is not None and unknown:
        before = set(schema.unknown_fields(res, current))
        unknown = [f for f in unknown if f not in before]
    if not unknown:
        return
    if validation == "Strict":
        raise errors.bad_request(f'{res.kind} in version "{res.version}" cannot be handled as a {res.kind}: '
                                 "strict decoding error: " + ", ".join(f'unknown field "{f}"' for f in unknown))
    if warnings is not None:
        warnings.extend(f'unknown field "{f}"' for f in unknown)


def _check_preconditions(res: Resource, current: Obj, preconditions: Obj | None) -> None:
    if not preconditions:
        return
    name, meta = current["metadata"]["name"], current["metadata"]
    uid, rv = preconditions.get("uid"), preconditions.get("resourceVersion")
    if uid and uid != meta.get("uid"):
        raise errors.conflict(res.group, res.plural, name, f"Precondition failed: UID in precondition: {uid}, "
                              f"UID in object meta: {meta.get('uid')}")
    if rv and str(rv) != _rv(current):
        raise errors.conflict(res.group, res.plural, name, f"Precondition failed: ResourceVersion in precondition: "
                              f"{rv}, ResourceVersion in object meta: {_rv(current)}")
