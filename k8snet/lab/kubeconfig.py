"""The kubeconfig a lab writes for kubectl and the Python client — and the lab's
context merged into the invoking user's own ``~/.kube/config``.

``sudo k8snet lab up`` runs as root but the learner runs kubectl and JupyterLab as
themselves, so ``up`` adds the lab's context ``k8snet-<lab>`` (its cluster, user and
context entries, named as in the lab's own kubeconfig) to that user's
``~/.kube/config``, and ``down`` removes exactly those entries again. That file is
the only one outside the lab's state folder the lab touches.

Writing it is done as root in a folder the user can write, so every step goes
through directory file descriptors: ``~/.kube`` and ``~/.kube/config`` are opened with
O_NOFOLLOW (a symlink there is refused, never followed), a file not owned by the
user is refused (it could be a hard link to someone else's file), and the new
content goes to a temporary file that is owned by the user and 0600 before it is
renamed over the old one.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import errno
import fcntl
import json
import os
import pwd
import stat
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

from .pki import Pki
from .privatefiles import write_private

#: the three lists of a kubeconfig, with the key each entry keeps its body under
SECTIONS = (("clusters", "cluster"), ("users", "user"), ("contexts", "context"))


class KubeconfigError(RuntimeError):
    """The user's kubeconfig cannot be changed safely; the message says why, on one line."""


def context_name(lab_name: str) -> str:
    """The name of a lab's context (and cluster) in every kubeconfig: ``k8snet-<lab>``."""
    return f"k8snet-{lab_name}"


def _b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def render(lab_name: str, server: str, pki: Pki) -> str:
    """A self-contained kubeconfig (certificates embedded), like ``kind get kubeconfig``."""
    name = context_name(lab_name)
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "preferences": {},
        "current-context": name,
        "clusters": [{"name": name, "cluster": {"server": server, "certificate-authority-data": _b64(pki.ca_cert)}}],
        "users": [{"name": f"{name}-admin", "user": {
            "client-certificate-data": _b64(pki.admin_cert),
            "client-key-data": _b64(pki.admin_key),
        }}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": f"{name}-admin", "namespace": "default"}}],
    }
    return yaml.safe_dump(doc, sort_keys=False)


def write(path: Path, text: str) -> None:
    """Writes the kubeconfig with mode 0600 from the first byte: it holds a private key."""
    write_private(path, text)


# -- merging a lab's context into another kubeconfig (pure, on dicts) -----------------

@dataclass(frozen=True)
class LabEntries:
    """The names of the entries one lab owns in a kubeconfig."""

    context: str
    cluster: str
    user: str

    def name_in(self, section: str) -> str:
        return {"clusters": self.cluster, "users": self.user, "contexts": self.context}[section]


def entries_of(lab_doc: Mapping[str, Any], context: str) -> LabEntries:
    """The context ``context`` of a lab's own kubeconfig and the cluster and user it names."""
    for entry in lab_doc.get("contexts") or []:
        if entry.get("name") == context:
            body = entry.get("context") or {}
            return LabEntries(context, str(body.get("cluster")), str(body.get("user")))
    raise KubeconfigError(f"the lab's kubeconfig has no context {context!r}")


def _entries(doc: Mapping[str, Any], section: str) -> list[Any]:
    value = doc.get(section)
    if value is None:
        return []
    if not isinstance(value, list):
        raise KubeconfigError(f"its {section!r} is a {type(value).__name__}, not a list: not a kubeconfig")
    return value


def _named(entry: Any, name: str) -> bool:
    return isinstance(entry, dict) and entry.get("name") == name


def merge(user_doc: Mapping[str, Any] | None, lab_doc: Mapping[str, Any], context: str) -> dict[str, Any]:
    """``user_doc`` with the lab's context, cluster and user added (an entry of the same
    name is replaced where it stands); everything else is kept as it was. The current
    context is set only when the file had none."""
    names = entries_of(lab_doc, context)
    out: dict[str, Any] = copy.deepcopy(dict(user_doc or {}))
    out.setdefault("apiVersion", "v1")
    out.setdefault("kind", "Config")
    out.setdefault("preferences", {})
    for section, _ in SECTIONS:
        name = names.name_in(section)
        ours = [e for e in _entries(lab_doc, section) if _named(e, name)]
        if len(ours) != 1:
            raise KubeconfigError(f"the lab's kubeconfig has {len(ours)} {section} named {name!r}, not one")
        current = _entries(out, section)
        where = next((i for i, e in enumerate(current) if _named(e, name)), None)
        kept = [e for e in current if not _named(e, name)]
        kept.insert(len(kept) if where is None else where, copy.deepcopy(ours[0]))
        out[section] = kept
    if not out.get("current-context"):
        out["current-context"] = names.context
    return out


