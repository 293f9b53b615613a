"""Component contributions of Ferrando & Voita (SCIENCE.md 5.6), per head and per source token.

For the query token t and block b, the attention update splits exactly into one term per head h
and source token j ≤ t:

    a_{t←j,h} = A_h[t, j] · W_O^h (W_V^h N(x_j) + b_V^h)        (N = the block's input norm)

plus ``o_proj``'s bias when it has one, so ``attn_out[t] = Σ_{j,h} a_{t←j,h} (+ b_O)``. Gemma 2/3
normalise the attention output again (``post_attention_layernorm``) before adding it to the
residual; that norm is linear once its scale at t is fixed, so every term is multiplied by the
same vector ``gain / sqrt(mean(z²) + ε)`` of the whole output z, and the terms still sum to what
the residual receives. The identity is checked: ``attention_terms`` returns the largest deviation.

Proximity of a part c to a whole x: ``prox(c, x) = max(ε, ‖x‖₁ − ‖x − c‖₁)``; contributions are
the proximities over their sum (the residual included), then those below the threshold τ are
zeroed and the rest renormalised. When every part sits at the ε floor the split is undefined:
``Contributions.degenerate`` says so instead of an even split. Never imports Textual or Rich.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from explorer.engine.capture import model_parts
from explorer.errors import AnalysisUnavailable

EPS = 1e-6  # the proximity floor ε


@dataclass(frozen=True)
class AttentionTerms:
    """One block's attention update at query t, split per head and source token (float64, CPU)."""

    terms: torch.Tensor
    """``[H, t + 1, d]``: a_{t←j,h}, as the residual receives it (after Gemma's post-attention norm)."""
    bias: torch.Tensor | None
    """``[d]``: o_proj's bias as the residual receives it, or None."""
    identity_error: float
    """max |Σ terms (+ bias) − attention output| / max(1, max |attention output|)."""


@dataclass(frozen=True)
class Contributions:
    """Proximity contributions of the parts of one whole (they sum to 1 unless degenerate)."""

    shares: torch.Tensor
    """``[parts]`` after the threshold and renormalisation (all zero when degenerate)."""
    raw: torch.Tensor
    """``[parts]`` before the threshold."""
    degenerate: bool
    """Every part's proximity is at the ε floor: no part moves the whole towards itself."""


def proximity_contributions(whole: torch.Tensor, parts: torch.Tensor, threshold: float = 0.0) -> Contributions:
    """Ferrando & Voita contributions of ``parts`` ``[P, d]`` to ``whole`` ``[d]``."""
    x, c = whole.double(), parts.double()
    prox = x.abs().sum() - (x[None] - c).abs().sum(-1)  # [P]
    if bool((prox <= EPS).all()):
        zero = torch.zeros_like(prox)
        return Contributions(shares=zero, raw=zero, degenerate=True)
    floored = prox.clamp_min(EPS)
    raw = floored / floored.sum()
    kept = torch.where(raw >= threshold, raw, torch.zeros_like(raw))
    # The largest share always survives, so the renormalisation never divides by zero.
    if float(kept.sum()) == 0.0:
        kept = torch.where(raw == raw.max(), raw, torch.zeros_like(raw))
    return Contributions(shares=kept / kept.sum(), raw=raw, degenerate=False)


def _norm_gain(norm: torch.nn.Module, d: int, like: torch.Tensor) -> tuple[torch.Tensor, float]:
    """(gain [d], ε) of an RMSNorm of either convention (w or 1 + w): norm(1) · sqrt(1 + ε) = gain."""
    eps = next((float(getattr(norm, k)) for k in ("variance_epsilon", "eps") if hasattr(norm, k)), None)
    if eps is None:
        raise AnalysisUnavailable("The post-attention norm exposes no epsilon, so its scale cannot be fixed.")
    ones = torch.ones(1, d, dtype=like.dtype, device=like.device)
    return norm(ones)[0].double().cpu() * math.sqrt(1.0 + eps), eps


