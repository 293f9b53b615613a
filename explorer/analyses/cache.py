"""Bounded LRU caches for lazy mode results and the forward-pass captures behind them.

``compute_mode`` is what the app's worker and the ``analyze`` command call: a cheap mode
is computed directly from the StepView; a lazy one is looked up by
(model name, token ids, mode, cursor, params) and computed on a miss. Captures (residual
stream, attention weights) are large, so they live in a second, much smaller LRU keyed by
the token ids: moving the cursor or changing a parameter reuses the same forward pass.
Thread-safe (one lock around the dictionaries, never around model work). Never imports
Textual or Rich.
"""

from __future__ import annotations

import threading
from dataclasses import replace
from collections import OrderedDict
from typing import Any, Callable, Hashable

from explorer.analyses.base import Analysis, AnalysisContext, ModeResult, missing_capabilities
from explorer.errors import AnalysisUnavailable

DEFAULT_CAPTURES = 2
"""Captures kept: at 500 tokens a residual capture of SmolLM2 is ~36 MB, with sub-layers ~140 MB."""


def _hashable(value: Any) -> Hashable:
    if isinstance(value, dict):
        return tuple(sorted((str(k), _hashable(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        return tuple(_hashable(v) for v in value)
    return value


class _Lru:
    def __init__(self, maxsize: int) -> None:
        self.maxsize = max(1, int(maxsize))
        self.data: OrderedDict[Hashable, Any] = OrderedDict()

    def get(self, key: Hashable) -> Any:
        if key in self.data:
            self.data.move_to_end(key)
            return self.data[key]
        return None

    def put(self, key: Hashable, value: Any) -> None:
        self.data[key] = value
        self.data.move_to_end(key)
        while len(self.data) > self.maxsize:
            self.data.popitem(last=False)


class ResultCache:
    """LRU of ModeResults (bounded by ``display.cache_size``) plus a small LRU of captures.

    Args:
        maxsize: how many mode results to keep (config ``display.cache_size``).
        captures: how many forward-pass captures to keep.
    """

    def __init__(self, maxsize: int = 100, captures: int = DEFAULT_CAPTURES) -> None:
        self._results = _Lru(maxsize)
        self._captures = _Lru(captures)
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0
        self.capture_builds = 0

    def __len__(self) -> int:
        return len(self._results.data)

    @property
    def maxsize(self) -> int:
        return self._results.maxsize

    def get(self, key: Hashable) -> ModeResult | None:
        with self._lock:
            value = self._results.get(key)
            if value is None:
                self.misses += 1
            else:
                self.hits += 1
            return value

    def put(self, key: Hashable, value: ModeResult) -> None:
        with self._lock:
            self._results.put(key, value)

    def capture(self, key: Hashable, build: Callable[[], Any]) -> Any:
        """The capture stored under ``key``, built (outside the lock) on a miss."""
        with self._lock:
            value = self._captures.get(key)
        if value is not None:
            return value
        value = build()
        with self._lock:
            self.capture_builds += 1
            self._captures.put(key, value)
        return value

    def clear(self) -> None:
        with self._lock:
            self._results.data.clear()
            self._captures.data.clear()


def result_key(analysis: Analysis, ctx: AnalysisContext) -> tuple:
    """(model name, ids, mode, cursor, params): what a lazy result depends on."""
    return (ctx.wrapper.name, tuple(ctx.view.ids), analysis.name, int(ctx.cursor), _hashable(ctx.params))


def compute_mode(analysis: Analysis, ctx: AnalysisContext, cache: ResultCache | None) -> ModeResult:
    """Compute a mode for the context, through the cache when the mode is lazy.

    Call it from a worker thread for lazy modes (they run the model under ``wrapper.lock``).
    AnalysisUnavailable and InputError propagate: the caller shows their sentence (also when the
    engine lacks a capability the mode ``requires``); engine.cancel.Cancelled propagates when
    ``ctx.should_stop`` asked the computation to stop.

    Args:
        analysis: a mode from ``ANALYSES``.
        ctx: the StepView, wrapper, cursor and params (its ``cache`` field is filled in here).
        cache: the session's ResultCache, or None to compute without caching.

    Returns:
        The ModeResult.
    """
    missing = missing_capabilities(analysis, ctx.wrapper)
    if missing:
        raise AnalysisUnavailable(f"Not available from this engine: needs {', '.join(missing)}.")
    if cache is not None and ctx.cache is not cache:
        ctx = replace(ctx, cache=cache)
    if not analysis.lazy or cache is None:
        return analysis.compute(ctx)
    key = result_key(analysis, ctx)
    found = cache.get(key)
    if found is not None:
        return found
    result = analysis.compute(ctx)
    cache.put(key, result)
    return result
