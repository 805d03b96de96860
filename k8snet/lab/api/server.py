"""The lab's API server: aiohttp over HTTPS in front of :class:`~k8snet.lab.api.core.ApiCore`.

This module is the HTTP layer only: authentication, URL routing, request decoding
(JSON, YAML, k8s protobuf, the four patch types), response shapes (objects, lists,
Tables, chunked watch streams, Status errors) and the hand-off of pods/log,
pods/exec and pods/attach to :mod:`~k8snet.lab.api.streaming`. The semantics live
in the core, which the in-process controllers call directly.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
from dataclasses import dataclass
from typing import Any, Callable

from aiohttp import web

from .. import errors
from ..contracts import Obj, PodRuntime
from ..errors import ApiError
from ..pki import Pki
from . import (
    auth,
    bodyworkers,
    decoding,
    discovery,
    httperrors,
    impersonation,
    listoptions,
    openapi,
    openapiv2,
    pathnames,
    portforward,
    protobuf,
    requestinfo,
    reviews,
    streaming,
    tableview,
)
from .authorizer import Authorizer, RbacSource
from .core import ApiCore, not_served
from .escalation import EscalationCheck
from .identity import UserInfo
from .noderestriction import NodeRestriction
from .resources import GROUP_VERSIONS, REVIEW_KEYS, Resource, find

log = logging.getLogger(__name__)

JSON = "application/json"
# A body that has not fully arrived by then holds a connection for nothing (the real
# server's request timeout is 60 s; the lab is local, so a far shorter wait is generous).
BODY_TIMEOUT = 10.0
_WATCH_TIMEOUT = 1800  # the real server's default is 30-60 min (minRequestTimeout)
_PATCH_TYPES = {
    "application/json-patch+json": "json",
    "application/merge-patch+json": "merge",
    "application/strategic-merge-patch+json": "strategic",
    "application/apply-patch+yaml": "apply",
}
_YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml")
_JSON_TYPES = ("", JSON, "application/octet-stream", "*/*")
_PROTOBUF = "application/vnd.kubernetes.protobuf"
_METHOD_VERBS = {"GET": ("get", "list", "watch"), "POST": ("create",), "PUT": ("update",), "PATCH": ("patch",),
                 "DELETE": ("delete", "deletecollection")}
USER = web.RequestKey("user", UserInfo)  # who the request acts as (after impersonation)
_DEPRECATION = web.RequestKey("deprecation", str)  # the warning of a deprecated resource the request is about


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def _warning_header(text: str) -> tuple[str, str]:
    """An RFC 7234 warning as the API server sends it (code 299, agent "-")."""
    return "Warning", '299 - "' + text.replace('"', '\\"') + '"'


def _response(obj: Any, status: int = 200, warnings: list[str] | None = None,
              content_type: str = JSON) -> web.Response:
    headers = [_warning_header(w) for w in warnings or []]
    headers.append(("Content-Type", content_type))
    # apimachinery's JSON serializer is a json.Encoder: every body ends with a newline
    return web.Response(body=_dumps(obj) + b"\n", status=status, headers=headers)


def _status_response(err: ApiError) -> web.Response:
    return _response(err.status(), status=err.code)


def _flag(value: str | None) -> bool:
    return (value or "").lower() in ("true", "1")


def wants_table(accept: str) -> bool:
    """Whether an Accept header asks for ``as=Table`` (kubectl get)."""
    for part in accept.split(","):
        params = {p.strip() for p in part.split(";")[1:]}
        if "as=Table" in params and "g=meta.k8s.io" in params:
            return True
    return False


@dataclass(frozen=True)
class Target:
    """What a REST path names: a resource, maybe a namespace, object and subresource."""

    res: Resource
    namespace: str | None
    name: str | None = None
    subresource: str | None = None


def parse_rest_path(group: str, version: str, rest: list[str]) -> Target:
    """``[namespaces/<ns>/]<plural>[/<name>[/<subresource>]]`` under a group-version."""
    namespace = None
    # namespaces/<name>/status|finalize is the Namespace's own subresource, not a collection.
    if len(rest) >= 3 and rest[0] == "namespaces" and not (len(rest) == 3 and rest[2] in ("status", "finalize")):
        namespace, rest = rest[1], rest[2:]
    if not rest or len(rest) > 3:
        raise not_served()
    res = find(group, rest[0])
    if res is None or res.version != version:
        raise not_served()
    if namespace is not None and not res.namespaced:
        raise not_served()
    if namespace is None and res.namespaced and len(rest) > 1:
        raise not_served()  # /api/v1/pods/<name> does not exist; only the all-namespaces list does
    name = rest[1] if len(rest) > 1 else None
    if namespace is not None:
        pathnames.check_name(namespace, "Namespace")
    if name is not None:
        pathnames.check_name(name)
    sub = rest[2] if len(rest) > 2 else None
    if sub is not None and res.subresource(sub) is None:
        raise not_served()
    return Target(res, namespace, name, sub)


class ApiServer:
    def __init__(self, core: ApiCore, pki: Pki, runtimes: Callable[[str], PodRuntime | None],
                 body_timeout: float = BODY_TIMEOUT, authorizer: Authorizer | None = None,
                 decoder: bodyworkers.BodyDecoder | None = None):
        self.core = core
        self.pki = pki
        self.authorizer = authorizer or Authorizer(RbacSource(core.store.objects, core.store.generation, core.store.texts))
        # The checks of writes that need the request's user and the authorizer:
        # RBAC's escalation prevention and the NodeRestriction admission plugin.
        core.guards[:] = [EscalationCheck(self.authorizer, core.store.get), NodeRestriction(core.store.get)]
        self.authenticator = auth.Authenticator(core.tokens, core.tokens.issuer, core.store.get)
        self.runtimes = runtimes
        self.body_timeout = body_timeout
        # Large bodies are decoded in worker processes, so no request stalls the loop
        # the controllers, kubelets and proxies share (see bodyworkers).
        self.decoder = decoder or bodyworkers.BodyDecoder()
        self.app = web.Application(middlewares=[self._guard], client_max_size=decoding.MAX_BODY_BYTES)
        self.app.router.add_route("*", "/{path:.*}", self._route)
        self.app.on_response_prepare.append(_deprecation_warning)
        self._runner: web.AppRunner | None = None

    async def start(self, sockets: list[socket.socket]) -> None:
        """Serves TLS on already-bound listening sockets."""
        # handler_cancellation: a watch whose client went away is cancelled at once
        # instead of lingering until its next event.
        self._runner = httperrors.StatusAppRunner(self.app, handler_cancellation=True, access_log=None,
                                                  shutdown_timeout=1.0)
        await self._runner.setup()
        ssl_context = self.pki.server_ssl_context()
        for sock in sockets:
            await web.SockSite(self._runner, sock, ssl_context=ssl_context).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        await asyncio.to_thread(self.decoder.close)

    # -- middleware: authentication, authorization and errors ------------------------------
    @web.middleware
    async def _guard(self, request: web.Request, handler: Callable[..., Any]) -> web.StreamResponse:
        try:
            parts = pathnames.segments(request.raw_path)
            if not auth.is_public("/" + "/".join(parts)):
                transport = request.transport
                peercert = transport.get_extra_info("peercert") if transport is not None else None
                user = self.authenticator.authenticate(peercert, request.headers.get("Authorization"))
                if user is None:
                    raise errors.unauthorized()
                user = impersonation.impersonated(request.headers, user, self.authorizer.authorize)
                attrs = requestinfo.request_attributes(request.method, parts, request.query)
                decision = self.authorizer.authorize(user, attrs)
                if not decision.allowed:
                    raise requestinfo.denied(user, attrs, decision.reason)
                request[USER] = user
            return await handler(request)
        except ApiError as err:
            return _status_response(err)
        except web.HTTPException as exc:  # aiohttp's own refusals (413, 405 …) as Status objects too
            if exc.status < 400:
                raise
            return _status_response(httperrors.status_error(exc.status, exc.text or exc.reason))
        except (asyncio.CancelledError, ConnectionError):
            raise
        except Exception as exc:  # a bug must still answer with a Status, never a bare 500 page
            log.exception("%s %s failed", request.method, request.path_qs)
            return _status_response(ApiError(500, "InternalError", f"Internal error occurred: {exc}"))

    # -- routing ----------------------------------------------------------------------
    async def _route(self, request: web.Request) -> web.StreamResponse:
        parts = pathnames.segments(request.raw_path)
        if request.method == "GET":
            fixed = self._fixed_get(request, parts)
            if fixed is not None:
                return fixed
        if len(parts) >= 3 and parts[0] == "api" and parts[1] == "v1":
            return await self._rest(request, parse_rest_path("", "v1", parts[2:]))
        if len(parts) >= 4 and parts[0] == "apis":
            return await self._rest(request, parse_rest_path(parts[1], parts[2], parts[3:]))
        raise not_served()

    def _fixed_get(self, request: web.Request, parts: list[str]) -> web.StreamResponse | None:
        """Everything that is not a REST resource: health, version, discovery, OpenAPI."""
        path = "/" + "/".join(parts)
        accept = request.headers.get("Accept", "")
        if path in ("/healthz", "/livez", "/readyz") or path.startswith(("/healthz/", "/livez/", "/readyz/")):
            return web.Response(text="ok", content_type="text/plain")
        if path == "/version":
            return _response(self._version())
        if path == "/":
            return _response({"paths": ["/api", "/api/v1", "/apis", *[f"/apis/{g}/{v}" for g, v in _gvs()],
                                        "/healthz", "/livez", "/openapi/v3", "/readyz", "/version"]})
        if path in ("/api", "/apis"):
            if discovery.wants_aggregated(accept):
                return _response(discovery.aggregated(core=path == "/api"),
                                 content_type=discovery.AGGREGATED_CONTENT_TYPE)
            if path == "/api":
                sockname = request.transport.get_extra_info("sockname") if request.transport else None
                address = f"{sockname[0]}:{sockname[1]}" if sockname else request.host
                return _response(discovery.api_versions(address))
            return _response(discovery.api_group_list())
        if len(parts) == 2 and parts[0] == "api":
            doc = discovery.api_resource_list("", parts[1])
        elif len(parts) == 2 and parts[0] == "apis":
            doc = discovery.api_group(parts[1])
        elif len(parts) == 3 and parts[0] == "apis":
            doc = discovery.api_resource_list(parts[1], parts[2])
        elif path == "/openapi/v2":
            if openapiv2.PROTOBUF in accept:
                return web.Response(body=openapiv2.protobuf(self.core.config.kubernetes_version),
                                    content_type=openapiv2.PROTOBUF_CONTENT_TYPE)
            return web.Response(text=openapiv2.document(self.core.config.kubernetes_version), content_type=JSON)
        elif path == "/openapi/v3":
            doc = openapi.index(self.core.config.kubernetes_version)
        elif len(parts) >= 4 and parts[:2] == ["openapi", "v3"]:
            group, version = ("", parts[3]) if parts[2] == "api" else (parts[3], parts[4] if len(parts) > 4 else "")
            doc = openapi.document(group, version, self.core.config.kubernetes_version)
        else:
            return None  # a REST path, or nothing (404 from the caller)
        if doc is None:
            raise not_served()
        return _response(doc)

    def _version(self) -> Obj:
        git_version = self.core.config.kubernetes_version
        major, minor = git_version.lstrip("v").split(".")[:2]
        # Since 1.33 the server also names the version it emulates (its own) and, since
        # 1.34, the oldest it stays compatible with (one minor back, the default).
        return {"major": major, "minor": minor, "emulationMajor": major, "emulationMinor": minor,
                "minCompatibilityMajor": major, "minCompatibilityMinor": str(int(minor) - 1),
                "gitVersion": git_version, "gitCommit": "0000000000000000000000000000000000000000",
                "gitTreeState": "clean", "buildDate": "2026-09-10T00:00:00Z", "goVersion": "go1.25.1",
                "compiler": "gc", "platform": "linux/amd64"}

    async def _rest(self, request: web.Request, target: Target) -> web.StreamResponse:
        method, res = request.method, target.res
        if res.warning:
            request[_DEPRECATION] = res.warning
        if target.subresource in ("log", "exec", "attach", "portforward"):
            return await self._pod_stream(request, target)
        if not target.subresource and not set(_METHOD_VERBS.get(method, ())) & set(res.verbs):
            raise errors.method_not_allowed(f'{method} is not supported on resources of kind "{res.plural}"')
        if res.key in REVIEW_KEYS:
            if target.name is not None:
                raise not_served()
            review = reviews.answer(res.key, target.namespace, await self._body(request), request[USER],
                                    self.authorizer)
            return _response(review, status=201)
        if target.name is None:
            if method == "GET":
                return await (self._watch(request, target) if _flag(request.query.get("watch"))
                              else self._list(request, target))
            if method == "POST":
                return await self._create(request, target)
            if method == "DELETE":
                return await self._delete_collection(request, target)
        elif method == "GET":
            return await self._get(request, target)
        elif method == "POST" and target.subresource in ("binding", "token"):
            return await self._create(request, target)
        elif method == "PUT":
            return await self._update(request, target)
        elif method == "PATCH":
            return await self._patch(request, target)
        elif method == "DELETE" and target.subresource is None:
            return await self._delete(request, target)
        what = f"{res.plural}/{target.subresource}" if target.subresource else res.plural
        raise errors.method_not_allowed(f'{method} is not supported on resources of kind "{what}"')

    # -- request parsing ---------------------------------------------------------------------
    async def _read(self, request: web.Request) -> bytes:
        """The raw body: 413 beyond 3 MiB (announced or sent), 504 if it does not
        arrive in time."""
        if (request.content_length or 0) > decoding.MAX_BODY_BYTES:
            raise decoding.too_large()
        try:
            return await asyncio.wait_for(request.read(), self.body_timeout)
        except web.HTTPRequestEntityTooLarge:
            raise decoding.too_large() from None
        except TimeoutError:
            raise httperrors.body_timeout(self.body_timeout) from None

    async def _body(self, request: web.Request) -> Any:
        raw = await self._read(request)
        ctype = request.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if ctype == _PROTOBUF:
            return protobuf.decode(raw)
        if ctype in _YAML_TYPES:
            return await self.decoder.parse("yaml", raw)
        if ctype in _JSON_TYPES:
            return await self.decoder.parse("json", raw)
        raise errors.unsupported_media_type(ctype)

    @staticmethod
    def _options(request: web.Request) -> dict[str, Any]:
        """dryRun and fieldValidation, shared by every write."""
        q = request.query
        dry_run = q.getall("dryRun", [])
        if any(v != "All" for v in dry_run):
            raise errors.bad_request(f"Invalid dryRun value {dry_run}: supported values: [\"All\"]")
        validation = q.get("fieldValidation") or "Ignore"
        if validation not in ("Ignore", "Warn", "Strict"):
            raise errors.bad_request(f'fieldValidation parameter unsupported: "{validation}"; '
                                     'allowed values: "Ignore", "Warn", "Strict"')
        return {"dry_run": bool(dry_run), "field_validation": validation}

    # -- handlers ---------------------------------------------------------------------------
    async def _list(self, request: web.Request, t: Target) -> web.Response:
        q = request.query
        listoptions.check_list_options(q.get("resourceVersion"), q.get("resourceVersionMatch"),
                                       streaming.optional_bool(request, "sendInitialEvents"))
        listed = await self.core.list(t.res.key, t.namespace, label_selector=q.get("labelSelector"),
                                      field_selector=q.get("fieldSelector"))
        if wants_table(request.headers.get("Accept", "")):
            return _response(tableview.to_table(t.res, listed["items"], resource_version=listed["metadata"]["resourceVersion"],
                                             include_object=q.get("includeObject") or "Metadata"))
        return _response(listed)

    async def _get(self, request: web.Request, t: Target) -> web.Response:
        obj = await self.core.get(t.res.key, t.namespace, t.name or "", subresource=t.subresource)
        if t.subresource in (None, "status") and wants_table(request.headers.get("Accept", "")):
            return _response(tableview.to_table(t.res, [obj], resource_version=obj["metadata"].get("resourceVersion", ""),
                                             include_object=request.query.get("includeObject") or "Metadata"))
        return _response(obj)

    async def _watch(self, request: web.Request, t: Target) -> web.StreamResponse:
        q = request.query
        timeout = _int_param(q.get("timeoutSeconds"), "timeoutSeconds")
        table = wants_table(request.headers.get("Accept", ""))
        include_object = q.get("includeObject") or "Metadata"
        if table and include_object not in ("Metadata", "Object", "None"):
            raise errors.bad_request(f'unrecognized includeObject value: "{include_object}"')
        # Selectors and the version's syntax are checked here, before the 200 goes out.
        events = self.core.watch(t.res.key, t.namespace, resource_version=q.get("resourceVersion"),
                                 resource_version_match=q.get("resourceVersionMatch"),
                                 send_initial_events=streaming.optional_bool(request, "sendInitialEvents"),
                                 label_selector=q.get("labelSelector"), field_selector=q.get("fieldSelector"),
                                 allow_bookmarks=streaming.parse_bool(request, "allowWatchBookmarks"),
                                 timeout_seconds=timeout if timeout is not None else _WATCH_TIMEOUT)
        resp = web.StreamResponse(headers={"Content-Type": JSON, "Cache-Control": "no-cache, private"})
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        first = True
        try:
            async for event in events:
                if table and event["type"] in ("ADDED", "MODIFIED", "DELETED"):
                    obj = event["object"]
                    event = {"type": event["type"], "object": tableview.to_table(
                        t.res, [obj], resource_version=obj["metadata"].get("resourceVersion", ""),
                        include_object=include_object, with_headers=first)}
                    first = False
                await resp.write(_dumps(event) + b"\n")
        except ApiError as err:  # e.g. 410 Expired: an ERROR event, as the real watch reports it
            await resp.write(_dumps({"type": "ERROR", "object": err.status()}) + b"\n")
        except ConnectionError:
            return resp
        await resp.write_eof()
        return resp

    async def _create(self, request: web.Request, t: Target) -> web.Response:
        body = await self._body(request)
        warnings: list[str] = []
        opts = self._options(request)
        if t.subresource is not None:
            obj = await self.core.create(t.res.key, t.namespace, body, subresource=t.subresource, name=t.name,
                                         dry_run=opts["dry_run"], user=request[USER])
        else:
            obj = await self.core.create(t.res.key, t.namespace, body, warnings=warnings, user=request[USER], **opts)
        return _response(obj, status=201, warnings=warnings)

    async def _update(self, request: web.Request, t: Target) -> web.Response:
        body = await self._body(request)
        warnings: list[str] = []
        obj = await self.core.update(t.res.key, t.namespace, t.name or "", body, subresource=t.subresource,
                                     warnings=warnings, user=request[USER], **self._options(request))
        return _response(obj, warnings=warnings)

    async def _patch(self, request: web.Request, t: Target) -> web.Response:
        ctype = request.headers.get("Content-Type", "").split(";")[0].strip().lower()
        patch_type = _PATCH_TYPES.get(ctype)
        if patch_type is None:
            raise ApiError(415, "UnsupportedMediaType", f"the body of the request was in an unknown format - "
                           f"accepted media types include: {', '.join(_PATCH_TYPES)}")
        raw = await self._read(request)
        patch = await self.decoder.parse("apply-yaml" if patch_type == "apply" else "json", raw)
        q = request.query
        warnings: list[str] = []
        obj, created = await self.core.patch_created(
            t.res.key, t.namespace, t.name or "", patch, patch_type=patch_type, subresource=t.subresource,  # type: ignore[arg-type]
            field_manager=q.get("fieldManager"), force=_flag(q.get("force")), warnings=warnings,
            user=request[USER], **self._options(request))
        return _response(obj, status=201 if created else 200, warnings=warnings)

    async def _delete_options(self, request: web.Request) -> dict[str, Any]:
        """DeleteOptions from the body (kubectl, Python) and the query (curl)."""
        raw = await self._read(request)
        body = await self.decoder.parse("json", raw) if raw.strip() else {}
        if not isinstance(body, dict):
            raise errors.bad_request("the body of a DELETE must be a DeleteOptions object")
        q = request.query
        grace = body.get("gracePeriodSeconds", _int_param(q.get("gracePeriodSeconds"), "gracePeriodSeconds"))
        policy = body.get("propagationPolicy") or q.get("propagationPolicy")
        orphan = body.get("orphanDependents", _flag(q.get("orphanDependents")) if "orphanDependents" in q else None)
        if policy is None and orphan is not None:  # the deprecated spelling of the same choice
            policy = "Orphan" if orphan else "Background"
        dry_run = list(body.get("dryRun") or []) + q.getall("dryRun", [])
        if any(v != "All" for v in dry_run):
            raise errors.bad_request(f'Invalid dryRun value {dry_run}: supported values: ["All"]')
        preconditions = body.get("preconditions")
        if preconditions is not None and not isinstance(preconditions, dict):
            raise errors.bad_request("preconditions must be an object")
        return {"grace_period_seconds": grace, "propagation_policy": policy, "dry_run": bool(dry_run),
                "preconditions": preconditions}

    async def _delete(self, request: web.Request, t: Target) -> web.Response:
        opts = await self._delete_options(request)
        return _response(await self.core.delete(t.res.key, t.namespace, t.name or "", user=request[USER], **opts))

    async def _delete_collection(self, request: web.Request, t: Target) -> web.Response:
        opts = await self._delete_options(request)
        opts.pop("preconditions")
        q = request.query
        return _response(await self.core.delete_collection(
            t.res.key, t.namespace, label_selector=q.get("labelSelector"), field_selector=q.get("fieldSelector"),
            user=request[USER], **opts))

    async def _pod_stream(self, request: web.Request, t: Target) -> web.StreamResponse:
        """pods/log, pods/exec, pods/attach, pods/portforward: find the pod's node and hand over to its kubelet."""
        if t.name is None or request.method not in (("GET",) if t.subresource == "log" else ("GET", "POST")):
            raise errors.method_not_allowed(f'{request.method} is not supported on resources of kind '
                                            f'"pods/{t.subresource}"')
        pod = await self.core.get("pods", t.namespace, t.name)
        node = (pod.get("spec") or {}).get("nodeName")
        if not node:
            if t.subresource == "log":  # the real server streams nothing for an unscheduled pod
                return web.Response(body=b"", content_type="text/plain")
            raise errors.bad_request(f"pod {t.name} does not have a host assigned")
        runtime = self.runtimes(node)
        if runtime is None:
            raise errors.bad_request(f'pod {t.name} is on node "{node}", whose kubelet is not running')
        if t.subresource == "log":
            return await streaming.serve_log(request, runtime, pod)
        if t.subresource == "portforward":
            return await portforward.serve_port_forward(request, runtime, pod)
        return await streaming.serve_exec(request, runtime, pod)


async def _deprecation_warning(request: web.Request, response: web.StreamResponse) -> None:
    """Every answer about a deprecated resource carries its warning, errors and watch
    streams included, as the real server's deprecated-API filter adds it."""
    warning = request.get(_DEPRECATION)
    if warning:
        response.headers.add(*_warning_header(warning))


def _gvs() -> list[tuple[str, str]]:
    return [(g, v) for g, v in GROUP_VERSIONS if g]


def _int_param(value: str | None, name: str) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError:
        raise errors.bad_request(f'invalid value for {name}: "{value}"') from None
