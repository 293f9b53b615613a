"""Writing files without harming what is already there: the one helper every writer uses.

* A new or replaced file is written atomically: a temporary file in the same directory,
  fsync, then a rename over the target, so a crash leaves the old file or the new one.
* Appending writes in place with O_APPEND (one ``write`` call, then fsync): an append is
  not a rename, so the file keeps its inode, its mode, its owner and its hard links.
* A symlink is followed: the file it points to is written, the link stays a link.
* A file with several hard links is rewritten in place (a rename would split the links).
* A replaced file keeps its mode; a new file gets the mode the umask allows (0666 & ~umask),
  not mkstemp's 0600.
* Device nodes, FIFOs and sockets are refused with one sentence: a rename over one would
  replace, say, /dev/null with a regular file.
* ``-`` is standard output.

Stdlib only.
"""

from __future__ import annotations

import os
import stat
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from explorer.errors import InputError, PersistenceError

STDOUT = "-"


def _umask_mode() -> int:
    """The mode a new file gets from open(): 0666 less the process umask."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def _special_kind(mode: int) -> str | None:
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISDIR(mode):
        return "a directory"
    return None


def resolve_target(path: str | Path) -> Path:
    """The file a write to ``path`` must change: symlinks followed (even dangling ones)."""
    p = Path(path).expanduser()
    try:
        return Path(os.path.realpath(p))
    except OSError:  # a symlink loop: reported by check_output_path
        return p


def check_output_path(path: str | Path, flag: str = "--out") -> Path | None:
    """Raise InputError in one sentence unless ``path`` can be written as a regular file.

    Returns the resolved target, or None for ``-`` (standard output). Cheap: run it before
    loading a model so a bad path costs no time.
    """
    if str(path) == STDOUT:
        return None
    if str(path).strip() == "":
        raise InputError(f"{flag} needs a file name (or - for standard output).")
    shown = Path(path).expanduser()
    try:
        target = resolve_target(path)
        st = os.stat(target) if os.path.lexists(target) else None
    except OSError as exc:
        raise InputError(f"Cannot write {shown}: {exc.strerror or exc}.") from exc
    if st is not None:
        kind = _special_kind(st.st_mode)
        if kind == "a directory":
            raise InputError(f"{flag} {shown} is a directory; give a file name.")
        if kind:
            raise InputError(f"{flag} {shown} is {kind}, not a regular file; give a file name (or - for standard output).")
        if not os.access(target, os.W_OK):
            raise InputError(f"Cannot write {shown}: the file is read-only.")
    parent = target.parent
    if not parent.is_dir():
        raise InputError(f"Cannot write {shown}: the directory {parent} does not exist.")
    if not os.access(parent, os.W_OK | os.X_OK) and st is None:
        raise InputError(f"Cannot write {shown}: the directory {parent} is not writable.")
    return target


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def _why(exc: OSError) -> str:
    return exc.strerror or str(exc)


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` so that a crash leaves the old file or the new one.

    Follows symlinks, keeps the mode of a replaced file, rewrites a hard-linked file in place,
    refuses devices and FIFOs. Raises PersistenceError with the reason.
    """
    shown = Path(path).expanduser()
    target = resolve_target(shown)
    data = text.encode("utf-8")
    try:
        st = os.stat(target)
    except FileNotFoundError:
        st = None
    except OSError as exc:
        raise PersistenceError(f"Cannot write {shown}: {_why(exc)}.") from exc
    if st is not None:
        kind = _special_kind(st.st_mode)
        if kind:
            raise PersistenceError(f"Cannot write {shown}: it is {kind}, not a regular file.")
        if st.st_nlink > 1:
            return _rewrite_in_place(shown, target, data)
    mode = stat.S_IMODE(st.st_mode) if st is not None else _umask_mode()
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as exc:
        raise PersistenceError(f"Cannot write in {target.parent}: {_why(exc)}.") from exc
    try:
        try:
            os.fchmod(fd, mode)
            _write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, target)
    except OSError as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise PersistenceError(f"Cannot write {shown}: {_why(exc)}.") from exc
    return shown


def _rewrite_in_place(shown: Path, target: Path, data: bytes) -> Path:
    """Truncate and rewrite a hard-linked file: every link sees the new text (not atomic)."""
    try:
        fd = os.open(target, os.O_WRONLY | os.O_TRUNC)
        try:
            _write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as exc:
        raise PersistenceError(f"Cannot write {shown}: {_why(exc)}.") from exc
    return shown


def append_text(path: str | Path, text: str) -> Path:
    """Append ``text`` to ``path`` in place (created atomically when it does not exist yet).

    A file that does not end with a newline gets one first, so a JSONL record always starts
    a line. The text goes out in one ``write`` call and is fsynced.
    """
    if str(path) == STDOUT:
        return write_stdout(text)
    shown = Path(path).expanduser()
    target = resolve_target(shown)
    try:
        st = os.stat(target)
    except FileNotFoundError:
        return atomic_write_text(shown, text)
    except OSError as exc:
        raise PersistenceError(f"Cannot append to {shown}: {_why(exc)}.") from exc
    kind = _special_kind(st.st_mode)
    if kind:
        raise PersistenceError(f"Cannot append to {shown}: it is {kind}, not a regular file.")
    try:
        fd = os.open(target, os.O_RDWR | os.O_APPEND)
        try:
            if st.st_size:
                last = os.pread(fd, 1, st.st_size - 1)
                if last != b"\n":
                    text = "\n" + text
            _write_all(fd, text.encode("utf-8"))
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as exc:
        raise PersistenceError(f"Cannot append to {shown}: {_why(exc)}.") from exc
    return shown


def write_output(path: str | Path, text: str) -> Path:
    """Replace the file at ``path`` with ``text`` (``-``: standard output)."""
    if str(path) == STDOUT:
        return write_stdout(text)
    return atomic_write_text(path, text)


def write_stdout(text: str) -> Path:
    sys.stdout.write(text)
    sys.stdout.flush()
    return Path(STDOUT)


def create_new_text(path: Path, text: str) -> Path:
    """Atomically write a file that must not exist yet (never overwrites). Raises FileExistsError."""
    path = Path(path)
    tmp_parent = path.parent
    try:
        tmp_parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=tmp_parent)
    except OSError as exc:
        raise PersistenceError(f"Cannot write in {tmp_parent}: {exc.strerror or exc}.") from exc
    try:
        try:
            os.fchmod(fd, _umask_mode())
            _write_all(fd, text.encode("utf-8"))
            os.fsync(fd)
        finally:
            os.close(fd)
        os.link(tmp, path)  # fails if path exists: an earlier save is never replaced
    except FileExistsError:
        raise
    except OSError as exc:
        raise PersistenceError(f"Cannot write {path}: {exc.strerror or exc}.") from exc
    finally:
        try:
            os.unlink(tmp)
        except OSError:
            pass
    return path


@contextmanager
def atomic_file(path: str | Path, mode: int | None = None) -> Iterator[Path]:
    """For writers that need a file name (safetensors, SQLite): yield a temporary path beside
    ``path``; when the block ends without an exception the file is fsynced and renamed over
    ``path``, else it is removed. A crash leaves the old file or the new one, never half of one.

    ``mode`` defaults to what the umask allows (mkstemp's 0600 is for secrets, these files are
    to share). Caches and model files only: user-facing files go through ``atomic_write_text``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.chmod(tmp, _umask_mode() if mode is None else mode)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
