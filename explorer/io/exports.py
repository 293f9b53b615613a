"""Files other tools read: token-tree JSON and logprob JSONL, written atomically.

``check_writable`` runs before a model is loaded, so a bad ``--out`` costs no time. Stdlib only.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from explorer.errors import InputError
from explorer.io.atomic import atomic_write_text


def check_writable(path: str | Path) -> Path:
    """Raise InputError in one sentence unless ``path`` can be (re)written as a file."""
    p = Path(path).expanduser()
    if str(path).strip() == "":
        raise InputError("--out needs a file name.")
    if p.is_dir():
        raise InputError(f"--out {p} is a directory; give a file name.")
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        raise InputError(f"Cannot write {p}: the directory {parent} does not exist.")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise InputError(f"Cannot write {p}: the directory {parent} is not writable.")
    if p.exists() and not os.access(p, os.W_OK):
        raise InputError(f"Cannot write {p}: the file is read-only.")
    return p


def write_text(path: str | Path, text: str) -> Path:
    """Replace ``path`` with ``text`` atomically (the tree JSON)."""
    return atomic_write_text(Path(path).expanduser(), text)


def append_jsonl(path: str | Path, record: dict) -> Path:
    """Append one JSON line; the file is rewritten atomically, so a crash never leaves half a line."""
    p = Path(path).expanduser()
    old = ""
    if p.exists():
        try:
            old = p.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"Cannot append to {p}: it is not a readable UTF-8 file ({exc}).") from exc
        if old and not old.endswith("\n"):
            old += "\n"
    return atomic_write_text(p, old + json.dumps(record, ensure_ascii=False) + "\n")
