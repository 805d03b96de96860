"""A container's stdio as the runtime keeps it, and ``attach`` sessions onto it.

A container whose spec asks for ``stdin`` gets a pipe as its standard input that the
runtime holds open (``tty: true``: a pseudo-terminal instead, for stdin, stdout and
stderr alike, as containerd does). Its output still goes to the log; an attach
session additionally receives everything written *while it is attached* (like
``crictl attach``: earlier output is only in the log). Sessions write to the shared
stdin. With ``stdinOnce`` (what ``kubectl run -i`` sets) the container's stdin is
closed when the first session's stdin ends — how ``kubectl run -i … -- cat`` sees EOF;
containerd does this only without a tty, and so does this module.

An :class:`Attachment` satisfies ``contracts.ExecProcess``: the API server's
``serve_exec`` pumps it like an exec'd process. Detaching never stops the container.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import struct
import termios
from typing import Callable


def pty_reader(fd: int) -> asyncio.StreamReader:
    """A StreamReader fed from a pty master until the terminal is hung up.

    asyncio's read-pipe transport treats the EIO a master returns once every slave
    is closed as a fatal error and logs it; for a pty it is simply the end of output.
    The fd stays open (window sizes go to it); ContainerIO.end closes it.
    """
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    os.set_blocking(fd, False)

    def ready() -> None:
        try:
            data = os.read(fd, 65536)
        except BlockingIOError:
            return
        except OSError:  # EIO: no slave is open any more
            data = b""
        if data:
            reader.feed_data(data)
            return
        loop.remove_reader(fd)
        reader.feed_eof()

    loop.add_reader(fd, ready)
    return reader


async def pty_writer(fd: int) -> asyncio.StreamWriter:
    """A StreamWriter onto (a duplicate of) a pty master: what the user types."""
    loop = asyncio.get_running_loop()
    pipe = os.fdopen(os.dup(fd), "wb", buffering=0)
    transport, protocol = await loop.connect_write_pipe(asyncio.streams.FlowControlMixin, pipe)
    return asyncio.StreamWriter(transport, protocol, None, loop)


def set_window_size(fd: int, width: int, height: int) -> None:
    """TIOCSWINSZ on the terminal; the foreground process group gets SIGWINCH."""
    if width > 0 and height > 0:
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", height, width, 0, 0))


class ContainerIO:
    """The stdio of one running container, shared by its attach sessions."""

    def __init__(self, stdin: asyncio.StreamWriter | None, *, stdin_once: bool, tty_fd: int | None):
        self.stdin = stdin
        self.stdin_once = stdin_once
        self.tty_fd = tty_fd      # the pty master, for window sizes (None without a tty)
        self._tty = tty_fd is not None
        self.sessions: set[Attachment] = set()
        self.ended = False

    @property
    def tty(self) -> bool:
        return self._tty


    def publish(self, stream: str, chunk: bytes) -> None:
        """Output the runtime read from the container (``stdout`` or ``stderr``)."""
        for session in list(self.sessions):
            session.deliver(stream, chunk)

    def attach(self, *, stdin: bool, tty: bool) -> Attachment:
        if self.ended:
            raise RuntimeError("the container is not running")
        session = Attachment(self, stdin=stdin and self.stdin is not None, tty=tty and self.tty)
        self.sessions.add(session)
        return session

    def close_stdin(self) -> None:
        if self.stdin is not None and not self.stdin.is_closing():
            self.stdin.close()

    def end(self) -> None:
        """The container exited and all its output was published: every session ends."""
        self.ended = True
        for session in list(self.sessions):
            session.kill()
        self.close_stdin()
        if self.tty_fd is not None:
            os.close(self.tty_fd)
            self.tty_fd = None


class _SessionInput:
    """One session's view of the container's stdin (a StreamWriter look-alike).

    Closing it ends only this session's input, unless the container is stdinOnce."""

    def __init__(self, io: ContainerIO, on_close: Callable[[], None]):
        self._io = io
        self._closed = False
        self._on_close = on_close

    def write(self, data: bytes) -> None:
        if not self._closed and self._io.stdin is not None and not self._io.stdin.is_closing():
            self._io.stdin.write(data)

    async def drain(self) -> None:
        if self._io.stdin is not None and not self._io.stdin.is_closing():
            await self._io.stdin.drain()

    def is_closing(self) -> bool:
        return self._closed

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._on_close()


class Attachment:
    """One ``pods/attach`` session; satisfies ``contracts.ExecProcess``."""

    def __init__(self, io: ContainerIO, *, stdin: bool, tty: bool):
        self._io = io
        self.tty = tty
        self.stdout: asyncio.StreamReader | None = asyncio.StreamReader()
        # A tty has one output stream (what the terminal shows); kubectl asks for no stderr then.
        self.stderr: asyncio.StreamReader | None = None if tty else asyncio.StreamReader()
        self.stdin: _SessionInput | None = _SessionInput(io, self._stdin_ended) if stdin else None
        self._done = asyncio.Event()

    def deliver(self, stream: str, chunk: bytes) -> None:
        reader = self.stderr if stream == "stderr" and self.stderr is not None else self.stdout
        if reader is not None and not self._done.is_set():
            reader.feed_data(chunk)

    def _stdin_ended(self) -> None:
        if self._io.stdin_once and not self._io.tty:
            self._io.close_stdin()

    def resize(self, width: int, height: int) -> None:
        if self.tty and self._io.tty_fd is not None and not self._io.ended:
            try:
                set_window_size(self._io.tty_fd, width, height)
            except OSError:
                pass  # the terminal was just hung up

    def kill(self) -> None:
        """Ends this session (serve_exec calls it when the client goes away); the
        container keeps running, as after ``kubectl attach`` is interrupted."""
        if self._done.is_set():
            return
        self._done.set()
        self._io.sessions.discard(self)
        for reader in (self.stdout, self.stderr):
            if reader is not None:
                reader.feed_eof()

    async def wait(self) -> int:
        """0 once the session ended: like the kubelet's ServeAttach, the attach itself
        succeeded; the container's exit code is in the pod's status."""
        await self._done.wait()
        return 0
