"""Fixtures for tests that bring up a real lab cluster (root on Linux).

One lab serves the whole session (bringing one up costs seconds); each test works
in its own Kubernetes namespace. Lifecycle tests start their own labs.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Iterator

import pytest

from k8snet.lab import lifecycle
from k8snet.lab.config import LabConfig

ROOT_REASON = "the lab needs root on Linux (network namespaces); CI runs these as root"
needs_root = pytest.mark.skipif(sys.platform != "linux" or os.geteuid() != 0, reason=ROOT_REASON)
needs_kubectl = pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not on PATH")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/lab/" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(pytest.mark.lab)
            item.add_marker(needs_root)


@pytest.fixture(scope="session")
def state_root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Where labs made by tests keep their state: $K8SNET_STATE_ROOT when set (the
    test command sets a temporary one), else a temporary folder of this session —
    never the default /var/lib/k8snet of the user's own labs."""
    if os.environ.get("K8SNET_STATE_ROOT"):
        yield Path(os.environ["K8SNET_STATE_ROOT"])
        return
    root = tmp_path_factory.mktemp("labs")
    old = os.environ.get("K8SNET_STATE_ROOT")
    os.environ["K8SNET_STATE_ROOT"] = str(root)
    yield root
    if old is None:
        os.environ.pop("K8SNET_STATE_ROOT", None)
    else:
        os.environ["K8SNET_STATE_ROOT"] = old


@pytest.fixture(scope="session")
def lab(state_root: Path) -> Iterator[lifecycle.LabStatus]:
    """The lab the test command started ($K8SNET_LAB) when it is Ready, else a lab of
    this session's own, stopped at the end."""
    shared = os.environ.get("K8SNET_LAB")
    if shared and lifecycle.status(shared).phase == "Ready":
        yield lifecycle.status(shared)
        return
    name = f"t{os.getpid() % 100000}"
    try:
        yield lifecycle.up(LabConfig(name=name, nodes=2))
    finally:
        lifecycle.down(name)


@pytest.fixture(scope="session")
def kubeconfig(lab: lifecycle.LabStatus) -> str:
    assert lab.kubeconfig is not None
    return str(lab.kubeconfig)


def temporary_namespace(core) -> Iterator[str]:
    """Yields a fresh namespace's name and deletes the namespace afterwards, even when
    the test fails."""
    name = f"test-{uuid.uuid4().hex[:8]}"
    core.create_namespace({"metadata": {"name": name}})
    try:
        yield name
    finally:
        core.delete_namespace(name)


@pytest.fixture(scope="session")
def core(kubeconfig: str):
    """CoreV1Api of the session's lab (the official client, as a learner uses it)."""
    from kubernetes import client, config

    api_client = config.new_client_from_config(config_file=kubeconfig)
    yield client.CoreV1Api(api_client)
    api_client.close()


@pytest.fixture()
def namespace(kubeconfig: str) -> Iterator[str]:
    """A fresh namespace per test, deleted afterwards even when the test fails."""
    from kubernetes import client, config

    api_client = config.new_client_from_config(config_file=kubeconfig)
    try:
        yield from temporary_namespace(client.CoreV1Api(api_client))
    finally:
        api_client.close()


@pytest.fixture()
def kubectl(kubeconfig: str, namespace: str, tmp_path: Path):
    """Runs real kubectl against the lab in the test's namespace; returns stdout+stderr."""
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl is not on PATH")
    cache = tmp_path / "kube-cache"

    def run(*args: str, check: bool = True, input: str | None = None, stderr: bool = True) -> str:
        """``stderr=False``: stdout alone, for output parsed as JSON (warnings go to stderr)."""
        proc = subprocess.run(["kubectl", "--kubeconfig", kubeconfig, "--cache-dir", str(cache), "-n", namespace, *args],
                              capture_output=True, text=True, timeout=120, input=input)
        out = proc.stdout + (proc.stderr if stderr else "")
        if check and proc.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({proc.returncode}):\n{out}")
        return out

    return run


# -- both kube-proxy modes -----------------------------------------------------------

@pytest.fixture(scope="session", params=["iptables", "nftables"])
def proxy_lab(request: pytest.FixtureRequest, lab: lifecycle.LabStatus) -> Iterator[lifecycle.LabStatus]:
    """A Ready lab per kube-proxy mode: the session lab for iptables, a second lab
    (started on first use, stopped when the nftables tests are done) for nftables.
    pytest groups the tests by this parameter, so at most two labs run at once."""
    if request.param == lab.details.get("proxy_mode", "iptables"):
        yield lab
        return
    name = f"n{os.getpid() % 100000}"
    try:
        yield lifecycle.up(LabConfig(name=name, nodes=2, proxy_mode=request.param))
    finally:
        lifecycle.down(name)


@pytest.fixture()
def proxy_core(proxy_lab: lifecycle.LabStatus):
    """CoreV1Api of ``proxy_lab``."""
    from kubernetes import client, config

    api_client = config.new_client_from_config(config_file=str(proxy_lab.kubeconfig))
    yield client.CoreV1Api(api_client)
    api_client.close()


@pytest.fixture()
def proxy_namespace(proxy_core) -> Iterator[str]:
    """A fresh namespace in ``proxy_lab``, deleted afterwards even when the test fails."""
    yield from temporary_namespace(proxy_core)
