"""Atomic file writes: a temporary file in the same directory, fsync, then rename over the target.

A crash or a kill at any moment leaves either the old file or the new one, never half of
one. Stdlib only.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from explorer.errors import PersistenceError


def atomic_write_text(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` atomically (UTF-8). Raises PersistenceError with the reason."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise PersistenceError(f"Cannot write in {path.parent}: {exc.strerror or exc}.") from exc
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise PersistenceError(f"Cannot write {path}: {exc.strerror or exc}.") from exc
    return path


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
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
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
