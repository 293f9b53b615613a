"""The numbers of a two-model comparison (SCIENCE.md 5.12), from rows of full logits.

Per position, for the distributions p_A and p_B of the two models over the whole vocabulary:
    KL(A‖B) = Σ p_A (log p_A − log p_B)   in nats (and KL(B‖A), so that swapping A and B is free)
    TV      = ½ Σ |p_A − p_B|
    top_a, top_b = argmax p_A, argmax p_B (the "same top" test)
The summary follows llama.cpp's ``perplexity --kl-divergence``: mean KL, the 90/99/99.9th
percentiles (linear interpolation between the two nearest sorted values, as llama.cpp does),
the maximum, and the share of positions whose top tokens agree.

Everything is computed in float64 from the float32 logits, so identical logits give exactly
0 and a model compared with itself gives KL 0 and 100 % agreement. Never imports Textual or Rich.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

_ROW_BLOCK = 32  # rows per block: a float64 [32, 256k] temporary is 64 MB even for Gemma


@dataclass
class PairRows:
    """Comparison numbers for n positions; every tensor is ``[n]``."""

    kl_ab: torch.Tensor  # float64, nats
    kl_ba: torch.Tensor  # float64, nats
    tv: torch.Tensor  # float64, in [0, 1]
    top_a: torch.Tensor  # long
    top_b: torch.Tensor  # long


def compare_rows(logits_a: torch.Tensor, logits_b: torch.Tensor) -> PairRows:
    """Compare two models' logits ``[n, vocab]`` row by row (same n, same vocabulary)."""
    if logits_a.shape != logits_b.shape:
        raise ValueError(f"logit shapes differ: {tuple(logits_a.shape)} vs {tuple(logits_b.shape)}")
    parts: list[tuple[torch.Tensor, ...]] = []
    for start in range(0, logits_a.shape[0], _ROW_BLOCK):
        za = logits_a[start:start + _ROW_BLOCK].double()  # [b, vocab]
        zb = logits_b[start:start + _ROW_BLOCK].double()  # [b, vocab]
        la, lb = torch.log_softmax(za, dim=-1), torch.log_softmax(zb, dim=-1)  # [b, vocab]
        pa, pb = la.exp(), lb.exp()
        diff = la - lb
        # 0·log 0 = 0: a token one model rules out (-inf logit) adds nothing to that side's sum.
        kl_ab = torch.where(pa > 0, pa * diff, torch.zeros_like(pa)).sum(-1)  # [b]
        kl_ba = torch.where(pb > 0, -pb * diff, torch.zeros_like(pb)).sum(-1)  # [b]
        tv = 0.5 * (pa - pb).abs().sum(-1)  # [b]
        # KL >= 0 (Gibbs); float64 rounding can leave -1e-17 on nearly equal rows.
        parts.append((kl_ab.clamp_min(0.0), kl_ba.clamp_min(0.0), tv,
                      logits_a[start:start + _ROW_BLOCK].argmax(-1), logits_b[start:start + _ROW_BLOCK].argmax(-1)))
    if not parts:
        empty = torch.zeros(0, dtype=torch.float64)
        return PairRows(empty, empty, empty, torch.zeros(0, dtype=torch.long), torch.zeros(0, dtype=torch.long))
    cols = [torch.cat(c) for c in zip(*parts)]
    return PairRows(*cols)


def percentile(sorted_values: list[float], fraction: float) -> float:
    """The ``fraction`` quantile of ascending values, interpolated linearly (llama.cpp's rule)."""
    if not sorted_values:
        raise ValueError("no values")
    if fraction <= 0:
        return sorted_values[0]
    if fraction >= 1:
        return sorted_values[-1]
    pos = fraction * (len(sorted_values) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    w = pos - lo
    return (1 - w) * sorted_values[lo] + w * sorted_values[hi]


@dataclass(frozen=True)
class ComparisonSummary:
    """llama.cpp's KL-divergence summary over the scored tokens (those with a distribution)."""

    tokens: int
    mean_kl: float
    p90_kl: float
    p99_kl: float
    p999_kl: float
    max_kl: float
    same_top: float
    """Fraction (0..1) of scored positions where argmax p_A = argmax p_B."""

    def to_json(self) -> dict:
        return {"tokens": self.tokens, "mean_kl": self.mean_kl, "p90_kl": self.p90_kl,
                "p99_kl": self.p99_kl, "p999_kl": self.p999_kl, "max_kl": self.max_kl,
                "same_top": self.same_top}


def summarize(kls: list[float], same_top: list[bool]) -> ComparisonSummary | None:
    """Summary of per-token KL values and top-token agreements; None when nothing was scored."""
    if not kls:
        return None
    ordered = sorted(kls)
    mean = math.fsum(kls) / len(kls)
    return ComparisonSummary(
        tokens=len(kls), mean_kl=mean, p90_kl=percentile(ordered, 0.90), p99_kl=percentile(ordered, 0.99),
        p999_kl=percentile(ordered, 0.999), max_kl=ordered[-1], same_top=sum(same_top) / len(same_top),
    )
