"""Logit-lens readouts shared by the layer_prob and layer_correlation modes (SCIENCE.md 5.1).

``z_l = W_U · N_final(resid[l])`` (+ soft-cap), recomputing the norm for every layer,
applied to the pre-norm residuals of ``ResidualCapture`` so the final norm is applied
exactly once; at l = L this is the model's own output (checked by ``lens_kl_last``).
Never imports Textual or Rich.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from explorer.engine.capture import ResidualCapture, lens_logits

ROWS_PER_CHUNK = 64  # lens rows per matmul: 64 × 256k vocab × 4 B = 64 MB at most


@dataclass(frozen=True)
class LensAtPosition:
    """Per-layer readouts at one position for one target token (lists of L+1 values)."""

    prob: list[float]
    rank: list[int]
    """1 + tokens with a higher logit + tokens with an equal logit and a lower id (ties broken by id)."""
    top1: list[int]
    entropy_bits: list[float]
    kl_from_final: list[float]
    """KL(p_L ‖ p_l) in nats, p_L = the lens at the last layer."""
    pearson_with_final: list[float]
    """Pearson correlation over the vocabulary between z_l and z_L."""
    crystallisation: int | None
    """First layer from which the final top-1 token is the top-1 at every later layer."""
    kl_last_vs_model: float
    """KL(p_model ‖ p_lens_L): the self-check, ~0."""


def lens_at_position(wrapper, cap: ResidualCapture, pos: int, target: int) -> LensAtPosition:
    """Every layer's lens at ``pos``, read for the token ``target`` (``pos`` must be in cap.logit_positions)."""
    z = lens_logits(wrapper, cap.resid[:, pos]).double()  # [L+1, V]
    logp = torch.log_softmax(z, dim=-1)  # [L+1, V]
    p = logp.exp()
    final = logp[-1]
    model_logp = torch.log_softmax(cap.model_logits(pos).double(), dim=-1)  # [V]
    target_logit = z[:, target : target + 1]
    # Ties (equal float logits) are broken by token id, the lower id first, like argmax: deterministic,
    # and the rank and the top-1 agree. Logits are compared as computed (float32, widened to float64).
    lower_id = torch.arange(z.shape[-1]) < target  # [V]
    rank = (z > target_logit).sum(-1) + ((z == target_logit) & lower_id).sum(-1) + 1  # [L+1]
    top1 = z.argmax(-1)  # [L+1]: the first (lowest-id) maximum
    entropy = -(p * logp).sum(-1) / torch.log(torch.tensor(2.0, dtype=torch.float64))
    kl = (final.exp() * (final - logp)).sum(-1).clamp_min(0.0)
    zc = z - z.mean(-1, keepdim=True)
    pearson = (zc * zc[-1]).sum(-1) / (zc.norm(dim=-1) * zc[-1].norm()).clamp_min(1e-30)
    final_top = int(top1[-1])
    cryst = None
    for layer in range(z.shape[0] - 1, -1, -1):
        if int(top1[layer]) != final_top:
            break
        cryst = layer
    kl_model = float((model_logp.exp() * (model_logp - final)).sum().clamp_min(0.0))
    return LensAtPosition(
        prob=p[:, target].tolist(), rank=[int(r) for r in rank], top1=[int(i) for i in top1],
        entropy_bits=entropy.tolist(), kl_from_final=kl.tolist(), pearson_with_final=pearson.tolist(),
        crystallisation=cryst, kl_last_vs_model=kl_model,
    )


def actual_token_probs(wrapper, cap: ResidualCapture, layers: list[int]) -> torch.Tensor:
    """Lens probability of each actual token at the given residual layers.

    Returns:
        ``[len(layers), n]`` float64; column i is p_l(ids[i] | ids[:i]) read at position i-1,
        NaN for i = 0 (nothing predicts the first token).
    """
    ids = torch.tensor(cap.ids, dtype=torch.long)
    n = len(cap.ids)
    out = torch.full((len(layers), n), float("nan"), dtype=torch.float64)  # [layers, n]
    for row, layer in enumerate(layers):
        for start in range(0, n - 1, ROWS_PER_CHUNK):
            stop = min(n - 1, start + ROWS_PER_CHUNK)
            z = lens_logits(wrapper, cap.resid[layer, start:stop]).double()  # [chunk, V]
            logp = torch.log_softmax(z, dim=-1)
            out[row, start + 1 : stop + 1] = logp.gather(-1, ids[start + 1 : stop + 1, None])[:, 0].exp()
    return out
