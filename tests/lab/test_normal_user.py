"""The normal-user flow: ``sudo k8snet lab up`` merges the lab's context
``k8snet-<lab>`` into the learner's ``~/.kube/config``; the learner then uses kubectl
and ``k8snet.connect()`` through it without root; ``lab down`` takes out exactly the
lab's entries.

The learner is uid 65534 (``setpriv --reuid=65534 --regid=65534 --clear-groups``)
with a temporary home. The checkout and its .venv may sit below a folder that uid
cannot traverse (/root is 0700; CI clones into a ``mktemp -d`` folder). The learner's
commands then run in a private mount namespace (``unshare --mount``) where a tmpfs
(0755) covers the topmost such folder and the checkout is bind-mounted back at its own
path, so every absolute path (venv shebangs, the editable install) stays valid and no
permission on the host changes.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from k8snet.lab import kubeconfig, lifecycle
from k8snet.lab.config import LabConfig
from k8snet.lab.kubeconfig import UserKubeconfig

LEARNER = 65534
REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent  # not resolved: .venv/bin, where kubectl and the venv's python are
THEIR_OWN = {  # the kubeconfig the learner had before: another cluster, and it is the current one
    "apiVersion": "v1", "kind": "Config", "preferences": {}, "current-context": "kind-kind",
    "clusters": [{"name": "kind-kind", "cluster": {"server": "https://127.0.0.1:6443"}}],
    "users": [{"name": "kind-kind", "user": {"token": "not-a-real-token"}}],
    "contexts": [{"name": "kind-kind", "context": {"cluster": "kind-kind", "user": "kind-kind"}}],
}


def blocked_ancestor(path: Path, uid: int = LEARNER, gid: int = LEARNER) -> Path | None:
    """The topmost folder on the way to ``path`` (itself included) that uid cannot enter."""
    for folder in [*reversed(path.parents), path]:
        st = folder.stat()
        bit = stat.S_IXUSR if st.st_uid == uid else stat.S_IXGRP if st.st_gid == gid else stat.S_IXOTH
        if not st.st_mode & bit:
            return folder
    return None


def exposed_paths() -> list[Path]:
    """What the learner's commands need to reach: the checkout and the venv (when outside it)."""
    paths = [REPO, Path(sys.prefix)]
    return [p for p in paths if not any(p != q and p.is_relative_to(q) for q in paths)]


def reachability_script(stash_of: dict[Path, Path]) -> str:
    """Shell commands (run in a private mount namespace) that make each exposed path
    reachable for the learner at its own absolute path."""
    lines = ["set -eu", "umask 022"]
    covers = []
    for path, stash in stash_of.items():
        top = blocked_ancestor(path)
        assert top is not None
        lines.append(f"mount --rbind {shlex.quote(str(path))} {shlex.quote(str(stash))}")
        covers.append((top, path, stash))
    for top in sorted({top for top, _, _ in covers}, key=lambda p: len(p.parts)):
        lines += [f"mkdir -p {shlex.quote(str(top))}", f"mount -t tmpfs -o mode=0755 k8snet-learner {shlex.quote(str(top))}"]
    for _top, path, stash in covers:
        q_path, q_stash = shlex.quote(str(path)), shlex.quote(str(stash))
        lines.append(f"mkdir -p {q_path}")
        if blocked_ancestor(path) == path:  # the folder itself is closed: bring back its entries one by one
            lines.append(f'for e in {q_stash}/* {q_stash}/.[!.]*; do [ -e "$e" ] || continue; n=$(basename "$e"); '
                         f'if [ -d "$e" ]; then mkdir {q_path}/"$n"; else touch {q_path}/"$n"; fi; '
                         f'mount --rbind "$e" {q_path}/"$n"; done')
        else:
            lines.append(f"mount --rbind {q_stash} {q_path}")
    return "\n".join(lines)


@dataclass
class Learner:
    """A normal user with a home of their own, and the lab ``up`` merged for them."""

    home: Path
    lab: lifecycle.LabStatus
    state_root: Path

    @property
    def kubeconfig(self) -> Path:
        return self.home / ".kube" / "config"

    def env(self) -> dict[str, str]:
        return {"HOME": str(self.home), "USER": "nobody", "LOGNAME": "nobody", "LANG": "C.UTF-8",
                "PATH": f"{VENV_BIN}:/usr/bin:/bin", "K8SNET_LAB": self.lab.name,
                # the real state root: the learner cannot read it, which is the point
                "K8SNET_STATE_ROOT": str(self.state_root)}

    def run(self, *argv: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """``argv`` as uid/gid 65534 without supplementary groups, no capabilities."""
        become = ["setpriv", f"--reuid={LEARNER}", f"--regid={LEARNER}", "--clear-groups", "--",
                  "env", "-i", *(f"{k}={v}" for k, v in self.env().items()), *argv]
        blocked = [p for p in exposed_paths() if blocked_ancestor(p) is not None]
        if not blocked:
            return subprocess.run(become, capture_output=True, text=True, timeout=timeout, cwd="/")
        stashes = {p: Path(tempfile.mkdtemp(prefix="k8snet-stash-")) for p in blocked}
        try:
            for stash in stashes.values():
                assert not any(stash.is_relative_to(blocked_ancestor(p)) for p in blocked)
            script = reachability_script(stashes) + '\nexec "$@"'
            return subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh",
                                   *become], capture_output=True, text=True, timeout=timeout, cwd="/")
        finally:
            for stash in stashes.values():
                stash.rmdir()  # the bind mount went with the namespace


