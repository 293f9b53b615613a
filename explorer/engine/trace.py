"""Trace: one token sequence, its KV cache and per-position results, grown and shrunk incrementally.

Appending a token is one one-token forward pass against the cache; popping crops the
cache. Per position ``p`` (the distribution over the token at ``p + 1``) we keep scalars
and the top-k, never a whole vocabulary row, except for a few of the most recent
positions so that a pop does not need a forward pass. Never imports Textual or Rich.

Indexing convention used everywhere:
    ids[i]            token i of the sequence
    logsumexp[p] ...  numbers of the distribution computed at position p, which predicts ids[p + 1]
    actual_logp[i]    log p(ids[i] | ids[:i]) for i >= 1 (None for i = 0: nothing predicts the first token)
"""

from __future__ import annotations

import copy
from collections import OrderedDict
from typing import Callable

import torch

from explorer.engine.model import ModelWrapper
from explorer.engine.recorder import Recorder
from explorer.engine.stats import row_stats
from explorer.errors import InputError

RECENT_ROWS = 8  # full logits rows kept for the last positions (a pop then costs nothing)


class Trace:
    """The cached computation of one token sequence. Not thread-safe: callers hold ``wrapper.lock``."""

    def __init__(self, wrapper: ModelWrapper, *, record: bool = False) -> None:
        """``record=True``: the forwards record what the research modes read (the app's prompts, not work traces)."""
        self.w = wrapper
        self.ids: list[int] = []
        self.cache = wrapper.new_cache()
        # per position p (the distribution that predicts ids[p+1])
        self.logsumexp: list[float] = []
        self.entropy: list[float] = []  # nats
        self.varentropy: list[float] = []  # nats^2
        self.logit_mean: list[float] = []
        self.logit_std: list[float] = []
        self.top_ids: list[torch.Tensor] = []  # each [k]
        self.top_logits: list[torch.Tensor] = []  # each [k]
        # per token i (None for i = 0)
        self.actual_logit: list[float | None] = []
        self.actual_rank: list[int | None] = []
        self._rows: OrderedDict[int, torch.Tensor] = OrderedDict()  # position -> logits [vocab]
        self.forward_calls = 0  # counted for tests and the benchmark
        self.recorder = Recorder(self, enabled=record)  # what the research modes read, recorded by these forwards

    def __len__(self) -> int:
        return len(self.ids)

    # --------------------------------------------------------------- growth
    def extend(self, new_ids: list[int],
               on_logits: Callable[[int, torch.Tensor], None] | None = None) -> None:
        """Append tokens: a forward pass over just the new ones, in chunks that bound memory.

        ``on_logits(first_index, logits [n, vocab])`` sees each chunk's full rows before they
        are dropped (a two-model comparison needs every row, the trace keeps only the last few).
        """
        if not new_ids:
            return
        if len(self.ids) + len(new_ids) > self.w.context_length:
            raise InputError(
                f"The prompt would be {len(self.ids) + len(new_ids)} tokens, past the model's "
                f"context of {self.w.context_length}."
            )
        step = self.w.chunk_size
        for start in range(0, len(new_ids), step):
            chunk = [int(t) for t in new_ids[start : start + step]]
            with self.recorder.recording(self.cache, len(self.ids), len(chunk)):
                logits = self.w.forward(chunk, self.cache)  # [n, vocab]
            self.forward_calls += 1
            first_index = len(self.ids)
            self._absorb(chunk, logits)
            if on_logits is not None:
                on_logits(first_index, logits)

    def _absorb(self, chunk: list[int], logits: torch.Tensor) -> None:
        """Record stats of new rows and the actual-token numbers they imply."""
        first_new = len(self.ids)
        # The row before this chunk predicts the chunk's first token.
        prev_row = self._rows.get(first_new - 1)
        stats = row_stats(logits)
        self.ids.extend(chunk)
        for j, tok in enumerate(chunk):
            i = first_new + j
            if i == 0:
                self.actual_logit.append(None)
                self.actual_rank.append(None)
            else:
                row = prev_row if j == 0 else logits[j - 1]
                if row is None:  # cannot happen while rows are kept for the last position
                    raise RuntimeError("trace lost the logits row of its last position")
                value = row[tok]
                self.actual_logit.append(float(value))
                self.actual_rank.append(int((row > value).sum()) + 1)
        self.logsumexp.extend(stats.logsumexp.tolist())
        self.entropy.extend(stats.entropy.tolist())
        self.varentropy.extend(stats.varentropy.tolist())
        self.logit_mean.extend(stats.logit_mean.tolist())
        self.logit_std.extend(stats.logit_std.tolist())
        self.top_ids.extend(stats.top_ids.unbind(0))
        self.top_logits.extend(stats.top_logits.unbind(0))
        last = len(self.ids) - 1
        for j in range(max(0, len(chunk) - RECENT_ROWS), len(chunk)):
            self._rows[last - (len(chunk) - 1 - j)] = logits[j].clone()
        while len(self._rows) > RECENT_ROWS:
            self._rows.popitem(last=False)

    def truncate(self, n: int) -> None:
        """Keep the first ``n`` tokens (n >= 1). Crops the KV cache; at most one forward pass."""
        if n >= len(self.ids):
            return
        if n < 1:
            self.reset()
            return
        removed = len(self.ids) - n
        try:
            self.cache.crop(-removed)
        except Exception:  # a cache layer that cannot roll back: rebuild from scratch
            ids = self.ids[:n]
            self.reset()
            self.extend(ids)
            return
        self.drop_after(n)
        if (n - 1) not in self._rows:
            # Re-run the last kept token to recover its full row (one one-token pass).
            last = self.ids[-1]
            self.cache.crop(-1)
            self.recorder.crop(n - 1)
            with self.recorder.recording(self.cache, n - 1, 1):
                logits = self.w.forward([last], self.cache)
            self.forward_calls += 1
            self._rows[n - 1] = logits[-1].clone()

    def drop_after(self, n: int) -> None:
        """Forget the numbers of every position from ``n`` on (the caller crops the cache)."""
        del self.ids[n:]
        self.recorder.crop(n)
        for lst in (self.logsumexp, self.entropy, self.varentropy, self.logit_mean, self.logit_std,
                    self.top_ids, self.top_logits, self.actual_logit, self.actual_rank):
            del lst[n:]
        for pos in [p for p in self._rows if p >= n]:
            del self._rows[pos]

    def reset(self) -> None:
        self.__init__(self.w, record=self.recorder.enabled)

    def sync(self, target: list[int] | tuple[int, ...]) -> None:
        """Make this trace hold exactly ``target``: keep the common prefix, crop, extend."""
        common = 0
        for a, b in zip(self.ids, target):
            if a != b:
                break
            common += 1
        if common < len(self.ids):
            if common == 0:
                self.reset()
            else:
                self.truncate(common)
        self.extend(list(target[common:]))

    def clone(self) -> "Trace":
        """An independent copy (its own KV cache), for a duplicated prompt."""
        other = copy.copy(self)
        other.cache = copy.deepcopy(self.cache)
        for name in ("ids", "logsumexp", "entropy", "varentropy", "logit_mean", "logit_std",
                     "top_ids", "top_logits", "actual_logit", "actual_rank"):
            setattr(other, name, list(getattr(self, name)))
        other._rows = OrderedDict(self._rows)
        other.forward_calls = 0
        other.recorder = self.recorder.copy_into(other)
        return other

    # -------------------------------------------------------------- reading
    def last_row(self) -> torch.Tensor:
        """Full next-token logits ``[vocab]`` after the last token."""
        return self._rows[len(self.ids) - 1]

    def actual_logp(self, i: int) -> float | None:
        """log p(ids[i] | ids[:i]); None for the first token."""
        logit = self.actual_logit[i]
        return None if logit is None else logit - self.logsumexp[i - 1]