def unmerge(user_doc: Mapping[str, Any], names: LabEntries) -> dict[str, Any]:
    """``user_doc`` without the lab's three entries; the current context is unset only
    when it pointed at the lab's context."""
    out: dict[str, Any] = copy.deepcopy(dict(user_doc))
    for section, _ in SECTIONS:
        if section in out:
            out[section] = [e for e in _entries(out, section) if not _named(e, names.name_in(section))]
    if out.get("current-context") == names.context:
        del out["current-context"]
    return out


def is_empty(doc: Mapping[str, Any]) -> bool:
    """Nothing but the skeleton ``merge`` starts a new file with."""
    rest = {k: v for k, v in doc.items() if k not in ("apiVersion", "kind", "preferences", *(s for s, _ in SECTIONS))}
    return not rest and not doc.get("preferences") and not any(doc.get(s) for s, _ in SECTIONS)


# -- the user's ~/.kube/config, written safely as root -----------------------------------

@dataclass(frozen=True)
class UserKubeconfig:
    """Whose ``~/.kube/config`` the lab merges into: their home folder, uid and gid."""

    home: Path
    uid: int
    gid: int

    @property
    def path(self) -> Path:
        return self.home / ".kube" / "config"

    @classmethod
    def of_user(cls, name: str) -> UserKubeconfig:
        try:
            pw = pwd.getpwnam(name)
        except KeyError:
            raise KubeconfigError(f"there is no user {name!r} on this machine") from None
        return cls(Path(pw.pw_dir), pw.pw_uid, pw.pw_gid)

    @classmethod
    def invoking(cls, environ: Mapping[str, str] = os.environ) -> UserKubeconfig:
        """The user who ran ``sudo`` (``SUDO_USER``), else the current user; the home
        folder comes from the password database: sudo may keep ``$HOME`` as root's."""
        if sudo_user := environ.get("SUDO_USER"):
            return cls.of_user(sudo_user)
        pw = pwd.getpwuid(os.getuid())
        return cls(Path(pw.pw_dir), pw.pw_uid, pw.pw_gid)


@dataclass(frozen=True)
class MergeRecord:
    """What ``lab up`` merged where, kept in the lab's state folder for ``down``."""

    home: str
    uid: int
    gid: int
    context: str
    cluster: str
    user: str
    created_file: bool = False
    created_dir: bool = False

    @property
    def target(self) -> UserKubeconfig:
        return UserKubeconfig(Path(self.home), self.uid, self.gid)

    @property
    def names(self) -> LabEntries:
        return LabEntries(self.context, self.cluster, self.user)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> MergeRecord:
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


