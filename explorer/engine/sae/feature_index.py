"""The local feature index: each feature's top-activating contexts, in one SQLite file.

Written by ``main.py sae train`` beside the SAE (``feature_index.sqlite``) and read by the
features mode as the label of a feature when no Neuronpedia explanations are configured.

Schema (version 1)::

    meta(key TEXT PRIMARY KEY, value TEXT)           model, hook, d_sae, tokens_scanned, schema_version
    features(feature INTEGER PRIMARY KEY,            frequency = share of scanned tokens where active
             frequency REAL, max_activation REAL)
    contexts(feature INTEGER, rank INTEGER,          rank 0 = the strongest context
             activation REAL, before TEXT, token TEXT, after TEXT, PRIMARY KEY (feature, rank))

The file is built under a temporary name and renamed into place, so a reader never sees
half of one. Stdlib + numpy only.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from explorer.engine.sae.base import SaeLoadError
from explorer.io.atomic import atomic_file

SCHEMA_VERSION = 1
INDEX_FILE = "feature_index.sqlite"


@dataclass(frozen=True)
class Context:
    activation: float
    before: str
    token: str
    after: str

    def render(self, width: int = 60) -> str:
        """``…text before[token]after…`` trimmed to about ``width`` characters."""
        before = self.before.replace("\n", "⏎")[-(width // 2):]
        after = self.after.replace("\n", "⏎")[: width // 4]
        return f"…{before}[{self.token.replace(chr(10), '⏎')}]{after}…"


class TopContexts:
    """Streaming accumulator of each feature's ``top_n`` strongest (document, position) hits.

    Args:
        d_sae: number of features.
        top_n: contexts kept per feature.
    """

    def __init__(self, d_sae: int, top_n: int = 8) -> None:
        self.d_sae, self.top_n = d_sae, top_n
        self.counts = np.zeros(d_sae, dtype=np.int64)
        self.max_act = np.zeros(d_sae, dtype=np.float64)
        self.tokens_seen = 0
        self._feat = np.zeros(0, dtype=np.int64)
        self._act = np.zeros(0, dtype=np.float32)
        self._doc = np.zeros(0, dtype=np.int64)
        self._pos = np.zeros(0, dtype=np.int64)

    def add(self, doc: np.ndarray, pos: np.ndarray, feat: np.ndarray, act: np.ndarray, n_tokens: int) -> None:
        """Record non-zero activations (parallel 1-D arrays) seen over ``n_tokens`` new tokens."""
        self.tokens_seen += int(n_tokens)
        np.add.at(self.counts, feat, 1)
        np.maximum.at(self.max_act, feat, act)
        self._feat = np.concatenate([self._feat, feat.astype(np.int64)])
        self._act = np.concatenate([self._act, act.astype(np.float32)])
        self._doc = np.concatenate([self._doc, doc.astype(np.int64)])
        self._pos = np.concatenate([self._pos, pos.astype(np.int64)])
        if len(self._feat) > 4 * self.d_sae * self.top_n:
            self._prune()

    def _prune(self) -> None:
        order = np.lexsort((-self._act, self._feat))  # by feature, strongest first
        f = self._feat[order]
        starts = np.searchsorted(f, f, side="left")
        keep = order[(np.arange(len(f)) - starts) < self.top_n]
        self._feat, self._act, self._doc, self._pos = (a[keep] for a in (self._feat, self._act, self._doc, self._pos))

    def best(self) -> dict[int, list[tuple[float, int, int]]]:
        """feature -> [(activation, doc, pos)] strongest first."""
        self._prune()
        out: dict[int, list[tuple[float, int, int]]] = {}
        order = np.lexsort((-self._act, self._feat))
        for i in order:
            out.setdefault(int(self._feat[i]), []).append((float(self._act[i]), int(self._doc[i]), int(self._pos[i])))
        return out


def write_index(path: Path, acc: TopContexts, docs: list[list[str]], meta: dict[str, str],
                window: tuple[int, int] = (12, 4), token_text: Callable[[str], str] | None = None) -> Path:
    """Write the accumulated contexts as a SQLite index at ``path`` (atomic replace).

    Args:
        path: target file.
        acc: the accumulator filled while scanning.
        docs: each document's token texts, indexed by the (doc, pos) pairs in ``acc``.
        meta: model, hook and anything else worth keeping.
        window: tokens kept before and after the activating token.
    """
    path = Path(path)
    with atomic_file(path) as tmp:
        con = sqlite3.connect(tmp)
        with con:
            con.execute("CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT)")
            con.execute("CREATE TABLE features(feature INTEGER PRIMARY KEY, frequency REAL, max_activation REAL)")
            con.execute("CREATE TABLE contexts(feature INTEGER, rank INTEGER, activation REAL, before TEXT, "
                        "token TEXT, after TEXT, PRIMARY KEY (feature, rank))")
            all_meta = {**meta, "schema_version": str(SCHEMA_VERSION), "d_sae": str(acc.d_sae),
                        "tokens_scanned": str(acc.tokens_seen)}
            con.executemany("INSERT INTO meta VALUES (?, ?)", [(k, str(v)) for k, v in all_meta.items()])
            seen = max(1, acc.tokens_seen)
            con.executemany("INSERT INTO features VALUES (?, ?, ?)",
                            [(f, float(acc.counts[f]) / seen, float(acc.max_act[f])) for f in range(acc.d_sae)])
            rows = []
            for feat, hits in acc.best().items():
                for rank, (act, doc, pos) in enumerate(hits):
                    toks = docs[doc]
                    rows.append((feat, rank, act, "".join(toks[max(0, pos - window[0]):pos]), toks[pos],
                                 "".join(toks[pos + 1:pos + 1 + window[1]])))
            con.executemany("INSERT INTO contexts VALUES (?, ?, ?, ?, ?, ?)", rows)
        con.close()
    return path


class FeatureIndex:
    """Read-only access to a feature index file (safe to use from a worker thread)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise SaeLoadError(f"Feature index {self.path} does not exist.")
        try:
            self._con = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, check_same_thread=False)
            self.meta = dict(self._con.execute("SELECT key, value FROM meta").fetchall())
        except sqlite3.Error as exc:
            raise SaeLoadError(f"{self.path} is not a feature index ({exc}).") from exc
        if self.meta.get("schema_version") != str(SCHEMA_VERSION):
            raise SaeLoadError(f"{self.path} has feature index schema {self.meta.get('schema_version')}, "
                               f"expected {SCHEMA_VERSION}; rebuild it with `main.py sae train --resume`.")

    def top_contexts(self, feature: int, limit: int = 5) -> list[Context]:
        rows = self._con.execute(
            "SELECT activation, before, token, after FROM contexts WHERE feature = ? ORDER BY rank LIMIT ?",
            (int(feature), int(limit))).fetchall()
        return [Context(float(a), b, t, f) for a, b, t, f in rows]

    def stats(self, feature: int) -> tuple[float, float] | None:
        """(frequency, max activation) of a feature, or None when it is not in the index."""
        row = self._con.execute("SELECT frequency, max_activation FROM features WHERE feature = ?",
                                (int(feature),)).fetchone()
        return None if row is None else (float(row[0]), float(row[1]))

    def summary(self, feature: int, n: int = 3) -> str | None:
        """A short label: the tokens the feature fires on most strongly, e.g. ``on ' Paris', ' London'``."""
        ctx = self.top_contexts(feature, limit=8)
        if not ctx:
            return None
        tokens = list(dict.fromkeys(repr(c.token) for c in ctx))[:n]
        return "top: " + ", ".join(tokens)

    def close(self) -> None:
        self._con.close()
