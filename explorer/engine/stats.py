"""Per-position numbers computed from a row of next-token logits (see SCIENCE.md 5.3, 5.4).

All from one softmax in float32: entropy and varentropy in nats (the UI converts to bits),
the energy score ``E = -T·logsumexp(z/T)`` at T = 1, logit mean and standard deviation
(for z-scores), and the top-k. Never imports Textual or Rich.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

TOP_K_STORED = 20  # alternatives kept per position (compact: never a full-vocabulary row)


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
    """Compute RowStats for logits ``[n, vocab]`` (float32)."""
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