@contextlib.contextmanager
def _kube_dir(target: UserKubeconfig, *, create: bool) -> Iterator[tuple[int | None, bool]]:
    """``~/.kube`` opened without following a symlink and locked against concurrent
    ``lab up``/``down``: (its fd, whether it was created now); (None, False) when it
    does not exist and ``create`` is false."""
    try:
        home_fd = os.open(target.home, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except FileNotFoundError:
        home_fd = None
    if home_fd is None:
        if create:
            raise KubeconfigError(f"the home folder {target.home} of uid {target.uid} does not exist")
        yield None, False
        return
    try:
        fd, created = _open_or_make_kube_dir(target, home_fd, create)
        if fd is None:
            yield None, False
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield fd, created
        finally:
            os.close(fd)
    finally:
        os.close(home_fd)


def _open_or_make_kube_dir(target: UserKubeconfig, home_fd: int, create: bool) -> tuple[int | None, bool]:
    try:
        return _open_kube_dir(target, home_fd), False
    except FileNotFoundError:
        if not create:
            return None, False
    created = False
    with contextlib.suppress(FileExistsError):  # made meanwhile: the open below judges it
        os.mkdir(".kube", 0o700, dir_fd=home_fd)
        created = True
    fd = _open_kube_dir(target, home_fd)
    if created:
        os.fchown(fd, target.uid, target.gid)
        os.fchmod(fd, 0o700)
    return fd, created


def _open_kube_dir(target: UserKubeconfig, home_fd: int) -> int:
    try:
        return os.open(".kube", _DIR_FLAGS, dir_fd=home_fd)
    except OSError as err:
        if err.errno in (errno.ELOOP, errno.ENOTDIR):
            raise KubeconfigError(f"{target.home / '.kube'} is a symlink or not a folder: refusing to write "
                                  "through it as root (make it a real folder)") from None
        raise


def _read(dir_fd: int, target: UserKubeconfig) -> dict[str, Any] | None:
    """The user's kubeconfig as a dict, or None when there is none."""
    try:
        fd = os.open("config", os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dir_fd)
    except FileNotFoundError:
        return None
    except OSError as err:
        if err.errno == errno.ELOOP:
            raise KubeconfigError(f"{target.path} is a symlink: refusing to follow it as root "
                                  "(replace it with a regular file)") from None
        raise
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise KubeconfigError(f"{target.path} is not a regular file: refusing to touch it")
        if st.st_uid != target.uid:
            raise KubeconfigError(f"{target.path} belongs to uid {st.st_uid}, not uid {target.uid}: refusing to "
                                  f"rewrite it (fix with: sudo chown {target.uid}:{target.gid} {target.path})")
        text = f.read().decode("utf-8", errors="replace")
    try:
        doc = yaml.safe_load(text) if text.strip() else {}
    except yaml.YAMLError as err:
        raise KubeconfigError(f"{target.path} is not valid YAML ({str(err).splitlines()[0]}): "
                              "refusing to rewrite it") from None
    if not isinstance(doc, dict):
        raise KubeconfigError(f"{target.path} is not a kubeconfig (not a mapping): refusing to rewrite it")
    return doc


def _write(dir_fd: int, target: UserKubeconfig, doc: Mapping[str, Any]) -> None:
    """Temp file owned by the user and 0600 from the start, then renamed over ``config``."""
    tmp = f".config.k8snet-{os.getpid()}.tmp"
    with contextlib.suppress(FileNotFoundError):
        os.unlink(tmp, dir_fd=dir_fd)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=dir_fd)
    try:
        with os.fdopen(fd, "w") as f:
            os.fchown(fd, target.uid, target.gid)
            os.fchmod(fd, 0o600)
            f.write(yaml.safe_dump(dict(doc), sort_keys=False))
            f.flush()
            os.fsync(fd)
        os.rename(tmp, "config", src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp, dir_fd=dir_fd)
        raise


def check_target(target: UserKubeconfig) -> None:
    """Raises KubeconfigError now if ``merge_file`` would refuse the file (before a lab starts)."""
    with _kube_dir(target, create=False) as (fd, _):
        if fd is not None:
            _read(fd, target)


def merge_file(target: UserKubeconfig, lab_doc: Mapping[str, Any], context: str,
               record: Callable[[MergeRecord], None] = lambda _: None) -> MergeRecord:
    """Merges the lab's ``context`` into the user's ``~/.kube/config`` (made 0700/0600 and
    owned by the user when missing). ``record`` is called before the file changes, so
    a crash in between still leaves ``down`` knowing what to clean."""
    names = entries_of(lab_doc, context)
    with _kube_dir(target, create=True) as (fd, created_dir):
        assert fd is not None
        current = _read(fd, target)
        merged = merge(current, lab_doc, context)
        done = MergeRecord(str(target.home), target.uid, target.gid, names.context, names.cluster, names.user,
                           created_file=current is None, created_dir=created_dir)
        record(done)
        _write(fd, target, merged)
    return done


def unmerge_file(done: MergeRecord) -> None:
    """Removes the recorded entries again. A file (and ``~/.kube``) the merge created is
    removed when nothing else is left in it; a file that is gone is fine."""
    target = done.target
    with _kube_dir(target, create=False) as (fd, _):
        if fd is None:
            return
        current = _read(fd, target)
        if current is None:
            return
        remaining = unmerge(current, done.names)
        if done.created_file and is_empty(remaining):
            os.unlink("config", dir_fd=fd)
        elif remaining != current:
            _write(fd, target, remaining)
    if done.created_file and done.created_dir:
        with contextlib.suppress(OSError):  # not empty (kubectl's cache, the user's files): kept
            os.rmdir(target.home / ".kube")  # rmdir never follows a symlink


def read_records(path: Path) -> list[MergeRecord]:
    try:
        return [MergeRecord.from_json(r) for r in json.loads(path.read_text())]
    except FileNotFoundError:
        return []


def write_records(path: Path, records: list[MergeRecord]) -> None:
    """The lab's record of the users' kubeconfigs it merged into: a state file (0600)."""
    write_private(path, json.dumps([r.to_json() for r in records], indent=2))
