"""A pod's volumes, made as directories under ``<pod dir>/volumes/<name>``.

secret, configMap, downwardAPI, projected (serviceAccountToken via the TokenRequest
API, configMap, secret, downwardAPI) and emptyDir. Containers see them through bind
mounts made inside their own mount namespaces. File modes follow ``defaultMode`` /
``items[].mode`` (default 0644). Files are written by the kubelet's atomic writer
(``..data`` symlink swap, :mod:`.atomicwriter`), so :meth:`VolumeBuilder.refresh`
can bring a running pod's volumes up to date when a Secret or ConfigMap changes.
"""

from __future__ import annotations

import asyncio
import base64
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..contracts import ApiClient, Obj
from ..errors import ApiError
from .atomicwriter import PayloadError, write_atomic
from .envvars import EnvError, field_ref_value

DEFAULT_MODE = 0o644
TOKEN_EXPIRATION = 3607
_MAX_TOKEN_AGE = 24 * 3600


class VolumeError(Exception):
    """A volume cannot be set up; the pod stays ContainerCreating with this message
    (the kubelet's ``FailedMount`` event)."""


def _select(data: dict[str, bytes], items: list[Obj] | None, default_mode: int, what: str,
            optional: bool) -> list[tuple[str, bytes, int]]:
    """(relative path, content, mode) for every file, honouring ``items``."""
    if not items:
        return [(key, value, default_mode) for key, value in data.items()]
    files = []
    for item in items:
        if item["key"] not in data:
            if optional:
                continue
            raise VolumeError(f'configmap references non-existent config key: {item["key"]}'
                              if what == "configmap" else f'references non-existent secret key: {item["key"]}')
        files.append((item["path"], data[item["key"]], item.get("mode", default_mode)))
    return files


def install_files(target: Path, files: list[tuple[str, bytes, int]]) -> bool:
    """Makes the volume directory hold ``files`` (atomically); False if it already did.
    The directory is never replaced: containers bind-mount it, and see the swap."""
    try:
        return write_atomic(target, files)
    except PayloadError as err:
        raise VolumeError(str(err)) from None


def volume_refs(volume: Obj) -> set[tuple[str, str]]:
    """The ("secrets" | "configmaps", name) objects a volume's files come from."""
    refs = set()
    if "secret" in volume:
        refs.add(("secrets", volume["secret"].get("secretName", "")))
    if "configMap" in volume:
        refs.add(("configmaps", volume["configMap"].get("name", "")))
    for source in (volume.get("projected") or {}).get("sources") or []:
        if "secret" in source:
            refs.add(("secrets", source["secret"].get("name", "")))
        if "configMap" in source:
            refs.add(("configmaps", source["configMap"].get("name", "")))
    return refs


def configmap_data(cm: Obj) -> dict[str, bytes]:
    data = {k: v.encode() for k, v in (cm.get("data") or {}).items()}
    data.update({k: base64.b64decode(v) for k, v in (cm.get("binaryData") or {}).items()})
    return data


def secret_data(secret: Obj) -> dict[str, bytes]:
    return {k: base64.b64decode(v) for k, v in (secret.get("data") or {}).items()}


def downward_files(items: list[Obj], pod: Obj, default_mode: int, pod_ip: str | None,
                   host_ip: str | None) -> list[tuple[str, bytes, int]]:
    files = []
    for item in items:
        if not item.get("fieldRef"):
            raise VolumeError("downwardAPI: only fieldRef items are supported by the lab kubelet")
        try:
            value = field_ref_value(item["fieldRef"]["fieldPath"], pod, pod_ip, host_ip)
        except EnvError as err:
            raise VolumeError(str(err)) from None
        files.append((item["path"], value.encode(), item.get("mode", default_mode)))
    return files


@dataclass(frozen=True)
class FetchedToken:
    token: str
    fetched: float  # unix time
    ttl: int  # the TokenRequest's expirationSeconds

    def due(self) -> float:
        """pkg/kubelet/token's requiresRefresh: at 80% of the lifetime, at most 24 h."""
        return self.fetched + min(0.8 * self.ttl, _MAX_TOKEN_AGE)


