"""Large request bodies are decoded in worker processes: the same values and the same
Status errors as inline decoding, a 429 when too many wait, and no worker outlives
its parent, even one killed with SIGKILL."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from k8snet.lab.api import bodyworkers
from k8snet.lab.api.bodyworkers import BodyDecoder
from k8snet.lab.errors import ApiError
from tests.unit.test_bad_input_corpus import ALIAS_BOMB

ROOT = Path(__file__).resolve().parents[2]
PAD = "#" + "x" * 20_000 + "\n"  # a YAML comment / JSON whitespace: over every inline limit


def _outcome(decoder: BodyDecoder, kind: bodyworkers.Kind, raw: bytes) -> Any:
    async def run() -> Any:
        try:
            return await decoder.parse(kind, raw)
        except ApiError as err:
            return err.status()
        finally:
            decoder.close()
    return asyncio.run(run())


BODIES: list[tuple[str, bodyworkers.Kind, bytes]] = [
    ("yaml-object", "yaml", (PAD + "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n"
                             "data: {a: '1', on: yes, t: 2026-01-02}\n").encode()),
    ("yaml-alias-bomb", "yaml", (PAD + ALIAS_BOMB).encode()),
    ("apply-alias-bomb", "apply-yaml", (PAD + ALIAS_BOMB).encode()),
    ("yaml-deep", "yaml", (PAD + "a: " + "[" * 300 + "]" * 300 + "\n").encode()),
    ("yaml-nan", "yaml", (PAD + "a: .nan\n").encode()),
    ("yaml-syntax", "yaml", (PAD + "a: [\n").encode()),
    ("yaml-not-utf8", "yaml", PAD.encode() + b"a: \xff\n"),
    ("json-object", "json", (" " * 20_000 + json.dumps({"data": {"k": "é" * 10}, "n": [1, 2.5, None]})).encode()),
    ("json-nan", "json", (" " * 20_000 + '{"a": NaN}').encode()),
    ("json-deep", "json", (" " * 20_000 + "[" * 150 + "]" * 150).encode()),
    ("json-syntax", "json", (" " * 20_000 + '{"a": ').encode()),
]


@pytest.mark.parametrize("kind, raw", [b[1:] for b in BODIES], ids=[b[0] for b in BODIES])
def test_a_worker_answers_as_inline_decoding_does(kind: bodyworkers.Kind, raw: bytes) -> None:
    assert len(raw) > max(bodyworkers.INLINE_MAX_BYTES.values())
    inline = _outcome(BodyDecoder(workers=0), kind, raw)
    in_worker = _outcome(BodyDecoder(workers=1), kind, raw)
    assert in_worker == inline


def test_small_bodies_stay_in_the_loop() -> None:
    decoder = BodyDecoder(workers=1)
    assert _outcome(decoder, "json", b'{"a": 1}') == {"a": 1}
    assert decoder._pool is None  # no worker was started for it


def test_too_many_waiting_bodies_are_429() -> None:
    big = (" " * 20_000 + "[" * 90 + "]" * 90).encode()

    async def run() -> list[Any]:
        decoder = BodyDecoder(workers=1, queue_limit=1)
        try:
            results = await asyncio.gather(*(decoder.parse("json", big) for _ in range(6)), return_exceptions=True)
        finally:
            decoder.close()
        return [r.status() if isinstance(r, ApiError) else r for r in results]
    results = asyncio.run(run())
    refused = [r for r in results if isinstance(r, dict)]
    assert refused and all(r["code"] == 429 and r["reason"] == "TooManyRequests" for r in refused)
    assert results.count(results[0]) >= 2  # the first two (worker + one waiting) were decoded


_PARENT = textwrap.dedent("""
    import asyncio, sys
    from k8snet.lab.api.bodyworkers import BodyDecoder

    async def main():
        decoder = BodyDecoder(workers=2)
        print(" ".join(map(str, await decoder.start())), flush=True)
        await asyncio.sleep(3600)

    if __name__ == "__main__":
        asyncio.run(main())
""")


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[1].split()[0] != "Z"
    except OSError:
        return False


def _children(pid: int) -> set[int]:
    return {int(c) for task in Path(f"/proc/{pid}/task").iterdir()
            for c in (task / "children").read_text().split()}


def test_workers_die_with_a_parent_killed_by_sigkill(tmp_path: Path) -> None:
    script = tmp_path / "parent.py"  # spawned workers import the parent's main module from its file
    script.write_text(_PARENT)
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    parent = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert parent.stdout is not None
        workers = {int(p) for p in parent.stdout.readline().split()}
        pids = _children(parent.pid)  # the workers and multiprocessing's resource tracker
        assert workers and workers <= pids and all(_alive(p) for p in pids)
        parent.send_signal(signal.SIGKILL)
        parent.wait(timeout=10)
        deadline = time.monotonic() + 10
        while any(_alive(p) for p in pids) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not any(_alive(p) for p in pids), pids
    finally:
        parent.kill()
        parent.wait()
