"""Files other tools read: token-tree JSON and logprob JSONL.

Every write goes through explorer/io/atomic.py: a new or replaced file is written
atomically, an append is made in place, symlinks and hard links are kept, and ``-`` is
standard output. ``check_writable`` runs before a model is loaded, so a bad ``--out``
costs no time. Stdlib only.
"""

from __future__ import annotations

import json
from pathlib import Path

from explorer.io.atomic import STDOUT, append_text, check_output_path, write_output


def check_writable(path: str | Path) -> str | Path:
    """Raise InputError in one sentence unless ``path`` can be written; ``-`` stays ``-``."""
    target = check_output_path(path)
    return STDOUT if target is None else Path(path).expanduser()


def write_text(path: str | Path, text: str) -> Path:
    """Replace ``path`` with ``text`` (the tree JSON); ``-`` writes to standard output."""
    return write_output(path, text)


def append_jsonl(path: str | Path, record: dict) -> Path:
    """Append one JSON line in place (a new file is created atomically); ``-``: standard output."""
    return append_text(path, json.dumps(record, ensure_ascii=False) + "\n")