class VolumeBuilder:
    """Fetches what the pod's volumes need from the API and writes their files."""

    def __init__(self, client: ApiClient, pod: Obj, pod_dir: Path, pod_ip: str | None, host_ip: str | None):
        self.client = client
        self.pod = pod
        self.namespace = pod["metadata"]["namespace"]
        self.root = pod_dir / "volumes"
        self.pod_ip = pod_ip
        self.host_ip = host_ip
        # A refresh keeps the pod's bound token rather than asking for a new one: the
        # kubelet's token manager renews it at 80% of its lifetime (or after 24 h).
        self._tokens: dict[str, FetchedToken] = {}  # "<audience>/<expirationSeconds>" -> token

    async def _get(self, key: str, name: str, optional: bool, label: str) -> Obj | None:
        try:
            return await self.client.get(key, self.namespace, name)
        except ApiError as err:
            if err.code == 404:
                if optional:
                    return None
                raise VolumeError(f'{label} "{name}" not found') from None
            raise

    async def build_all(self) -> dict[str, str]:
        """Volume name -> host directory, for every volume of the pod."""
        paths = {}
        for volume in self.pod["spec"].get("volumes") or []:
            paths[volume["name"]] = str(await self.build(volume))
        return paths

    async def refresh(self, changed: tuple[str, str] | None = None) -> list[str]:
        """Rewrites the volumes whose files come from ``changed`` (kind, name), or from
        any Secret or ConfigMap; returns the names of those whose files changed. A volume
        whose object is gone or invalid keeps its files, as on a real node."""
        updated = []
        for volume in self.pod["spec"].get("volumes") or []:
            refs = volume_refs(volume)
            if not refs or (changed is not None and changed not in refs):
                continue
            files = await self._files(volume)
            if await asyncio.to_thread(install_files, self.root / volume["name"], files):
                updated.append(volume["name"])
        return updated

    async def build(self, volume: Obj) -> Path:
        target = self.root / volume["name"]
        if "emptyDir" in volume:
            target.mkdir(parents=True, exist_ok=True)
            os.chmod(target, 0o777)  # as the kubelet makes it: any container user may write
            return target
        files = await self._files(volume)
        # file creation costs the kernel ~0.5 ms each here: keep it off the event loop
        await asyncio.to_thread(install_files, target, files)
        return target

    async def _files(self, volume: Obj) -> list[tuple[str, bytes, int]]:
        if "secret" in volume:
            src = volume["secret"]
            return await self._secret_files(src.get("secretName", ""), src.get("items"),
                                            src.get("defaultMode", DEFAULT_MODE), bool(src.get("optional")))
        if "configMap" in volume:
            src = volume["configMap"]
            return await self._configmap_files(src.get("name", ""), src.get("items"),
                                               src.get("defaultMode", DEFAULT_MODE), bool(src.get("optional")))
        if "downwardAPI" in volume:
            src = volume["downwardAPI"]
            return downward_files(src.get("items") or [], self.pod, src.get("defaultMode", DEFAULT_MODE),
                                  self.pod_ip, self.host_ip)
        if "projected" in volume:
            return await self._projected(volume["projected"])
        kinds = [k for k in volume if k != "name"]
        raise VolumeError(f'volume "{volume["name"]}": {", ".join(kinds) or "this"} volumes are not '
                          "supported by the k8snet lab (emptyDir, secret, configMap, downwardAPI, projected are)")

    async def _secret_files(self, name: str, items: Any, mode: int, optional: bool) -> list[tuple[str, bytes, int]]:
        secret = await self._get("secrets", name, optional, "secret")
        return [] if secret is None else _select(secret_data(secret), items, mode, "secret", optional)

    async def _configmap_files(self, name: str, items: Any, mode: int,
                               optional: bool) -> list[tuple[str, bytes, int]]:
        cm = await self._get("configmaps", name, optional, "configmap")
        return [] if cm is None else _select(configmap_data(cm), items, mode, "configmap", optional)

    async def _projected(self, src: Obj) -> list[tuple[str, bytes, int]]:
        mode = src.get("defaultMode", DEFAULT_MODE)
        files: list[tuple[str, bytes, int]] = []
        for source in src.get("sources") or []:
            if "serviceAccountToken" in source:
                sat = source["serviceAccountToken"]
                which = f'{sat.get("audience", "")}/{sat.get("expirationSeconds", "")}'
                fetched = self._tokens.get(which)
                if fetched is None or fetched.due() <= time.time():
                    fetched = self._tokens[which] = await self._token(sat)
                files.append((sat["path"], fetched.token.encode(), mode))
            elif "configMap" in source:
                s = source["configMap"]
                files += await self._configmap_files(s.get("name", ""), s.get("items"), mode, bool(s.get("optional")))
            elif "secret" in source:
                s = source["secret"]
                files += await self._secret_files(s.get("name", ""), s.get("items"), mode, bool(s.get("optional")))
            elif "downwardAPI" in source:
                files += downward_files(source["downwardAPI"].get("items") or [], self.pod, mode,
                                        self.pod_ip, self.host_ip)
            else:
                raise VolumeError(f"projected source {sorted(source)} is not supported by the k8snet lab")
        return files

    def next_token_refresh(self) -> float | None:
        """When the first of the pod's tokens is due for renewal (unix time), if any."""
        return min((t.due() for t in self._tokens.values()), default=None)

    async def refresh_tokens(self) -> list[str]:
        """Rewrites the projected volumes whose tokens are due; returns their names."""
        updated = []
        for volume in self.pod["spec"].get("volumes") or []:
            sources = (volume.get("projected") or {}).get("sources") or []
            if any("serviceAccountToken" in s for s in sources):
                files = await self._files(volume)
                if await asyncio.to_thread(install_files, self.root / volume["name"], files):
                    updated.append(volume["name"])
        return updated

    async def _token(self, sat: Obj) -> FetchedToken:
        """A bound service-account token from the TokenRequest API, as the kubelet asks for it."""
        meta = self.pod["metadata"]
        spec: Obj = {
            "expirationSeconds": sat.get("expirationSeconds", TOKEN_EXPIRATION),
            "boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": meta["name"], "uid": meta.get("uid", "")},
        }
        if sat.get("audience"):
            spec["audiences"] = [sat["audience"]]
        body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec}
        sa = self.pod["spec"].get("serviceAccountName") or "default"
        try:
            result = await self.client.create("serviceaccounts", self.namespace, body, subresource="token", name=sa)
        except ApiError as err:
            raise VolumeError(f'failed to fetch token: {err.message}') from None
        return FetchedToken(result["status"]["token"], time.time(), int(spec["expirationSeconds"]))