@pytest.fixture(scope="module")
def learner(state_root: Path) -> Iterator[Learner]:
    home = Path(tempfile.mkdtemp(prefix="k8snet-learner-", dir="/tmp"))
    os.chown(home, LEARNER, LEARNER)
    kube = home / ".kube"
    kube.mkdir(mode=0o700)
    os.chown(kube, LEARNER, LEARNER)
    (kube / "config").write_text(yaml.safe_dump(THEIR_OWN, sort_keys=False))
    os.chmod(kube / "config", 0o600)
    os.chown(kube / "config", LEARNER, LEARNER)
    name = f"u{os.getpid() % 100000}"
    try:
        st = lifecycle.up(LabConfig(name=name, nodes=2), user_kubeconfig=UserKubeconfig(home, LEARNER, LEARNER))
        yield Learner(home, st, state_root)
    finally:
        with contextlib.suppress(lifecycle.LabError):
            lifecycle.down(name)
        shutil.rmtree(home)


def _doc(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def test_up_merged_the_labs_context_into_the_learners_kubeconfig(learner: Learner):
    st = learner.kubeconfig.lstat()
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (LEARNER, LEARNER, 0o600)
    doc = _doc(learner.kubeconfig)
    ctx = learner.lab.context
    assert [c["name"] for c in doc["contexts"]] == ["kind-kind", ctx]
    assert [c["name"] for c in doc["clusters"]] == ["kind-kind", ctx]
    assert [u["name"] for u in doc["users"]] == ["kind-kind", f"{ctx}-admin"]
    assert doc["current-context"] == "kind-kind", "an existing current context is kept"
    lab_doc = _doc(learner.lab.kubeconfig)
    for section, _ in kubeconfig.SECTIONS:
        assert doc[section][1] == lab_doc[section][0], "the entries as the lab's own kubeconfig has them"
    records = kubeconfig.read_records(learner.state_root / learner.lab.name / lifecycle.MERGED_KUBECONFIGS)
    assert UserKubeconfig(learner.home, LEARNER, LEARNER) in [r.target for r in records]


def test_kubectl_works_for_the_learner_without_root(learner: Learner):
    who = learner.run("sh", "-c", f"id -u; cat {shlex.quote(str(learner.lab.kubeconfig))}")
    assert who.stdout.split()[0] == str(LEARNER) and "Permission denied" in who.stderr, \
        "the learner is not root and cannot read the lab's state folder"
    out = learner.run(str(VENV_BIN / "kubectl"), "--context", learner.lab.context, "get", "pods", "-A")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "kube-system" in out.stdout and "coredns" in out.stdout and "Running" in out.stdout


SNIPPET = """
import json, k8snet
cluster = k8snet.connect()
info = cluster.info()
print(json.dumps({"nodes": list(cluster.nodes()["name"]), "proxy_mode": info.proxy_mode, "kind": info.kind,
                  "context": cluster.context, "lab": info.lab.name, "pool": info.lab.loadbalancer_pool[:1],
                  "lab_status_visible": cluster.lab is not None}))
"""


def test_connect_works_for_the_learner_without_root(learner: Learner):
    out = learner.run(str(VENV_BIN / "python"), "-c", SNIPPET)
    assert out.returncode == 0, out.stdout + out.stderr
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    config = lifecycle.load_config(learner.lab.name)
    assert seen == {"nodes": config.node_names, "proxy_mode": config.proxy_mode, "kind": "k8snet-lab",
                    "context": learner.lab.context, "lab": learner.lab.name, "pool": config.loadbalancer_pool[:1],
                    "lab_status_visible": False}


def test_connect_says_what_to_do_when_neither_works(learner: Learner):
    out = learner.run(str(VENV_BIN / "python"), "-c", "import k8snet; k8snet.connect(lab='nosuchlab')")
    last = out.stderr.strip().splitlines()[-1]
    assert out.returncode != 0 and "LabError" in last
    assert "sudo k8snet lab up --name nosuchlab" in last and "k8snet-nosuchlab" in last, last


def test_down_after_a_crash_removes_exactly_the_labs_entries(learner: Learner):
    # the supervisor dies; down (root, no SUDO_USER) still knows the file from the state folder
    os.kill(learner.lab.pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while lifecycle.status(learner.lab.name).phase != "Crashed" and time.monotonic() < deadline:
        time.sleep(0.05)
    env = {k: v for k, v in os.environ.items() if k != "SUDO_USER"}
    down = subprocess.run([sys.executable, "-m", "k8snet", "lab", "down", "--name", learner.lab.name],
                          capture_output=True, text=True, timeout=120, env=env)
    assert down.returncode == 0, down.stdout + down.stderr
    assert _doc(learner.kubeconfig) == THEIR_OWN
    st = learner.kubeconfig.lstat()
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (LEARNER, LEARNER, 0o600)


def test_jupyter_script_refuses_to_run_jupyter_as_root():
    env = {k: v for k, v in os.environ.items() if k != "SUDO_USER"}
    out = subprocess.run(["bash", str(REPO / "scripts" / "jupyter.sh")], capture_output=True, text=True, env=env,
                         timeout=30)
    assert out.returncode != 0 and out.stdout == ""
    assert len(out.stderr.strip().splitlines()) == 1 and "sudo" in out.stderr, out.stderr
