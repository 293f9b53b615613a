"""RemoteTrace: one token sequence scored by a server, grown and shrunk incrementally.

Per position ``p`` we keep the server's top-k of the token at ``p + 1`` (a ``Distribution``)
and per token ``i >= 1`` its exact log-probability ``log p(ids[i] | ids[:i])``. Appending
a token costs one request (the new last position's top-k), plus one more only when the
token was not in the previous top-k; popping costs nothing. Never imports Textual or Rich.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from explorer.engine.remote.dialects import Distribution
from explorer.errors import InputError

if TYPE_CHECKING:
    from explorer.engine.remote.engine import RemoteEngine


class RemoteTrace:
    """Not thread-safe: callers hold ``engine.lock``."""

    def __init__(self, engine: "RemoteEngine") -> None:
        self.engine = engine
        self.ids: list[int] = []
        self.dists: list[Distribution | None] = []
        """Per position p: the top-k that predicts ids[p + 1] (None until asked for)."""
        self.logps: list[float | None] = []
        """Per token i: log p(ids[i] | ids[:i]); None for i = 0."""

    def __len__(self) -> int:
        return len(self.ids)

    def sync(self, target) -> None:
        target = [int(t) for t in target]
        common = 0
        for a, b in zip(self.ids, target):
            if a != b:
                break
            common += 1
        del self.ids[common:], self.dists[common:], self.logps[common:]
        self.extend(target[common:])

    def extend(self, new_ids: list[int]) -> None:
        if not new_ids:
            return
        e = self.engine
        if e.context_length and len(self.ids) + len(new_ids) > e.context_length:
            raise InputError(f"The prompt would be {len(self.ids) + len(new_ids)} tokens, past the served "
                             f"model's context of {e.context_length}.")
        start = len(self.ids)
        try:
            self._extend(start, new_ids)
        except BaseException:
            # A server that fails mid-way (gone, timed out) leaves the trace as it was, so the
            # next compute asks again instead of reading half-filled positions.
            self.truncate(start)
            raise

    def _extend(self, start: int, new_ids: list[int]) -> None:
        e = self.engine
        self.ids.extend(new_ids)
        self.dists.extend([None] * len(new_ids))
        self.logps.extend([None] * len(new_ids))
        # Tokens whose probability the top-k we already hold answers need no request.
        first_unknown = None
        for i in range(max(1, start), len(self.ids)):
            known = self.dists[i - 1].logprob_of(self.ids[i]) if self.dists[i - 1] is not None else None
            if known is None:
                first_unknown = i
                break
            self.logps[i] = known
        if first_unknown is not None:
            for offset, dist in enumerate(e.dialect.prompt_distributions(self.ids, first_unknown, e.top_k)):
                i = first_unknown + offset
                self.dists[i - 1] = dist
                self.logps[i] = dist.chosen_logprob
        self.dists[-1] = e.dialect.distribution(self.ids, e.top_k)

    def clone(self) -> "RemoteTrace":
        """An independent copy (a duplicated prompt): plain lists, no request."""
        other = RemoteTrace(self.engine)
        other.ids, other.dists, other.logps = list(self.ids), list(self.dists), list(self.logps)
        return other

    def truncate(self, n: int) -> None:
        """Keep the first ``n`` tokens: no request, the kept numbers stay valid."""
        del self.ids[n:], self.dists[n:], self.logps[n:]

    def actual_logp(self, i: int) -> float | None:
        return self.logps[i]

    def last_distribution(self) -> Distribution:
        dist = self.dists[-1]
        if dist is None:  # extend() always fills it; a bug if not
            raise RuntimeError("remote trace lost the distribution of its last position")
        return dist
