"""``wget`` of the busybox-applet images: busybox's own wget, bridged where Debian 12's
busybox 1.35 differs from the busybox 1.37 of the real images.

Why a launcher around the host's busybox rather than a wget of our own or another
package: Debian 12 ships busybox 1.35 only (``busybox`` and ``busybox-static`` are one
build), and everything but the two points below already behaves like 1.37 (1.36 and
1.37 changed nothing else in wget that a tutorial sees: header names became
case-insensitive). So busybox itself keeps doing the HTTP, the redirects, the output
and every error message; this file only bridges:

* ``-T SEC`` / ``--timeout=SEC``. Debian builds before 1.36.1-5 compile
  FEATURE_WGET_TIMEOUT out, but the option string still has ``T:+`` with no variable
  behind it: ``-T`` segfaults (exit 139) and ``--timeout`` is unknown. The launcher
  takes the option out (parsed with busybox's own option table and getopt_long rules,
  so ``-qT5``, ``-O -T`` or ``--time=5`` mean what they mean to busybox), runs busybox
  wget, and when the time is up kills it and dies the way busybox does: ``wget:
  download timed out``, exit 1. Busybox restarts its timer at the connect, at each
  response line and at each second without data; here it bounds the whole run, which is
  the same for the small pages tutorials fetch.
* HTTPS. The real image has no ``openssl`` program, so busybox uses its built-in TLS
  client, which validates no certificate and says so ("note: TLS certificate
  validation not implemented"). Debian's 1.35 TLS client predates the
  signature_algorithms extension (busybox 1.36) and fails the handshake with
  OpenSSL 3 servers (the lab's API server and nginx), so here busybox's other path, the
  host's ``openssl s_client``, carries the connection, told to skip verification
  (``--no-check-certificate``) as the real image does, and the note is printed before
  the run (the real image prints it once the TLS connection starts).

Called by a small ``/bin/sh`` stub in the image's tool directory as
``python -I -S wget.py BUSYBOX [wget's arguments]``; standard library only.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys

#: busybox 1.37 wget's options (networking/wget.c: "cqSO:o:P:Y:U:T:+t:n::" and
#: wget_longopts, FEATURE_WGET_LONG_OPTIONS and DESKTOP as Debian builds them).
SHORT_WITH_ARGUMENT = frozenset("OoPYUTt")
LONG_OPTIONS: dict[str, bool] = {  # name -> takes an argument
    "continue": False, "quiet": False, "server-response": False, "output-document": True,
    "output-file": True, "directory-prefix": True, "proxy": True, "user-agent": True,
    "timeout": True, "tries": True, "header": True, "post-data": True, "spider": False,
    "no-check-certificate": False, "post-file": True, "passive-ftp": False, "no-cache": False,
    "no-verbose": False, "no-clobber": False, "no-host-directories": False, "no-parent": False,
}
TLS_NOTE = "wget: note: TLS certificate validation not implemented"


class Usage(Exception):
    """An argument busybox itself would reject with this message and exit 1."""


def long_option(word: str) -> str | None:
    """getopt_long's lookup: an exact name, else an unambiguous prefix."""
    if word in LONG_OPTIONS:
        return word
    matches = [name for name in LONG_OPTIONS if name.startswith(word)]
    return matches[0] if len(matches) == 1 else None


def seconds(value: str) -> int:
    """busybox's xatou for ``T:+``."""
    if not value.isdigit():
        raise Usage(f"wget: invalid number '{value}'")
    return int(value)


def split_timeout(args: list[str]) -> tuple[list[str], int | None, bool, list[str]]:
    """Splits wget's arguments into (arguments without the timeout, the last timeout
    given or None, whether --no-check-certificate was given, the URLs). Arguments that
    busybox would reject are passed on untouched, so busybox says what is wrong."""
    kept: list[str] = []
    urls: list[str] = []
    timeout: int | None = None
    no_check = False
    i = 0
    while i < len(args):
        arg = args[i]
        i += 1
        if arg == "--":
            kept.append(arg)
            urls += args[i:]
            kept += args[i:]
            break
        if arg.startswith("--"):
            word, eq, value = arg[2:].partition("=")
            name = long_option(word)
            if name == "timeout":
                if not eq:
                    if i == len(args):
                        kept.append(arg)  # busybox: "option requires an argument"
                        continue
                    value, i = args[i], i + 1
                timeout = seconds(value)
                continue
            kept.append(arg)
            no_check |= name == "no-check-certificate"
            if name is not None and LONG_OPTIONS[name] and not eq and i < len(args):
                kept.append(args[i])
                i += 1
            continue
        if not arg.startswith("-") or arg == "-":
            urls.append(arg)
            kept.append(arg)
            continue
        cluster = "-"
        for pos in range(1, len(arg)):
            letter = arg[pos]
            if letter == "n":  # -n[ARG]: the rest of the word is its optional argument
                cluster += arg[pos:]
                break
            if letter not in SHORT_WITH_ARGUMENT:
                cluster += letter
                continue
            value, attached = arg[pos + 1:], True
            if not value:
                if i == len(args):
                    cluster += letter  # busybox: "option requires an argument"
                    break
                value, attached, i = args[i], False, i + 1
            if letter == "T":
                timeout = seconds(value)
            else:
                kept.append(cluster + arg[pos:])
                if not attached:
                    kept.append(value)
                cluster = ""
            break
        if cluster not in ("", "-"):
            kept.append(cluster)
    return kept, timeout, no_check, urls


def run_with_deadline(argv: list[str], busybox: str, timeout: int) -> int:
    """Runs busybox wget in its own process group (the openssl helper included) and
    kills the group when ``timeout`` seconds have passed."""
    child = subprocess.Popen(argv, executable=busybox, process_group=0)

    def forward(signum: int, _frame: object) -> None:
        os.killpg(child.pid, signum)

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT):
        signal.signal(signum, forward)
    try:
        code = child.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(child.pid, signal.SIGKILL)
        child.wait()
        print("wget: download timed out", file=sys.stderr, flush=True)
        return 1
    if code < 0:  # killed by a signal: end the same way, as a shell running wget would see it
        signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
    return code


def main(busybox: str, args: list[str]) -> int:
    try:
        kept, timeout, no_check, urls = split_timeout(args)
    except Usage as err:
        print(err, file=sys.stderr)
        return 1
    if not no_check and any(url.startswith("https://") for url in urls):
        print(TLS_NOTE, file=sys.stderr, flush=True)
        kept.insert(0, "--no-check-certificate")
    argv = ["wget", *kept]
    if not timeout:  # none given (busybox's default is 900 s), or 0: no timeout
        os.execv(busybox, argv)
    return run_with_deadline(argv, busybox, timeout)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2:]))
