"""Stepping with interventions: baseline and intervened as ONE batch of two over a two-row KV cache.

Row 0 of every forward pass is the untouched model, row 1 the intervened one (the hooks
change only row 1 while this stepper runs), so a keystroke costs one forward pass of batch
two instead of two passes. The cache holds both rows' keys and values, grows by the new
tokens and is cropped on a pop, like :class:`~explorer.engine.trace.Trace`. When the
interventions change, their effect may reach back to earlier positions, so the pair is
recomputed once over the whole prompt and then steps incrementally again.

Per position ``p`` it keeps ``KL(p_int ‖ p_base)`` of the next-token distributions (nats,
SCIENCE.md 5.11); the two row-traces keep everything a StepView needs. Callers hold
``wrapper.lock``. Never imports Textual or Rich.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from explorer.engine.interventions.hooks import InterventionHooks
from explorer.engine.trace import RECENT_ROWS, Trace
from explorer.errors import InputError


def kl_rows(logits_p: torch.Tensor, logits_q: torch.Tensor) -> torch.Tensor:
    """``KL(p ‖ q) = Σ p (log p − log q)`` per row of logits ``[n, V]`` -> ``[n]`` nats (float32)."""
    lp = torch.log_softmax(logits_p.float(), dim=-1)  # [n, V]
    lq = torch.log_softmax(logits_q.float(), dim=-1)  # [n, V]
    p = lp.exp()
    terms = torch.where(p > 0, p * (lp - lq), torch.zeros_like(p))
    return terms.sum(-1).clamp_min(0.0)  # rounding can give -1e-9


class PairedTrace:
    """Baseline and intervened numbers of one token list, stepped together.

    Args:
        wrapper: the ModelWrapper.
        hooks: the installed InterventionHooks of the session (their ``rows`` are set to
            the intervened row only while this runs).
    """

    def __init__(self, wrapper, hooks: InterventionHooks) -> None:
        self.w = wrapper
        self.hooks = hooks
        self.fingerprint = hooks.fingerprint
        self.base = Trace(wrapper)  # numbers only: the shared cache below is the one that runs
        self.intervened = Trace(wrapper)
        self.cache = wrapper.new_cache()
        self.kl: list[float] = []  # per position p: KL(p_int ‖ p_base) of the distribution predicting p+1
        self.forward_calls = 0
        self.rebuilds = 0

    @property
    def ids(self) -> list[int]:
        return self.base.ids

    def __len__(self) -> int:
        return len(self.base.ids)

    def _forward(self, chunk: list[int]) -> torch.Tensor:
        """One batch-of-two pass over ``chunk`` after the cache -> logits ``[2, n, V]`` float32 CPU."""
        with self.w.lock, torch.inference_mode():
            input_ids = torch.tensor([chunk, chunk], dtype=torch.long, device=self.w.device)  # [2, n]
            previous = self.hooks.rows
            self.hooks.rows = (1,)
            try:
                out = self.w.model(input_ids=input_ids, past_key_values=self.cache, use_cache=True)
            finally:
                self.hooks.rows = previous
            self.forward_calls += 1
            return out.logits.float().cpu()  # [2, n, V]

    def extend(self, new_ids: list[int]) -> None:
        if not new_ids:
            return
        if len(self) + len(new_ids) > self.w.context_length:
            raise InputError(f"The prompt would be {len(self) + len(new_ids)} tokens, past the model's "
                             f"context of {self.w.context_length}.")
        # Two rows and a KL pass per chunk: half the logits budget of a single trace.
        step = max(1, self.w.chunk_size // 2)
        for start in range(0, len(new_ids), step):
            chunk = [int(t) for t in new_ids[start:start + step]]
            logits = self._forward(chunk)  # [2, n, V]
            self.base._absorb(chunk, logits[0])
            self.intervened._absorb(chunk, logits[1])
            self.kl.extend(kl_rows(logits[1], logits[0]).tolist())

    def reset(self) -> None:
        calls, rebuilds = self.forward_calls, self.rebuilds
        self.__init__(self.w, self.hooks)
        self.forward_calls, self.rebuilds = calls, rebuilds

    def truncate(self, n: int) -> None:
        """Keep the first ``n`` tokens: crop both cache rows; at most one pair pass."""
        if n >= len(self):
            return
        if n < 1:
            self.reset()
            return
        removed = len(self) - n
        try:
            self.cache.crop(-removed)
        except Exception:  # a cache that cannot roll back: rebuild
            ids = self.ids[:n]
            self.reset()
            self.extend(ids)
            return
        self.base.drop_after(n)
        self.intervened.drop_after(n)
        del self.kl[n:]
        if (n - 1) not in self.base._rows:
            last = self.ids[-1]
            self.cache.crop(-1)
            logits = self._forward([last])  # [2, 1, V]
            self.base._rows[n - 1] = logits[0, -1].clone()
            self.intervened._rows[n - 1] = logits[1, -1].clone()

    def sync(self, target) -> None:
        """Hold exactly ``target`` under the current interventions (recomputed once if they changed)."""
        if self.hooks.fingerprint != self.fingerprint:
            self.reset()
            self.rebuilds += 1
        common = 0
        for a, b in zip(self.ids, target):
            if a != b:
                break
            common += 1
        if common < len(self):
            if common == 0:
                self.reset()
            else:
                self.truncate(common)
        self.extend(list(target[common:]))


# ------------------------------------------------------------------- the view
@dataclass(frozen=True)
class EffectRow:
    """One next-token candidate with and without the interventions."""

    id: int
    text: str
    base_p: float
    int_p: float
    delta_p: float
    """int_p − base_p."""
    base_logprob: float
    int_logprob: float


@dataclass(frozen=True)
class EffectView:
    """What the table and the effect mode show while interventions are on (plain numbers only)."""

    rows: tuple[EffectRow, ...]
    """The most likely next tokens of the intervened model, with their baseline numbers."""
    baseline_rows: tuple[EffectRow, ...]
    """The most likely next tokens of the untouched model, with their intervened numbers."""
    kl_next: float
    """KL(p_int ‖ p_base) of the next-token distribution, nats."""
    kl_per_token: tuple[float, ...]
    """KL of the distribution computed at each prompt token (predicting the one after), nats."""
    interventions: tuple[str, ...]


def _rows(order: torch.Tensor, lp_base: torch.Tensor, lp_int: torch.Tensor, render) -> tuple[EffectRow, ...]:
    out = []
    for i in order.tolist():
        b, t = float(lp_base[i]), float(lp_int[i])
        out.append(EffectRow(int(i), render(int(i)).text, math.exp(b), math.exp(t), math.exp(t) - math.exp(b), b, t))
    return tuple(out)


def build_effect(paired: PairedTrace, top_n: int) -> EffectView:
    """Read a synced PairedTrace into an EffectView with ``top_n`` rows each way."""
    lp_base = torch.log_softmax(paired.base.last_row().float(), dim=-1)  # [V]
    lp_int = torch.log_softmax(paired.intervened.last_row().float(), dim=-1)  # [V]
    k = min(top_n, lp_int.shape[-1])
    render = paired.w.token_text
    return EffectView(
        rows=_rows(torch.topk(lp_int, k).indices, lp_base, lp_int, render),
        baseline_rows=_rows(torch.topk(lp_base, k).indices, lp_base, lp_int, render),
        kl_next=paired.kl[-1], kl_per_token=tuple(paired.kl),
        interventions=tuple(i.describe() for i in paired.hooks.items),
    )
