"""Integrated gradients by adaptive, geometrically graded quadrature, checked panel by panel.

Why not a fixed Gauss–Legendre rule: with a zero baseline the path ``e' + α(e − e')`` starts
at the origin, where a normalisation layer is singular. RMSNorm maps ``αe`` to
``αe / sqrt(α²·mean(e²) + ε)``, which jumps from 0 to its full value while α goes from 0 to a
few ``sqrt(ε / mean(e²))`` (≈ 0.002 on SmolLM2). Almost all of the integral then sits in a
sliver near α = 0 that 50 (or 400) evenly spread Gauss–Legendre nodes never sample.

What is done instead:
  * the interval [0, 1] is cut into panels graded geometrically towards α = 0
    (0, 10⁻⁶, 10⁻⁵ … 0.1, 1), so every scale of α gets nodes; each panel gets a
    ``NODES``-point Gauss–Legendre rule;
  * each panel's error is known exactly, not estimated: by the fundamental theorem of
    calculus the panel's integral of ``(e − e')·∇f`` must equal ``f(b) − f(a)`` (two forward
    passes). The panels with the largest error are halved (geometrically when they span
    more than a factor 4, else at the midpoint) until the completeness error
    ``|Σ IG − (f(e) − f(e'))| / |f(e) − f(e')|`` is at most the target or the budget of
    gradient evaluations is spent;
  * the best result seen (the smallest completeness error over all rounds) is returned,
    never a later worse one, with ``converged`` false when the target was not met.

All gradient evaluations of one round run as batches. Never imports Textual or Rich.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

from explorer.engine.cancel import check
from explorer.engine.gradients import ROWS_PER_BATCH, CompletenessGap, _log_prob, _value_and_grad

NODES = 4  # Gauss–Legendre nodes per panel (exact for polynomials of degree 7 on the panel)
FIRST_BREAK = 1e-6  # the first panel is [0, 1e-6]; decades up to 1 follow
ABS_TOLERANCE = 1e-6  # |δ| below this counts as converged even when f(e) ≈ f(e')


@dataclass
class _Panel:
    a: float
    b: float
    f_a: float
    f_b: float
    grad_sum: torch.Tensor  # [t, d]: Σ_k w_k (b − a) ∇f at the panel's nodes
    integral: float  # (e − e') · grad_sum, the panel's share of Σ IG

    @property
    def error(self) -> float:
        return self.integral - (self.f_b - self.f_a)


@dataclass(frozen=True)
class AdaptiveIGResult(CompletenessGap):
    """Integrated gradients from the adaptive rule. ``attributions`` is ``[t, d]`` float64."""

    attributions: torch.Tensor
    f_input: float
    f_baseline: float
    gradient_evaluations: int
    """Gradient evaluations spent in all (the result may come from an earlier round)."""
    forward_passes: int
    """Forward-only passes for f at panel ends."""
    panels: int
    """Panels of the returned result."""
    converged: bool
    """True when the completeness error of the returned result is within the target."""
    history: tuple[tuple[int, float], ...] = field(default=())
    """(gradient evaluations so far, relative completeness error) after each round."""

    @property
    def steps(self) -> int:
        return self.gradient_evaluations


def initial_breaks() -> list[float]:
    """Panel ends 0, 1e-6, 1e-5, …, 0.1, 1: one panel per decade of α."""
    return [0.0] + [10.0 ** k for k in range(round(math.log10(FIRST_BREAK)), 1)]


INITIAL_EVALUATIONS = NODES * (len(initial_breaks()) - 1)  # gradient evaluations of the first round


def _split_point(a: float, b: float) -> float:
    """Where to halve [a, b]: geometric mean over a wide span (or a/10-style for a = 0), else the midpoint."""
    if a == 0.0:
        return b / 10.0
    return math.sqrt(a * b) if b / a > 4.0 else 0.5 * (a + b)


def adaptive_integrated_gradients(wrapper, embeds: torch.Tensor, baseline: torch.Tensor, target: int,
                                  max_evaluations: int = 400, target_error: float = 0.02,
                                  should_stop=None) -> AdaptiveIGResult:
    """Integrated gradients of log p(target) from ``baseline`` to ``embeds`` ([t, d] each).

    Args:
        wrapper: the ModelWrapper (its lock is held for the model work).
        embeds: ``[t, d]`` input embeddings.
        baseline: ``[t, d]`` baseline embeddings.
        target: the token id whose log-probability after the last position is attributed.
        max_evaluations: budget of gradient evaluations (forward + backward of one sequence).
        should_stop: polled between batches of nodes; True raises engine.cancel.Cancelled.
        target_error: stop once the relative completeness error is at most this.

    Returns:
        AdaptiveIGResult: the best result seen, with how it was reached.
    """
    e, b = embeds.double(), baseline.double()
    diff = e - b  # [t, d]
    nodes, weights = np.polynomial.legendre.leggauss(NODES)
    nodes, weights = (nodes + 1.0) / 2.0, weights / 2.0  # on [0, 1], weights sum to 1
    per_batch = max(1, ROWS_PER_BATCH // max(1, e.shape[0]))
    f_cache: dict[float, float] = {}
    counts = {"grad": 0, "fwd": 0}

    def point(alphas) -> torch.Tensor:
        a = torch.tensor(alphas, dtype=torch.float64)  # [B]
        return (b[None] + a[:, None, None] * diff[None]).float()  # [B, t, d]

    def values_at(alphas: list[float]) -> None:
        missing = [a for a in dict.fromkeys(alphas) if a not in f_cache]
        for s in range(0, len(missing), per_batch):
            chunk = missing[s : s + per_batch]
            for a, f in zip(chunk, log_prob_unlocked(wrapper, point(chunk), target).tolist()):
                f_cache[a] = f
            counts["fwd"] += len(chunk)

    def build(spans: list[tuple[float, float]]) -> list[_Panel]:
        alphas = [a + (z - a) * float(x) for a, z in spans for x in nodes]
        grads = []
        for s in range(0, len(alphas), per_batch):
            check(should_stop)  # the user may have left this token: stop between batches
            _, g = _value_and_grad(wrapper, point(alphas[s : s + per_batch]), target)  # [B, t, d]
            grads.append(g)
        counts["grad"] += len(alphas)
        g_all = torch.cat(grads)  # [len(spans)·NODES, t, d]
        values_at([x for span in spans for x in span])
        out = []
        for i, (a, z) in enumerate(spans):
            w = torch.tensor(weights * (z - a), dtype=torch.float64)  # [NODES]
            gs = (w[:, None, None] * g_all[i * NODES : (i + 1) * NODES]).sum(0)  # [t, d]
            out.append(_Panel(a, z, f_cache[a], f_cache[z], gs, float((diff * gs).sum())))
        return out

    with wrapper.lock:
        breaks = initial_breaks()
        panels = build(list(zip(breaks[:-1], breaks[1:])))
        f_in, f_base = f_cache[1.0], f_cache[0.0]
        gap = abs(f_in - f_base)
        tolerance = max(target_error * gap, ABS_TOLERANCE)

        def snapshot() -> tuple[float, torch.Tensor, int]:
            total = sum(p.grad_sum for p in panels)  # [t, d]
            err = abs(sum(p.error for p in panels))
            return err, diff * total, len(panels)

        best = snapshot()
        history = [(counts["grad"], best[0] / gap if gap else 0.0)]
        while best[0] > tolerance and counts["grad"] + 2 * NODES <= max_evaluations:
            # Halve the worst panels: those that together carry half of the summed absolute error.
            order = sorted(range(len(panels)), key=lambda i: -abs(panels[i].error))
            total_abs = sum(abs(p.error) for p in panels)
            chosen, covered = [], 0.0
            room = (max_evaluations - counts["grad"]) // (2 * NODES)
            for i in order:
                if covered >= 0.5 * total_abs or len(chosen) >= room:
                    break
                chosen.append(i)
                covered += abs(panels[i].error)
            spans = []
            for i in chosen:
                p = panels[i]
                m = _split_point(p.a, p.b)
                spans += [(p.a, m), (m, p.b)]
            new = build(spans)
            keep = [p for i, p in enumerate(panels) if i not in set(chosen)]
            panels = sorted(keep + new, key=lambda p: p.a)
            now = snapshot()
            history.append((counts["grad"], now[0] / gap if gap else 0.0))
            if now[0] < best[0]:
                best = now
    err, attributions, n_panels = best
    return AdaptiveIGResult(attributions=attributions, f_input=f_in, f_baseline=f_base,
                            gradient_evaluations=counts["grad"], forward_passes=counts["fwd"],
                            panels=n_panels, converged=err <= tolerance, history=tuple(history))


def log_prob_unlocked(wrapper, x: torch.Tensor, target: int) -> torch.Tensor:
    """f for a batch ``x`` [B, t, d] without taking the lock (the caller holds it) -> [B] float64."""
    param = next(wrapper.model.parameters())
    with torch.inference_mode():
        return _log_prob(wrapper, x.to(device=param.device, dtype=param.dtype), target).double().cpu()
