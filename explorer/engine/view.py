"""The immutable snapshot the UI, the commands and the tests read after each step.

A StepView is built from a Trace once the model work is done; it holds plain Python
numbers only, so a widget can render it without touching torch. Never imports Textual or Rich.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from typing import TYPE_CHECKING

from explorer.engine.tokens import TokenText

if TYPE_CHECKING:  # torch stays out of the UI's import path until the model is loaded
    from explorer.engine.interventions.paired import EffectView
    from explorer.engine.trace import Trace

LN2 = math.log(2.0)


@dataclass(frozen=True)
class TokenInfo:
    """One token of the prompt, with the numbers of the distribution it was drawn from."""

    index: int
    id: int
    text: TokenText
    prob: float | None
    """p(token | tokens before it); None for the first token (nothing predicts it)."""
    logprob: float | None
    logit: float | None
    zscore: float | None
    """(logit - mean logit) / std of the logits at the previous position."""
    rank: int | None
    """1 = the most likely token at that position."""
    entropy_bits: float | None
    """Entropy of the distribution this token was drawn from, in bits."""
    varentropy_bits: float | None
    """Varentropy of that distribution, in bits squared."""
    energy: float | None
    """Energy score -logsumexp(logits) of that distribution (T = 1), in nats."""


@dataclass(frozen=True)
class Candidate:
    """One row of the next-token table."""

    rank: int
    id: int
    text: TokenText
    prob: float
    logprob: float
    logit: float | None
    """None where the engine has no logits (a remote engine sees log-probabilities only)."""
    zscore: float | None


@dataclass(frozen=True)
class StepView:
    uid: int
    ids: tuple[int, ...]
    tokens: tuple[TokenInfo, ...]
    candidates: tuple[Candidate, ...]
    next_entropy_bits: float
    """Exact entropy of the next-token distribution, or, when ``entropy_is_lower_bound``, the
    entropy of the covered top-k part only (a remote engine; SCIENCE 5.13)."""
    next_varentropy_bits: float | None
    next_energy: float | None
    """None where the engine has no logits (a remote engine)."""
    vocab_size: int
    notes: tuple[str, ...] = field(default_factory=tuple)
    effect: "EffectView | None" = None
    """While interventions are on: baseline vs intervened numbers (the rest of the view is intervened)."""
    covered_mass: float | None = None
    """Probability mass the table's rows cover (remote engine); None = the whole vocabulary was seen."""
    entropy_is_lower_bound: bool = False

    @property
    def n_tokens(self) -> int:
        return len(self.ids)


def build_view(trace: "Trace", top_n: int, uid: int = 0, notes: tuple[str, ...] = ()) -> StepView:
    """Read a synced trace into a StepView with the ``top_n`` most likely next tokens."""
    import torch

    render = trace.w.token_text
    tokens: list[TokenInfo] = []
    for i, tid in enumerate(trace.ids):
        if i == 0:
            tokens.append(TokenInfo(0, tid, render(tid), None, None, None, None, None, None, None, None))
            continue
        p = i - 1
        logit = trace.actual_logit[i]
        logp = logit - trace.logsumexp[p]
        std = trace.logit_std[p]
        tokens.append(TokenInfo(
            index=i, id=tid, text=render(tid), prob=math.exp(logp), logprob=logp, logit=logit,
            zscore=(logit - trace.logit_mean[p]) / std if std > 0 else 0.0,
            rank=trace.actual_rank[i],
            entropy_bits=trace.entropy[p] / LN2,
            varentropy_bits=trace.varentropy[p] / (LN2 * LN2),
            energy=-trace.logsumexp[p],
        ))
    last = len(trace.ids) - 1
    row = trace.last_row()  # [vocab]
    top = torch.topk(row, k=min(top_n, row.shape[-1]))
    lse = trace.logsumexp[last]
    mean, std = trace.logit_mean[last], trace.logit_std[last]
    candidates = tuple(
        Candidate(rank=r + 1, id=int(i), text=render(int(i)), prob=math.exp(float(v) - lse),
                  logprob=float(v) - lse, logit=float(v), zscore=(float(v) - mean) / std if std > 0 else 0.0)
        for r, (v, i) in enumerate(zip(top.values.tolist(), top.indices.tolist()))
    )
    return StepView(
        uid=uid, ids=tuple(trace.ids), tokens=tuple(tokens), candidates=candidates,
        next_entropy_bits=trace.entropy[last] / LN2,
        next_varentropy_bits=trace.varentropy[last] / (LN2 * LN2),
        next_energy=-lse, vocab_size=row.shape[-1], notes=notes,
    )
