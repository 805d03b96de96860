"""The seams between the lab's parts, as typing Protocols.

Controllers, kubelets and kube-proxy talk to the API server only through
:class:`ApiClient` (list + watch + writes with the API's full semantics: defaults,
validation, resourceVersion conflicts), never through private shortcuts into each
other. The API server reaches a node's kubelet through :class:`PodRuntime` to
serve ``pods/log`` and ``pods/exec``.

Resources are named by :attr:`k8snet.lab.api.resources.Resource.key`:
``"pods"``, ``"services"``, ``"apps/deployments"``, ``"discovery.k8s.io/endpointslices"``.
Objects are plain JSON-shaped dicts, exactly as the REST API returns them.
"""

from __future__ import annotations

import asyncio
from typing import Any, AsyncIterator, Literal, Protocol

Obj = dict[str, Any]
PatchType = Literal["merge", "strategic", "json", "apply"]


class ApiClient(Protocol):
    async def get(self, key: str, namespace: str | None, name: str, *, subresource: str | None = None) -> Obj:
        """The object, or ApiError 404."""

    async def list(self, key: str, namespace: str | None = None, *, label_selector: str | None = None,
                   field_selector: str | None = None) -> Obj:
        """A ``<Kind>List`` whose ``metadata.resourceVersion`` is the store's current revision."""

    def watch(self, key: str, namespace: str | None = None, *, resource_version: str | None = None,
              label_selector: str | None = None, field_selector: str | None = None) -> AsyncIterator[Obj]:
        """Events ``{"type": "ADDED"|"MODIFIED"|"DELETED"|"ERROR", "object": obj}`` after
        ``resource_version`` (or from now when None) until the caller stops iterating.
        A version older than the store's history raises ApiError 410."""

    async def create(self, key: str, namespace: str | None, body: Obj, *, subresource: str | None = None,
                     name: str | None = None) -> Obj: ...

    async def update(self, key: str, namespace: str | None, name: str, body: Obj, *,
                     subresource: str | None = None) -> Obj:
        """Replace; ``metadata.resourceVersion`` in ``body``, when set, must match (409 Conflict)."""

    async def patch(self, key: str, namespace: str | None, name: str, patch: Any, *,
                    patch_type: PatchType = "merge", subresource: str | None = None,
                    field_manager: str | None = None, force: bool = False) -> Obj: ...

    async def delete(self, key: str, namespace: str | None, name: str, *,
                     grace_period_seconds: int | None = None, propagation_policy: str | None = None,
                     preconditions: Obj | None = None) -> Obj: ...


class ExecProcess(Protocol):
    """A process started in a container; asyncio.subprocess.Process satisfies it."""

    stdin: asyncio.StreamWriter | None
    stdout: asyncio.StreamReader | None
    stderr: asyncio.StreamReader | None

    async def wait(self) -> int: ...


class PodRuntime(Protocol):
    """What a node's kubelet offers the API server for ``pods/log`` and ``pods/exec``."""

    def logs(self, namespace: str, pod: str, container: str, *, follow: bool = False,
             tail_lines: int | None = None, timestamps: bool = False, previous: bool = False,
             limit_bytes: int | None = None) -> AsyncIterator[bytes]:
        """The container's log (stdout and stderr, interleaved as written). With
        follow, keeps yielding until the container ends or the caller stops."""

    async def exec(self, namespace: str, pod: str, container: str, command: list[str], *,
                   stdin: bool, tty: bool) -> ExecProcess:
        """Starts ``command`` inside the running container (its network, mount, UTS and
        PID namespaces, its environment). Raises ApiError 400 if it is not running."""
