"""Reading what the user hands us (--input, --config, a saved session): once, bounded, as text.

Why this module exists: a path can be a regular file, ``-`` (standard input), ``/dev/stdin``,
a process substitution ``<(...)`` (a pipe that can be read only once), a named FIFO that no
program writes to (a plain read blocks for ever), or ``/dev/zero`` (a plain read never
ends). So every input is read exactly once, through one file descriptor, with a byte limit
that is stated in the refusal, and pipes that stay silent for ``PIPE_IDLE_SECONDS`` are
given up with one sentence instead of a hang. Stdlib only.
"""

from __future__ import annotations

import os
import select
import stat
import sys
from pathlib import Path

from explorer.errors import InputError

STDIN = "-"
PIPE_IDLE_SECONDS = 10.0
"""How long a pipe or FIFO may stay silent before we stop waiting for it."""
CHUNK = 1 << 16


def _mb(n: int) -> str:
    return f"{n / 2**20:g} MB"


def check_text(value: str, flag: str) -> str:
    """Refuse a string that cannot be UTF-8 (a lone surrogate from undecodable argv bytes)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InputError(f"{flag} holds bytes that are not UTF-8 text (at character {exc.start}); "
                         "give UTF-8 text.") from exc
    return value


def _read_fd(fd: int, shown: str, limit: int, wait: bool) -> bytes:
    """Read to end of file, at most ``limit`` bytes; ``wait``: poll so a silent pipe ends."""
    parts: list[bytes] = []
    total = 0
    poller = None
    if wait:
        poller = select.poll()
        poller.register(fd, select.POLLIN | select.POLLHUP)
    while True:
        if poller is not None and not poller.poll(int(PIPE_IDLE_SECONDS * 1000)):
            raise InputError(f"Nothing arrived on {shown} for {PIPE_IDLE_SECONDS:g} s "
                             "(a pipe or FIFO that no program writes to?).")
        try:
            chunk = os.read(fd, CHUNK)
        except BlockingIOError:
            continue
        if not chunk:
            return b"".join(parts)
        parts.append(chunk)
        total += len(chunk)
        if total > limit:
            raise InputError(f"{shown} is larger than the {_mb(limit)} limit for this input.")


def read_input_bytes(path: str | Path, what: str, limit: int) -> bytes:
    """The bytes of ``path`` (``-``: standard input), read once. ``what`` names it in messages.

    Raises InputError in one sentence for a missing file, a directory, a socket, a silent
    pipe, or more than ``limit`` bytes.
    """
    if str(path) == STDIN:
        # The user chose standard input: wait for it as long as it takes (a terminal, a slow pipe).
        return _read_fd(sys.stdin.fileno(), "standard input", limit, wait=False)
    p = Path(path).expanduser()
    shown = f"{what} {p}"
    try:
        st = os.stat(p)
    except FileNotFoundError:
        raise InputError(f"{shown} does not exist.") from None
    except OSError as exc:
        raise InputError(f"{shown} could not be read: {exc.strerror or exc}.") from exc
    if stat.S_ISDIR(st.st_mode):
        raise InputError(f"{shown} is a directory; give a file.")
    if stat.S_ISSOCK(st.st_mode):
        raise InputError(f"{shown} is a socket, not a file.")
    if stat.S_ISREG(st.st_mode) and st.st_size > limit:
        raise InputError(f"{shown} is {_mb(st.st_size)}, over the {_mb(limit)} limit for this input.")
    try:
        # O_NONBLOCK: opening a FIFO that no program writes to would otherwise block for ever.
        fd = os.open(p, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as exc:
        raise InputError(f"{shown} could not be read: {exc.strerror or exc}.") from exc
    try:
        if stat.S_ISREG(st.st_mode):
            return _read_fd(fd, shown, limit, wait=False)
        if os.isatty(fd):  # /dev/stdin on a terminal: the user types until Ctrl+D
            os.set_blocking(fd, True)
            return _read_fd(fd, shown, limit, wait=False)
        if stat.S_ISFIFO(st.st_mode):
            return _read_fd(fd, shown, limit, wait=True)
        os.set_blocking(fd, True)  # a character device such as /dev/zero: the limit ends it
        return _read_fd(fd, shown, limit, wait=False)
    except OSError as exc:
        raise InputError(f"{shown} could not be read: {exc.strerror or exc}.") from exc
    finally:
        os.close(fd)


def decode_text(raw: bytes, shown: str) -> str:
    """UTF-8 (a BOM is dropped); refuse binary data in one sentence."""
    if b"\x00" in raw:
        raise InputError(f"{shown} is not UTF-8 text: it looks binary (it holds NUL bytes).")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"{shown} is not UTF-8 text (bad byte at offset {exc.start}).") from exc


def read_input_text(path: str | Path, what: str, limit: int) -> str:
    """``read_input_bytes`` then ``decode_text``."""
    shown = "standard input" if str(path) == STDIN else f"{what} {Path(path).expanduser()}"
    return decode_text(read_input_bytes(path, what, limit), shown)
