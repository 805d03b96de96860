"""The least discovery kubectl needs before it talks to a pod's subresource: /version
and the legacy /api groups with ``pods`` and the given subresources. The unit tests
that drive real kubectl against a stand-in server (exec, attach, log, port-forward)
add these routes, then their own."""

from __future__ import annotations

from typing import Any

from aiohttp import web

POD_RESOURCE = {"name": "pods", "singularName": "pod", "namespaced": True, "kind": "Pod", "shortNames": ["po"],
                "verbs": ["get", "list"]}


def add_discovery(app: web.Application, subresources: list[dict[str, Any]]) -> None:
    async def version(_: web.Request) -> web.StreamResponse:
        return web.json_response({"major": "1", "minor": "37", "gitVersion": "v1.37.1", "platform": "linux/amd64"})

    async def api(_: web.Request) -> web.StreamResponse:
        return web.json_response({"kind": "APIVersions", "versions": ["v1"],
                                  "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "x"}]})

    async def apis(_: web.Request) -> web.StreamResponse:
        return web.json_response({"kind": "APIGroupList", "apiVersion": "v1", "groups": []})

    async def api_v1(_: web.Request) -> web.StreamResponse:
        return web.json_response({"kind": "APIResourceList", "groupVersion": "v1",
                                  "resources": [POD_RESOURCE, *subresources]})

    for path, handler in (("/version", version), ("/api", api), ("/apis", apis), ("/api/v1", api_v1)):
        app.router.add_get(path, handler)
