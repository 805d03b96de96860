"""Attach sessions onto a container's stdio (k8snet.lab.kubelet.attach) and the log
follower, with plain processes: no namespaces, no root."""

from __future__ import annotations

import asyncio
import fcntl
import os
import struct
import termios
from pathlib import Path

from k8snet.lab.kubelet.attach import ContainerIO, pty_reader, pty_writer, set_window_size
from k8snet.lab.kubelet.runtime import follow_log


async def _read_all(reader: asyncio.StreamReader | None) -> bytes:
    return b"" if reader is None else await asyncio.wait_for(reader.read(), 10)


def test_sessions_get_live_output_and_stdin_once_closes_stdin():
    async def main():
        proc = await asyncio.create_subprocess_exec(
            "sh", "-c", "while read line; do echo out:$line; echo err:$line >&2; done; echo bye",
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        io = ContainerIO(proc.stdin, stdin_once=True, tty_fd=None)

        async def pump(reader, stream):
            while chunk := await reader.read(1024):
                io.publish(stream, chunk)
        pumps = asyncio.gather(pump(proc.stdout, "stdout"), pump(proc.stderr, "stderr"))
        watcher = io.attach(stdin=False, tty=False)
        session = io.attach(stdin=True, tty=False)
        assert watcher.stdin is None and session.stdin is not None
        session.stdin.write(b"a\n")
        await session.stdin.drain()
        session.stdin.close()  # stdinOnce: the container's stdin closes with it
        await proc.wait()
        await pumps
        io.end()
        out, err = await _read_all(session.stdout), await _read_all(session.stderr)
        assert out == b"out:a\nbye\n" and err == b"err:a\n"
        assert await _read_all(watcher.stdout) == out  # every session sees the output
        assert await session.wait() == 0  # the attach succeeded; the exit code is the pod's business
    asyncio.run(main())


def test_detaching_without_stdin_once_keeps_stdin_open():
    async def main():
        proc = await asyncio.create_subprocess_exec("cat", stdin=asyncio.subprocess.PIPE,
                                                    stdout=asyncio.subprocess.PIPE)
        io = ContainerIO(proc.stdin, stdin_once=False, tty_fd=None)
        first = io.attach(stdin=True, tty=False)
        first.stdin.close()
        first.kill()  # the client left
        assert first.stdout.at_eof() or await _read_all(first.stdout) == b""
        assert not proc.stdin.is_closing() and proc.returncode is None
        second = io.attach(stdin=True, tty=False)
        second.stdin.write(b"still here\n")
        await second.stdin.drain()
        assert await asyncio.wait_for(proc.stdout.readline(), 10) == b"still here\n"
        io.end()
        await proc.wait()
        assert io.ended and second.stdout.at_eof()
    asyncio.run(main())


def test_tty_session_echoes_input_and_resizes_the_terminal():
    async def main():
        master, slave = os.openpty()
        proc = await asyncio.create_subprocess_exec("sh", "-c", "read x; stty size; echo got:$x",
                                                    stdin=slave, stdout=slave, stderr=slave)
        os.close(slave)
        io = ContainerIO(await pty_writer(master), stdin_once=True, tty_fd=master)
        reader = pty_reader(master)
        session = io.attach(stdin=True, tty=True)
        assert session.stderr is None  # one stream with a tty
        session.resize(120, 40)
        session.stdin.write(b"hello\r")  # a terminal's Enter; the line discipline makes it \n
        await session.stdin.drain()
        output = b""
        while chunk := await asyncio.wait_for(reader.read(1024), 10):
            io.publish("stdout", chunk)
            output += chunk
        await proc.wait()
        io.end()
        assert b"hello" in output and b"40 120" in output and b"got:hello" in output, output
        assert await _read_all(session.stdout) == output
    asyncio.run(main())


def test_set_window_size():
    master, slave = os.openpty()
    try:
        set_window_size(master, 100, 30)
        rows, cols, _, _ = struct.unpack("HHHH", fcntl.ioctl(slave, termios.TIOCGWINSZ, b"\0" * 8))
        assert (rows, cols) == (30, 100)
    finally:
        os.close(master)
        os.close(slave)


def test_follow_log_sends_each_record_once(tmp_path: Path):
    log = tmp_path / "0.log"
    log.write_bytes(b"2026-01-01T00:00:00.000000000Z stdout F one\n")
    done = {"value": False}

    async def main() -> bytes:
        async def writer():
            await asyncio.sleep(0.3)
            with log.open("ab") as f:
                f.write(b"2026-01-01T00:00:01.000000000Z stdout F two\n")
            await asyncio.sleep(0.3)
            done["value"] = True
        task = asyncio.create_task(writer())
        out = b"".join([c async for c in follow_log(log, lambda: not done["value"], follow=True, poll=0.05)])
        await task
        return out

    assert asyncio.run(main()) == b"one\ntwo\n"
