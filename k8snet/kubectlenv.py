"""kubectl in a notebook, pointed at the notebook's cluster and namespace.

The tutorial's commands read ``kubectl get pods`` — no ``--context``, no ``-n``. So a
notebook's ``!kubectl`` cells must find the cluster the notebook connected to, with the
notebook's throw-away namespace as the current one. :func:`kubectl_namespace` writes a
kubeconfig holding just that one context (cluster, user and context entries copied from
the kubeconfig the notebook connected with, the namespace set) into a private temporary
folder and points ``$KUBECONFIG`` at it for the block — the way ``kubectl config
set-context --current --namespace=…`` would, without touching the user's own file.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

#: Keys of cluster and user entries that hold file paths, relative to the kubeconfig's folder.
_PATH_KEYS = ("certificate-authority", "client-certificate", "client-key", "tokenFile")


def kubeconfig_paths(explicit: str | Path | None = None) -> list[Path]:
    """The files kubectl would read: ``explicit``, else ``$KUBECONFIG`` (a list), else ``~/.kube/config``."""
    if explicit:
        return [Path(explicit)]
    if os.environ.get("KUBECONFIG"):
        return [Path(p) for p in os.environ["KUBECONFIG"].split(os.pathsep) if p]
    return [Path.home() / ".kube" / "config"]


def _absolute_paths(entry: dict[str, Any], base: Path) -> dict[str, Any]:
    """A copy whose file paths no longer depend on the kubeconfig's folder."""
    out = dict(entry)
    for key in _PATH_KEYS:
        if isinstance(out.get(key), str) and not os.path.isabs(out[key]):
            out[key] = str(base / out[key])
    return out


def merged(paths: list[Path]) -> dict[str, Any]:
    """kubectl's merge of several kubeconfigs: the first file to name an entry wins."""
    result: dict[str, Any] = {"clusters": {}, "users": {}, "contexts": {}, "current-context": ""}
    for path in paths:
        if not path.exists():
            continue
        doc = yaml.safe_load(path.read_text()) or {}
        result["current-context"] = result["current-context"] or doc.get("current-context") or ""
        for section, inner in (("clusters", "cluster"), ("users", "user"), ("contexts", "context")):
            for item in doc.get(section) or []:
                body = item.get(inner) or {}
                if section != "contexts":
                    body = _absolute_paths(body, path.resolve().parent)
                result[section].setdefault(item["name"], body)
    return result


def single_context(doc: dict[str, Any], context: str | None, namespace: str) -> dict[str, Any]:
    """A kubeconfig with ``context`` (default: the current one) alone, its namespace set."""
    name = context or doc["current-context"]
    if name not in doc["contexts"]:
        raise ValueError(f"the kubeconfig has no context {name!r}")
    ctx = dict(doc["contexts"][name], namespace=namespace)
    return {
        "apiVersion": "v1", "kind": "Config", "preferences": {}, "current-context": name,
        "clusters": [{"name": ctx["cluster"], "cluster": doc["clusters"][ctx["cluster"]]}],
        "users": [{"name": ctx["user"], "user": doc["users"][ctx["user"]]}],
        "contexts": [{"name": name, "context": ctx}],
    }


@contextlib.contextmanager
def kubectl_namespace(namespace: str, *, kubeconfig: str | Path | None = None,
                      context: str | None = None) -> Iterator[Path]:
    """For the block, ``kubectl`` started by this process (``!kubectl`` cells) talks to
    ``context`` of ``kubeconfig`` with ``namespace`` as its current namespace. Yields the
    file; removes it and restores ``$KUBECONFIG`` afterwards."""
    doc = single_context(merged(kubeconfig_paths(kubeconfig)), context, namespace)
    folder = Path(tempfile.mkdtemp(prefix="k8snet-kubectl-"))  # 0700: the file holds credentials
    path = folder / "config"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        yaml.safe_dump(doc, f, sort_keys=False)
    before = os.environ.get("KUBECONFIG")
    os.environ["KUBECONFIG"] = str(path)
    try:
        yield path
    finally:
        if before is None:
            os.environ.pop("KUBECONFIG", None)
        else:
            os.environ["KUBECONFIG"] = before
        path.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            folder.rmdir()
