"""Per-position numbers computed from a row of next-token logits (see SCIENCE.md 5.3, 5.4).

All from one softmax in float32: entropy and varentropy in nats (the UI converts to bits),
the energy score ``E = -T·logsumexp(z/T)`` at T = 1, logit mean and standard deviation
(for z-scores), and the top-k. Never imports Textual or Rich.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

TOP_K_STORED = 20  # alternatives kept per position (compact: never a full-vocabulary row)
STATS_ROWS = 16
"""Rows per block: the softmax temporaries stay ~8 × 16 × vocab floats (25 MB at 49k) instead of
growing with a prefill chunk (341 rows of SmolLM2 made them ~540 MB, the app's peak memory)."""


@dataclass
class RowStats:
    """Numbers for a batch of rows; every tensor is ``[n]`` or ``[n, TOP_K_STORED]``."""

    logsumexp: torch.Tensor  # [n]
    entropy: torch.Tensor  # [n] nats
    varentropy: torch.Tensor  # [n] nats^2
    energy: torch.Tensor  # [n] = -logsumexp at T = 1
    logit_mean: torch.Tensor  # [n]
    logit_std: torch.Tensor  # [n]
    top_ids: torch.Tensor  # [n, k] long
    top_logits: torch.Tensor  # [n, k]


def row_stats(logits: torch.Tensor, k: int = TOP_K_STORED) -> RowStats:
    """Compute RowStats for logits ``[n, vocab]`` (float32), ``STATS_ROWS`` rows at a time."""
    if logits.shape[0] <= STATS_ROWS:
        return _block_stats(logits, k)
    blocks = [_block_stats(logits[s : s + STATS_ROWS], k) for s in range(0, logits.shape[0], STATS_ROWS)]
    return RowStats(*(torch.cat([getattr(b, f) for b in blocks]) for f in RowStats.__dataclass_fields__))


def _block_stats(logits: torch.Tensor, k: int) -> RowStats:
    z = logits.float()
    lse = torch.logsumexp(z, dim=-1)  # [n]
    logp = z - lse[:, None]  # [n, vocab]
    p = logp.exp()
    # 0·log 0 = 0: a -inf logit (masked token) must not turn the sum into NaN.
    plogp = torch.where(p > 0, p * logp, torch.zeros_like(p))
    entropy = -plogp.sum(-1)  # [n]
    dev = torch.where(p > 0, logp + entropy[:, None], torch.zeros_like(p))
    varentropy = (p * dev.square()).sum(-1)  # [n]
    finite = torch.isfinite(z)
    zf = torch.where(finite, z, torch.zeros_like(z))
    count = finite.sum(-1).clamp(min=1)
    mean = zf.sum(-1) / count
    var = torch.where(finite, (zf - mean[:, None]).square(), torch.zeros_like(z)).sum(-1) / count
    top = torch.topk(z, k=min(k, z.shape[-1]), dim=-1)
    return RowStats(lse, entropy, varentropy, -lse, mean, var.sqrt(), top.indices, top.values)


def energy(logits: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """Energy score ``E(x) = -T·logsumexp(z/T)`` (Liu et al. 2020) for logits ``[..., vocab]``."""
    return -temperature * torch.logsumexp(logits.float() / temperature, dim=-1)
