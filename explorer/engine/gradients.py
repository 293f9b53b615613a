"""Gradients of a token's log-probability with respect to the input embeddings (SCIENCE.md 5.7).

Target: ``f(e) = log p(y | x_<t)`` where ``e = [t, d]`` are the embeddings of the tokens
before the target (the captum/inseq convention; not the raw logit). Embeddings are taken
in the space the first block sees (Gemma's ×√d is inside its embedding module in
transformers 5, so ``inputs_embeds`` already is that space). Methods:
  saliency            |∂f/∂e|
  input × gradient    e ⊙ ∂f/∂e
  integrated gradients (e − e') ⊙ ∫₀¹ ∂f(e' + α(e − e'))/∂e dα with Gauss–Legendre nodes,
                      plus the completeness gap δ = Σ IG − (f(e) − f(e')).
The first position keeps its real embedding in the baseline by default, so its IG is exactly
zero. SCIENCE.md asks this for BOS (models misbehave without it); the reason is that the first
position is a causal LM's attention sink, and that holds for models whose tokenizer adds no
BOS too (the bundled SmolLM2 adds none; its first token carries a residual norm of ~5000, and
with it interpolated to zero log p along the path is chaotic near α = 0).
A fixed Gauss–Legendre rule does not converge on ordinary prompts with a zero baseline: the
first RMSNorm is singular at x = 0, so most of the path integral sits at α below ~0.002, where
its nodes never land. ``explorer.engine.ig_adaptive`` holds the quadrature the app uses by
default; ``integrated_gradients`` here is the fixed rule (captum's default), kept for
comparison and for agreement tests. All functions hold
``wrapper.lock``. Never imports Textual or Rich.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from explorer.engine.cancel import check
from explorer.engine.capture import input_embeddings
from explorer.errors import AnalysisUnavailable

ROWS_PER_BATCH = 2048  # token rows per forward/backward batch (IG steps are batched up to this)
BASELINES = ("zero", "pad", "eos")


def _log_prob(wrapper, x: torch.Tensor, target: int) -> torch.Tensor:
    """log p(target) after the last position, for a batch of embedding sequences ``x`` [B, t, d] -> [B]."""
    try:
        out = wrapper.model(inputs_embeds=x, use_cache=False, logits_to_keep=1)
    except TypeError:  # an architecture without logits_to_keep
        out = wrapper.model(inputs_embeds=x, use_cache=False)
    logits = out.logits[:, -1].float()  # [B, V]
    return torch.log_softmax(logits, dim=-1)[:, target]


def _value_and_grad(wrapper, x: torch.Tensor, target: int) -> tuple[torch.Tensor, torch.Tensor]:
    """f and ∂f/∂x for a batch ``x`` [B, t, d] (float32 on the model's device) -> ([B], [B, t, d])."""
    param = next(wrapper.model.parameters())
    with torch.inference_mode(False), torch.enable_grad():
        xs = x.detach().clone().to(device=param.device, dtype=param.dtype).requires_grad_(True)
        try:
            f = _log_prob(wrapper, xs, target)  # [B]
            (grad,) = torch.autograd.grad(f.sum(), xs)
        except RuntimeError as exc:
            raise AnalysisUnavailable(f"This model cannot take gradients with respect to its inputs ({exc}).") from exc
    return f.detach().double().cpu(), grad.detach().double().cpu()


@torch.inference_mode()
def log_prob(wrapper, embeds: torch.Tensor, target: int) -> torch.Tensor:
    """f for a batch of embedding sequences ``embeds`` [B, t, d] -> [B] float64."""
    param = next(wrapper.model.parameters())
    with wrapper.lock:
        return _log_prob(wrapper, embeds.to(device=param.device, dtype=param.dtype), target).double().cpu()


def value_and_grad(wrapper, embeds: torch.Tensor, target: int) -> tuple[torch.Tensor, torch.Tensor]:
    """f and its gradient for one sequence ``embeds`` [t, d] -> (scalar, [t, d]) float64."""
    with wrapper.lock:
        f, g = _value_and_grad(wrapper, embeds[None].float(), target)
    return f[0], g[0]


def baseline_embeddings(wrapper, ids, kind: str = "zero", fix_first: bool = True) -> torch.Tensor:
    """The IG baseline e' ``[t, d]`` for the tokens ``ids``: zero, or the pad / eos embedding everywhere.

    Position 0 keeps its own embedding when ``fix_first`` (the default: BOS, or the first
    token acting as the attention sink when the tokenizer adds no BOS) or when it is BOS.

    Raises:
        AnalysisUnavailable: the tokenizer has no such special token.
    """
    e = input_embeddings(wrapper, ids)  # [t, d]
    if kind == "zero":
        base = torch.zeros_like(e)
    else:
        tok = wrapper.tokenizer
        tid = tok.pad_token_id if kind == "pad" else (wrapper.eos_ids[0] if wrapper.eos_ids else None)
        if kind == "pad" and tid is None:
            tid = tok.unk_token_id
        if tid is None:
            raise AnalysisUnavailable(f"This tokenizer has no {kind} token to use as a baseline.")
        base = input_embeddings(wrapper, [int(tid)]).expand_as(e).clone()
    if len(ids) and (fix_first or is_bos(wrapper, ids[0])):
        base[0] = e[0]
    return base


def is_bos(wrapper, token_id: int) -> bool:
    return wrapper.bos_id is not None and int(token_id) == int(wrapper.bos_id)


class CompletenessGap:
    """Completeness check of an integrated-gradients result (SCIENCE.md 5.9): Σ IG = f(e) − f(e').

    For classes with ``attributions``, ``f_input`` and ``f_baseline``.
    """

    @property
    def delta(self) -> float:
        """Completeness gap Σ IG − (f(e) − f(e'))."""
        return float(self.attributions.sum()) - (self.f_input - self.f_baseline)

    @property
    def relative_error(self) -> float:
        """|δ| / |f(e) − f(e')| (0 when both are 0, inf when only the gap is 0)."""
        gap = abs(self.f_input - self.f_baseline)
        if gap == 0.0:
            return 0.0 if self.delta == 0.0 else float("inf")
        return abs(self.delta) / gap


@dataclass(frozen=True)
class IGResult(CompletenessGap):
    """Integrated gradients of one target. ``attributions`` is ``[t, d]`` float64."""

    attributions: torch.Tensor
    f_input: float
    f_baseline: float
    steps: int


def gauss_legendre(steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes α in (0, 1) and weights (summing to 1) of the n-point Gauss–Legendre rule."""
    x, w = np.polynomial.legendre.leggauss(steps)
    return (x + 1.0) / 2.0, w / 2.0


def integrated_gradients(wrapper, embeds: torch.Tensor, baseline: torch.Tensor, target: int,
                         steps: int = 50, should_stop=None) -> IGResult:
    """Integrated gradients of log p(target) along the straight line from ``baseline`` to ``embeds``.

    Args:
        wrapper: the ModelWrapper.
        embeds: ``[t, d]`` input embeddings.
        baseline: ``[t, d]`` baseline embeddings.
        target: the token id whose log-probability after the last position is attributed.
        steps: Gauss–Legendre nodes (captum's default method, n = 50).
        should_stop: polled between batches of nodes; True raises engine.cancel.Cancelled.

    Returns:
        IGResult with the attributions and f at both ends.
    """
    alphas, weights = gauss_legendre(steps)
    e, b = embeds.double(), baseline.double()
    diff = e - b  # [t, d]
    batch = max(1, min(steps, ROWS_PER_BATCH // max(1, e.shape[0])))
    total = torch.zeros_like(e)  # Σ_k w_k ∇f at the k-th node, [t, d]
    with wrapper.lock:
        for start in range(0, steps, batch):
            check(should_stop)  # the user may have left this token: stop between batches
            a = torch.tensor(alphas[start : start + batch], dtype=torch.float64)  # [B]
            w = torch.tensor(weights[start : start + batch], dtype=torch.float64)  # [B]
            points = b[None] + a[:, None, None] * diff[None]  # [B, t, d]
            _, grads = _value_and_grad(wrapper, points.float(), target)  # [B, t, d]
            total += (w[:, None, None] * grads).sum(0)
        ends = log_prob(wrapper, torch.stack([e, b]).float(), target)  # [2]
    return IGResult(attributions=diff * total, f_input=float(ends[0]), f_baseline=float(ends[1]), steps=steps)


def path_min_rms(embeds: torch.Tensor, baseline: torch.Tensor, skip_first: bool = True) -> float | None:
    """Smallest RMS of any token's vector along the straight path ``e' + α(e − e')``, α ∈ [0, 1].

    A normalisation layer is singular at x = 0 (RMSNorm divides by ``sqrt(mean(x²) + ε)``): the
    closer the path comes to it, the faster the integrand changes there. None when no token moves.
    """
    rows = slice(1, None) if skip_first else slice(None)
    b, d = baseline[rows].double(), (embeds - baseline)[rows].double()  # [t', dim]
    if b.shape[0] == 0:
        return None
    # |b + αd|² is smallest at α* = −b·d / |d|², clamped to the path.
    alpha = (-(b * d).sum(-1) / (d * d).sum(-1).clamp_min(1e-300)).clamp(0.0, 1.0)  # [t']
    closest = b + alpha[:, None] * d  # [t', dim]
    return float(closest.pow(2).mean(-1).sqrt().min())
