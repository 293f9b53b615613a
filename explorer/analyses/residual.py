"""Residual stream: its L2 norm per layer, a tokens × layers heatmap, and what each sub-layer adds.

Everything is read with hooks on the real modules (``explorer.engine.capture``), never
estimated. For the cursor token t:
  * ``resid_norm[l] = ‖resid[l][t]‖₂`` for residual layers l = 0..L (0 = embeddings,
    L = last block output before the final norm);
  * per block b: ``‖attn_out‖₂``, ``‖mlp_out‖₂`` and the norm share of attention in the
    update, ``‖attn_out‖ / (‖attn_out‖ + ‖mlp_out‖)``;
  * per block b, the proximity contributions of Ferrando & Voita (SCIENCE.md 5.6) with
    the coarse parts {resid_pre, attn_out} of resid_mid and {resid_mid, mlp_out} of
    resid_post: ``prox(c, x) = max(ε, ‖x‖₁ − ‖x − c‖₁)`` normalised over the parts (so the
    two parts of each sum to 1). Per-head-per-source parts are not split here.
Tokens are coloured by the norm at the chosen residual ``layer`` (default L).
Never imports Textual or Rich.
"""

from __future__ import annotations

import torch

from explorer.analyses.base import AnalysisContext, ModeResult, ParamSpec
from explorer.analyses.support import int_param, residuals

EPS = 1e-6


def proximity_shares(whole: torch.Tensor, parts: list[torch.Tensor]) -> list[float]:
    """Ferrando & Voita proximity contributions of ``parts`` to ``whole`` (last axis = d), summing to 1."""
    w = whole.double()
    prox = [torch.clamp(w.abs().sum(-1) - (w - p.double()).abs().sum(-1), min=EPS) for p in parts]
    total = sum(prox)
    return [float(p / total) for p in prox]


class ResidualMode:
    name = "residual"
    label = "Residual stream"
    lazy = True
    params = (ParamSpec("layer", "residual layer coloured and detailed (0 = embeddings .. L; default L)", (), None),)

    def compute(self, ctx: AnalysisContext) -> ModeResult:
        t = ctx.cursor
        cap = residuals(ctx, sublayers=True)
        L = cap.n_layers
        layer = int_param(ctx, "layer", L, L + 1, "residual layers")
        norms = cap.resid.norm(dim=-1).double()  # [L+1, n]; float32 sums (~1e-6 relative) avoid a float64 copy of the stream
        attn_norm = cap.attn_out[:, t].double().norm(dim=-1)  # [L]
        mlp_norm = cap.mlp_out[:, t].double().norm(dim=-1)  # [L]
        attn_share = (attn_norm / (attn_norm + mlp_norm).clamp_min(1e-30)).tolist()
        attn_prox, mlp_prox = [], []
        for b in range(L):
            attn_prox.append(proximity_shares(cap.resid_mid[b, t], [cap.resid[b, t], cap.attn_out[b, t]])[1])
            mlp_prox.append(proximity_shares(cap.resid[b + 1, t], [cap.resid_mid[b, t], cap.mlp_out[b, t]])[1])
        values = tuple(float(v) for v in norms[layer])
        hi = max(values) if max(values) > 0 else 1.0
        if layer == 0:
            block_lines = ("Layer 0 is the embedding: no block writes into it.",)
        else:
            b = layer - 1
            block_lines = (
                f"Block {b} (writes layer {layer}) at token {t}:",
                f"  ‖attn_out‖ {attn_norm[b]:.3f}   ‖mlp_out‖ {mlp_norm[b]:.3f}   attention share of the update "
                f"{attn_share[b]:.1%}",
                f"  proximity (Ferrando & Voita): attn_out {attn_prox[b]:.1%} of resid_mid, "
                f"mlp_out {mlp_prox[b]:.1%} of resid_post",
            )
        return ModeResult(
            values=values, lo=0.0, hi=hi, colors=("#ffffcc", "#253494"), fmt="{:.2f}",
            legend=(f"L2 norm of each token's residual at layer {layer} (0 = embeddings, {L} = last block output, "
                    f"pre-norm): yellow 0 → blue {hi:.2f} (largest here)."),
            layers={"resid_norm": norms[:, t].tolist(), "attn_out_norm": attn_norm.tolist(),
                    "mlp_out_norm": mlp_norm.tolist(), "attn_share": attn_share,
                    "attn_proximity": attn_prox, "mlp_proximity": mlp_prox},
            checks={"sublayer_identity_error": cap.identity_error()},
            details=(f"Token {t}: residual norm per layer 0..{L} (plot); sub-layer series per block 0..{L - 1}.",
                     *block_lines, f"coloured layer: {layer}"),
            extra={"layer": layer, "cursor": t,
                   "heatmap": {"rows": "tokens", "columns": f"residual layers 0..{L}",
                               "values": norms.T.tolist()}},
        )
