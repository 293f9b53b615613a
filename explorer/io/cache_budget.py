"""Byte budgets for the disk caches, least-recently-used eviction, and what `main.py cache` shows.

Every cache the app writes under ``explorer.paths.cache_dir()`` is an *area* with a byte
budget. When an area grows past its budget, its least recently used entries are deleted
until it fits again; an entry in use right now (``keep``) is never deleted, so one entry
larger than the budget still works. "Used" is the entry's mtime: the caches touch an entry
when they read it, because atime is unreliable (relatime, noatime mounts).

Budgets (MB) can be changed with environment variables, e.g.
``TOKEN_EXPLORER_CACHE_MB_SAE_FEATURES=256``. Everything here can be rebuilt, so deleting
it loses only time. Stdlib only.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from explorer.errors import InputError
from explorer.paths import cache_dir


@dataclass(frozen=True)
class Area:
    name: str
    subdir: str
    default_mb: int
    what: str
    entry_is_dir: bool
    """Converted models are folders; SAE feature entries are single files in 2-letter folders."""


AREAS = {
    "converted": Area("converted", "converted", 4096, "GGUF models converted to safetensors", True),
    "sae_features": Area("sae_features", "sae_features", 1024, "SAE features of prompts already stepped", False),
}


@dataclass(frozen=True)
class Entry:
    path: Path
    bytes: int
    last_used: float


def area(name: str) -> Area:
    if name not in AREAS:
        raise InputError(f'Unknown cache "{name}"; caches: {", ".join(AREAS)}.')
    return AREAS[name]


def area_path(name: str) -> Path:
    return cache_dir() / area(name).subdir


def budget_bytes(name: str) -> int:
    """The area's budget: TOKEN_EXPLORER_CACHE_MB_<NAME> (MB) or its default."""
    a = area(name)
    raw = os.environ.get(f"TOKEN_EXPLORER_CACHE_MB_{name.upper()}")
    try:
        mb = float(raw) if raw is not None else a.default_mb
    except ValueError:
        mb = a.default_mb
    return int(max(0.0, mb) * 2**20)


def _tree_bytes(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    total = 0
    for root, _dirs, files in os.walk(path):
        for f in files:
            try:
                total += os.lstat(os.path.join(root, f)).st_size
            except OSError:
                pass
    return total


def entries(name: str, directory: Path | None = None) -> list[Entry]:
    """The area's entries, least recently used first (temporaries of running writes excluded)."""
    a = area(name)
    root = Path(directory) if directory is not None else area_path(name)
    if not root.is_dir():
        return []
    if a.entry_is_dir:
        paths = [p for p in root.iterdir() if p.is_dir() and ".tmp-" not in p.name]
    else:
        paths = [p for p in root.glob("*/*.safetensors") if p.is_file()]
    out = []
    for p in paths:
        try:
            out.append(Entry(p, _tree_bytes(p), p.stat().st_mtime))
        except OSError:  # deleted by another process meanwhile
            continue
    return sorted(out, key=lambda e: e.last_used)


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        try:
            path.unlink()
        except OSError:
            pass


def enforce_budget(name: str, keep: set[Path] = frozenset(), directory: Path | None = None,
                   budget: int | None = None) -> list[Path]:
    """Delete least recently used entries until the area fits its budget; returns what went."""
    limit = budget_bytes(name) if budget is None else budget
    found = entries(name, directory)
    total = sum(e.bytes for e in found)
    keep = {Path(k) for k in keep}
    removed = []
    for e in found:
        if total <= limit:
            break
        if e.path in keep:
            continue
        _remove(e.path)
        total -= e.bytes
        removed.append(e.path)
    return removed


def clear(name: str | None = None) -> int:
    """Delete every entry of one area (or of all); returns the bytes freed."""
    freed = 0
    for n in [name] if name else list(AREAS):
        for e in entries(n):
            _remove(e.path)
            freed += e.bytes
        if n == "converted":  # interrupted conversions too
            for tmp in area_path(n).glob("*.tmp-*") if area_path(n).is_dir() else []:
                freed += _tree_bytes(tmp)
                _remove(tmp)
    return freed


def summary() -> list[dict]:
    """One dict per area: name, what, path, entries, bytes, budget_bytes (the `cache` command)."""
    out = []
    for n, a in AREAS.items():
        found = entries(n)
        out.append({"name": n, "what": a.what, "path": str(area_path(n)), "entries": len(found),
                    "bytes": sum(e.bytes for e in found), "budget_bytes": budget_bytes(n)})
    return out
