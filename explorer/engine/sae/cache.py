"""Two-level cache of PromptFeatures: a bounded in-memory LRU, then safetensors files on disk.

Key = sha256 of (model name, SAE file fingerprint, hook, layer, token ids, format version),
so a changed SAE file, another model or another prompt never reuses an entry. Disk entries
live in ``explorer.paths.cache_dir() / "sae_features"``; they are written under a temporary
name and renamed, and an entry that cannot be read back (truncated, corrupt, old version)
is deleted and recomputed, never an error. The disk level keeps to a byte budget with LRU
eviction (explorer/io/cache_budget.py). Never imports Textual or Rich.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch

from explorer.engine.sae.features import PromptFeatures, SparseRows
from explorer.io.atomic import atomic_file

CACHE_VERSION = 1
log = logging.getLogger(__name__)


def cache_key(model: str, sae_fingerprint: str, hook: str, layer: int, ids) -> str:
    payload = json.dumps([CACHE_VERSION, model, sae_fingerprint, hook, int(layer), [int(i) for i in ids]])
    return hashlib.sha256(payload.encode()).hexdigest()


def _rows_tensors(prefix: str, rows: SparseRows) -> dict[str, torch.Tensor]:
    return {f"{prefix}offsets": torch.from_numpy(rows.offsets.astype(np.int64)),
            f"{prefix}indices": torch.from_numpy(rows.indices.astype(np.int64)),
            f"{prefix}values": torch.from_numpy(rows.values.astype(np.float32))}


def _rows_from(t: dict[str, torch.Tensor], prefix: str, truncated: bool) -> SparseRows:
    rows = SparseRows(t[f"{prefix}offsets"].numpy(), t[f"{prefix}indices"].numpy(), t[f"{prefix}values"].numpy(), truncated)
    if rows.offsets[0] != 0 or rows.offsets[-1] != len(rows.indices) or len(rows.indices) != len(rows.values):
        raise ValueError("inconsistent sparse rows")
    return rows


def to_file(pf: PromptFeatures, path: Path) -> None:
    from safetensors.torch import save_file

    tensors = {**_rows_tensors("", pf.rows), "l0": torch.from_numpy(pf.l0.astype(np.int64)),
               "sq_err": torch.from_numpy(pf.sq_err.astype(np.float32))}
    for layer, rows in pf.sources.items():
        tensors.update(_rows_tensors(f"src{layer}.", rows))
    meta = {"version": CACHE_VERSION, "layer": pf.layer, "hook_in": pf.hook_in, "hook_out": pf.hook_out,
            "d_sae": pf.d_sae, "variance": pf.variance, "prompt_fvu": pf.prompt_fvu,
            "truncated": pf.rows.truncated, "sources": sorted(pf.sources), "notes": list(pf.notes)}
    with atomic_file(path) as tmp:
        save_file({k: v.contiguous() for k, v in tensors.items()}, str(tmp), metadata={"meta": json.dumps(meta)})


def from_file(path: Path) -> PromptFeatures:
    """Read an entry back; raises (any exception) when it is not a complete entry of this version."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt", device="cpu") as f:
        meta = json.loads(f.metadata()["meta"])
        if meta.get("version") != CACHE_VERSION:
            raise ValueError("old cache version")
        t = {k: f.get_tensor(k) for k in f.keys()}
    rows = _rows_from(t, "", bool(meta["truncated"]))
    l0 = t["l0"].numpy()
    if len(l0) != rows.n_tokens or len(t["sq_err"]) != rows.n_tokens:
        raise ValueError("inconsistent entry")
    return PromptFeatures(
        layer=int(meta["layer"]), hook_in=meta["hook_in"], hook_out=meta["hook_out"], d_sae=int(meta["d_sae"]),
        rows=rows, l0=l0, sq_err=t["sq_err"].numpy(), variance=meta["variance"], prompt_fvu=meta["prompt_fvu"],
        sources={int(i): _rows_from(t, f"src{int(i)}.", False) for i in meta["sources"]},
        notes=tuple(meta.get("notes", ())),
    )


class FeatureCache:
    """Memory LRU (``capacity`` prompts) in front of a disk directory (None: memory only).

    Thread-safe: the app's workers and the UI thread may both ask.
    """

    def __init__(self, capacity: int = 100, directory: Path | None = None, budget: int | None = None) -> None:
        self.capacity = max(1, int(capacity))
        self.directory = Path(directory) if directory is not None else None
        self.budget = budget
        """Disk bytes (None: the sae_features budget of explorer/io/cache_budget.py)."""
        self._written = 1 << 62  # the first put checks the budget (a cache left over-full by an older version)
        self._mem: OrderedDict[str, PromptFeatures] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = {"memory": 0, "disk": 0, "miss": 0, "corrupt": 0}

    def _path(self, key: str) -> Path | None:
        return None if self.directory is None else self.directory / key[:2] / f"{key}.safetensors"

    def get(self, key: str) -> PromptFeatures | None:
        with self._lock:
            pf = self._mem.get(key)
            if pf is not None:
                self._mem.move_to_end(key)
                self.hits["memory"] += 1
                return pf
        path = self._path(key)
        if path is not None and path.is_file():
            try:
                pf = from_file(path)
            except Exception as exc:  # a corrupt or stale entry: drop it and recompute
                log.info("dropping unreadable SAE cache entry %s: %s", path, exc)
                self.hits["corrupt"] += 1
                try:
                    path.unlink()
                except OSError:
                    pass
            else:
                self.hits["disk"] += 1
                try:
                    os.utime(path)  # most recently used: evicted last (explorer/io/cache_budget.py)
                except OSError:
                    pass
                self._remember(key, pf)
                return pf
        self.hits["miss"] += 1
        return None

    def _remember(self, key: str, pf: PromptFeatures) -> None:
        with self._lock:
            self._mem[key] = pf
            self._mem.move_to_end(key)
            while len(self._mem) > self.capacity:
                self._mem.popitem(last=False)

    def put(self, key: str, pf: PromptFeatures) -> None:
        self._remember(key, pf)
        path = self._path(key)
        if path is not None:
            try:
                to_file(pf, path)
            except Exception as exc:  # a full or read-only disk costs the disk level only
                log.warning("could not write SAE cache entry %s: %s", path, exc)
                return
            self._enforce_budget(path)

    def _enforce_budget(self, written: Path) -> None:
        """Evict least recently used entries once the bytes written since the last check reach
        a twentieth of the budget, so a long prompt cannot grow the cache without bound and a
        put does not list the directory every time."""
        from explorer.io.cache_budget import budget_bytes, enforce_budget

        budget = self.budget if self.budget is not None else budget_bytes("sae_features")
        try:
            self._written += written.stat().st_size
        except OSError:
            return
        if self._written >= budget / 20:
            self._written = 0
            enforce_budget("sae_features", keep={written}, directory=self.directory, budget=budget)

    def clear_memory(self) -> None:
        with self._lock:
            self._mem.clear()