@torch.inference_mode()
def attention_terms(wrapper, block: int, resid_pre: torch.Tensor, attn_row: torch.Tensor, t: int,
                    attn_out_t: torch.Tensor) -> AttentionTerms:
    """Split block ``block``'s attention update at query ``t`` into per-head-per-source terms.

    Args:
        wrapper: the ModelWrapper.
        block: the block index.
        resid_pre: ``[n, d]`` the block's input residual for every token (n > t).
        attn_row: ``[H, n]`` the block's eager attention weights of query t per head.
        t: the query position.
        attn_out_t: ``[d]`` the attention output the residual received at t (for the identity check).

    Raises:
        AnalysisUnavailable: the block has no Llama/Gemma-style attention projections.
    """
    parts = model_parts(wrapper)
    layer = parts.layers[block]
    attn = getattr(layer, "self_attn", None)
    if attn is None or not all(hasattr(attn, k) for k in ("v_proj", "o_proj")) or not hasattr(layer, "input_layernorm"):
        raise AnalysisUnavailable("This architecture's attention has no v_proj/o_proj to split per head.")
    param = next(wrapper.model.parameters())
    with wrapper.lock:
        x = resid_pre[: t + 1].to(device=param.device, dtype=param.dtype)  # [t+1, d]
        values = attn.v_proj(layer.input_layernorm(x)).double().cpu()  # [t+1, n_kv·hd]
        w_o = attn.o_proj.weight.double().cpu()  # [d, H·hd]
        b_o = attn.o_proj.bias.double().cpu() if getattr(attn.o_proj, "bias", None) is not None else None
        n_heads = attn_row.shape[0]
        head_dim = w_o.shape[1] // n_heads
        n_kv = values.shape[1] // head_dim
        v = values.view(t + 1, n_kv, head_dim).repeat_interleave(n_heads // n_kv, dim=1)  # [t+1, H, hd]
        a = attn_row[:, : t + 1].double()  # [H, t+1]
        w_heads = w_o.view(-1, n_heads, head_dim)  # [d, H, hd]
        terms = torch.einsum("hj,jhe,dhe->hjd", a, v, w_heads)  # [H, t+1, d]
        sandwich = parts.sandwich
        if sandwich:
            z = terms.sum((0, 1)) + (b_o if b_o is not None else 0.0)  # [d] o_proj output at t
            gain, eps = _norm_gain(layer.post_attention_layernorm, z.shape[0], x)
            scale = gain / torch.sqrt(z.pow(2).mean() + eps)  # [d]
            terms = terms * scale
            b_o = b_o * scale if b_o is not None else None
    whole = terms.sum((0, 1)) + (b_o if b_o is not None else 0.0)
    target = attn_out_t.double()
    error = float((whole - target).abs().max() / max(1.0, float(target.abs().max())))
    return AttentionTerms(terms=terms, bias=b_o, identity_error=error)


@dataclass(frozen=True)
class BlockContributions:
    """Who carries block b's update at query t (shares after the threshold; None where degenerate)."""

    residual: float | None
    """The residual stream's (resid_pre) share of resid_mid."""
    heads: list[float] | None
    """``[H]``: each head's share of resid_mid, summed over source tokens."""
    sources: list[float] | None
    """``[t + 1]``: each source token's share of resid_mid, summed over heads."""
    top: list[tuple[int, int, float]]
    """(head, source, share) of the largest per-head-per-source parts, largest first."""
    bias: float | None
    """o_proj bias's share, when the model has one."""
    mlp: float | None
    """mlp_out's share of resid_post (the other part is resid_mid)."""
    identity_error: float
    """How exactly the per-head-per-source terms add up to the attention output."""


def block_contributions(wrapper, cap, attn_rows: torch.Tensor, t: int, block: int, threshold: float,
                        top: int = 8) -> BlockContributions:
    """Contributions for ``block`` at ``t`` from a ResidualCapture with sub-layers and ``attn_rows`` [L, H, n]."""
    split = attention_terms(wrapper, block, cap.resid[block], attn_rows[block], t, cap.attn_out[block, t])
    n_heads, n_src, d = split.terms.shape
    parts = [cap.resid[block, t].double()[None], split.terms.reshape(-1, d)]  # residual first, then (h, j) row-major
    if split.bias is not None:
        parts.append(split.bias[None])
    attn = proximity_contributions(cap.resid_mid[block, t], torch.cat(parts), threshold)
    mlp = proximity_contributions(cap.resid[block + 1, t], torch.stack([cap.mlp_out[block, t], cap.resid_mid[block, t]]),
                                  threshold)
    mlp_share = None if mlp.degenerate else float(mlp.shares[0])
    if attn.degenerate:
        return BlockContributions(None, None, None, [], None, mlp_share, split.identity_error)
    cells = attn.shares[1 : 1 + n_heads * n_src].view(n_heads, n_src)  # [H, t+1]
    order = torch.argsort(cells.flatten(), descending=True)[:top]
    best = [(int(i) // n_src, int(i) % n_src, float(cells.flatten()[i])) for i in order if float(cells.flatten()[i]) > 0]
    return BlockContributions(
        residual=float(attn.shares[0]), heads=cells.sum(1).tolist(), sources=cells.sum(0).tolist(), top=best,
        bias=float(attn.shares[-1]) if split.bias is not None else None, mlp=mlp_share,
        identity_error=split.identity_error)
