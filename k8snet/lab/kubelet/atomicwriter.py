"""The kubelet's atomic writer for secret, configMap, downwardAPI and projected volumes.

Layout of a volume directory (as pkg/volume/util/atomic_writer.go makes it)::

    <volume>/..2026_11_26_02_10_00.123456/tls.crt   the files of one version
    <volume>/..data -> ..2026_11_26_02_10_00.123456
    <volume>/tls.crt -> ..data/tls.crt             one link per top-level name

An update writes a new timestamped directory, then renames a fresh ``..data_tmp``
symlink over ``..data``: rename(2) is atomic, so a reader that opens
``tls.crt`` sees the old set of files or the new set, never a mix. The volume
directory itself keeps its inode, which is why a container's bind mount of it
shows the new files at once.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path, PurePosixPath

DATA = "..data"
_DATA_TMP = "..data_tmp"

#: (relative path, content, mode) of one file of the payload.
File = tuple[str, bytes, int]


class PayloadError(ValueError):
    """A path in the payload would escape the volume or clash with the writer's own names."""


def validate_path(rel: str) -> PurePosixPath:
    path = PurePosixPath(rel)
    if not rel or path.is_absolute() or ".." in path.parts:
        raise PayloadError(f"invalid path {rel!r}: must be relative and may not contain '..'")
    if path.parts[0].startswith(".."):
        raise PayloadError(f"invalid path {rel!r}: may not start with '..'")
    return path


def _read_version(version_dir: Path) -> dict[str, tuple[bytes, int]]:
    files = {}
    for dirpath, _, names in os.walk(version_dir):
        for name in names:
            full = Path(dirpath, name)
            files[str(full.relative_to(version_dir))] = (full.read_bytes(), full.stat().st_mode & 0o7777)
    return files


def current_version(target: Path) -> Path | None:
    """The timestamped directory ``..data`` points at, if any."""
    try:
        return target / os.readlink(target / DATA)
    except OSError:
        return None


def write_atomic(target: Path, files: list[File]) -> bool:
    """Makes ``target`` hold exactly ``files``; returns False if it already did.

    Blocking file I/O: call it from a thread in async code.
    """
    payload = {str(validate_path(rel)): (content, mode) for rel, content, mode in files}
    target.mkdir(parents=True, exist_ok=True)
    old = current_version(target)
    if old is not None and old.is_dir() and _read_version(old) == payload:
        return False
    # The name tells when this version was written, like the kubelet's "..2006_01_02_15_04_05.<random>".
    new = Path(tempfile.mkdtemp(prefix=time.strftime("..%Y_%m_%d_%H_%M_%S.", time.gmtime()), dir=target))
    os.chmod(new, 0o755)
    for rel, (content, mode) in payload.items():
        path = new / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        os.chmod(path, mode)
    tmp_link = target / _DATA_TMP
    if tmp_link.is_symlink():
        tmp_link.unlink()
    os.symlink(new.name, tmp_link)
    os.rename(tmp_link, target / DATA)  # the switch: atomic
    _link_visible(target, {PurePosixPath(rel).parts[0] for rel in payload})
    if old is not None and old != new:
        shutil.rmtree(old, ignore_errors=True)
    return True


def _link_visible(target: Path, names: set[str]) -> None:
    """One ``name -> ..data/name`` link per top-level name; links of names no longer
    in the payload go (through ``..data`` they already point at nothing)."""
    for entry in os.listdir(target):
        if entry.startswith(".."):
            continue
        if entry not in names:
            path = target / entry
            if path.is_symlink() or path.is_file():
                path.unlink()
            else:
                shutil.rmtree(path, ignore_errors=True)
    for name in names:
        link = target / name
        if not link.is_symlink():
            if link.exists():  # a plain file from an older layout: replace it
                shutil.rmtree(link) if link.is_dir() else link.unlink()
            os.symlink(f"{DATA}/{name}", link)
