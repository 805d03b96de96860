"""nftables transactions through libnftables, in-process, with one context per node.

``nft -f`` starts a process that creates a libnftables context, fetches the table's
chains and sets from the kernel into the context's cache, runs the commands as one
transaction and exits. With 10,000 Services (20,000 chains) that fetch is most of a
partial sync's cost, and a new process fetches it every time. A context kept between
syncs revalidates its cache instead (nftables 1.0.6, measured in a namespace holding
20,000 chains and a 10,000-element verdict map, load ~1.2: one Service's chains, rules
and map element cost 23 ms per transaction in a kept context, 39 ms in a fresh one and
40 ms through ``nft -f``; docs/performance.md, "Proxy syncs").

The context speaks to the kernel over a netlink socket opened when the context is
made, and a socket belongs to the network namespace it was created in: so the context
is made by a thread switched into the node's namespace. Each transaction runs in such
a thread (:func:`nsutil.run_in_netns`; ctypes releases the GIL), not on the event loop.

ctypes rather than a Python package: the official bindings (``nftables.py``, itself
ctypes over these same functions) ship only as Debian's ``python3-nftables``, which a
virtual environment does not see, and PyPI has no maintained copy. The library comes
with the ``nftables`` package that the lab needs for ``nft`` anyway.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import threading
from typing import Any

from ..net.nsutil import run_in_netns


class NftError(RuntimeError):
    """libnftables refused a transaction (the message is nft's own) or is missing."""


_lib: Any = None
_lib_lock = threading.Lock()


def _library() -> Any:
    global _lib
    with _lib_lock:
        if _lib is None:
            name = ctypes.util.find_library("nftables") or "libnftables.so.1"
            try:
                lib = ctypes.CDLL(name)
            except OSError as err:
                raise NftError(f"libnftables not found ({err}); install the nftables package "
                               "(sudo bash scripts/setup.sh)") from None
            lib.nft_ctx_new.argtypes, lib.nft_ctx_new.restype = [ctypes.c_uint32], ctypes.c_void_p
            lib.nft_ctx_free.argtypes, lib.nft_ctx_free.restype = [ctypes.c_void_p], None
            lib.nft_ctx_buffer_output.argtypes, lib.nft_ctx_buffer_output.restype = [ctypes.c_void_p], ctypes.c_int
            lib.nft_ctx_buffer_error.argtypes, lib.nft_ctx_buffer_error.restype = [ctypes.c_void_p], ctypes.c_int
            lib.nft_ctx_get_error_buffer.argtypes = [ctypes.c_void_p]
            lib.nft_ctx_get_error_buffer.restype = ctypes.c_char_p
            lib.nft_run_cmd_from_buffer.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
            lib.nft_run_cmd_from_buffer.restype = ctypes.c_int
            _lib = lib
        return _lib


def _new_context() -> int:
    """A context whose socket is in the calling thread's network namespace."""
    lib = _library()
    ctx = lib.nft_ctx_new(0)  # NFT_CTX_DEFAULT
    if not ctx:
        raise NftError("nft_ctx_new failed")
    # Buffered, so messages come back to us instead of going to the supervisor's stdout/stderr.
    lib.nft_ctx_buffer_output(ctx)
    lib.nft_ctx_buffer_error(ctx)
    return int(ctx)


class NftSession:
    """One node's libnftables context, kept between transactions.

    Transactions of one session run one at a time (the context is not thread-safe).
    After a refused transaction the context is dropped and the next one starts from a
    fresh context, so nothing of a failed attempt lingers in its cache. :meth:`close`
    frees it: the context's socket keeps the namespace alive while it exists.
    """

    def __init__(self, netns: str) -> None:
        self.netns = netns
        self._ctx: int | None = None
        self._lock = threading.Lock()  # not asyncio's: sessions outlive event loops (benchmarks)

    async def run(self, commands: str) -> None:
        """Runs ``commands`` (``nft -f`` syntax) as one transaction; NftError if refused."""
        ok, message = await run_in_netns(self.netns, self._run_here, commands)
        if not ok:
            raise NftError(message)

    def _run_here(self, commands: str) -> tuple[bool, str]:
        """In a thread switched into the node's namespace, where a new context must be made."""
        lib = _library()
        with self._lock:
            if self._ctx is None:
                self._ctx = _new_context()
            rc = lib.nft_run_cmd_from_buffer(self._ctx, commands.encode())
            message = (lib.nft_ctx_get_error_buffer(self._ctx) or b"").decode(errors="replace").strip()
            if rc != 0:
                self._free()
            return rc == 0, message or f"nft returned {rc}"

    def close(self) -> None:
        with self._lock:
            self._free()

    def _free(self) -> None:
        if self._ctx is not None:
            _library().nft_ctx_free(self._ctx)
            self._ctx = None


async def run_once(netns: str, commands: str) -> None:
    """One transaction in a context of its own (for one-off loads)."""
    session = NftSession(netns)
    try:
        await session.run(commands)
    finally:
        session.close()
