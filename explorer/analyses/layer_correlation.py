"""Layer correlations (seed README, key p): each token's lens probability per layer, normalised per token.

For every token i >= 1 and residual layer l = 0..L, ``p_l(i) = p_lens_l(ids[i] | ids[:i])``
(read at position i-1). The seed scales these "to [0, 1] per token"; we say exactly how:
``q_l(i) = p_l(i) / max_l' p_l'(i)``, the ratio to the token's peak over the layers (1 at
the layer where the token is most predicted, 0 stays 0; proportions are kept, unlike a
min-max rescale). Tokens are coloured by q at the chosen ``layer`` (default L // 2); the
tokens × layers matrix of q and of p is in ``extra``. For the cursor token the per-layer
series also gives the Pearson correlation over the vocabulary between the lens logits at
layer l and at layer L (1 = the same ranking shape as the final prediction).
Costs L + 1 unembedding passes over the prompt. Enabled with ``--layer_prob`` (key p).
Never imports Textual or Rich.
"""

from __future__ import annotations

import math

import torch

from explorer.analyses.base import AnalysisContext, ModeResult, ParamSpec
from explorer.analyses.lens import lens_at_position
from explorer.analyses.support import int_param, residual_layers, residuals, token_lens_probs


def _nan_to_none(row: list[float]) -> list[float | None]:
    return [None if math.isnan(v) else float(v) for v in row]


class LayerCorrelationMode:
    name = "layer_correlation"
    label = "Layer correlation"
    lazy = True
    requires = frozenset({"hidden_states"})
    needs_flag = "layer_prob"
    params = (ParamSpec("layer", "residual layer coloured (0 = embeddings .. L; default L//2)", (), None,
                        keys=("<", ">"), options=residual_layers),)

    def compute(self, ctx: AnalysisContext) -> ModeResult:
        t = ctx.cursor
        pos = t - 1 if t >= 1 else None
        cap = residuals(ctx, logit_positions=(pos,) if pos is not None else None)
        L = cap.n_layers
        layer = int_param(ctx, "layer", L // 2, L + 1, "residual layers")
        probs = token_lens_probs(ctx, cap, list(range(L + 1)))  # [L+1, n], NaN at token 0
        peak = probs.max(dim=0).values  # [n]
        normalised = probs / peak.clamp_min(1e-300)  # [L+1, n]
        values = tuple(_nan_to_none(normalised[layer].tolist()))
        diffs = [abs(float(probs[L, i]) - tok.prob) for i, tok in enumerate(ctx.view.tokens) if tok.prob is not None]
        checks = {"max_prob_diff_last_layer_vs_trace": max(diffs) if diffs else 0.0}
        layers = None
        details = [f"q_l = p_l(token) / max over layers of p_l(token), per token; coloured layer {layer} of 0..{L}."]
        if pos is not None:
            lens = lens_at_position(ctx.wrapper, cap, pos, int(ctx.view.ids[t]))
            checks["lens_kl_last"] = lens.kl_last_vs_model
            layers = {"normalised_prob": _nan_to_none(normalised[:, t].tolist()), "prob": lens.prob,
                      "pearson_with_final": lens.pearson_with_final}
            peak_layer = int(torch.argmax(probs[:, t]))
            details.append(f"Token {t + 1}: peak probability {float(peak[t]):.4f} at layer {peak_layer}.")
        else:
            details.append("The first token has no prediction: move the cursor right for its per-layer series.")
        return ModeResult(
            values=values, lo=0.0, hi=1.0, colors=("#d73027", "#4575b4"), fmt="{:.3f}",
            legend=(f"Lens probability of each token at layer {layer}, divided by that token's largest lens "
                    f"probability over layers 0..{L} (1 = its peak layer): red 0 → blue 1."),
            layers=layers, checks=checks, details=tuple(details),
            extra={"layer": layer, "cursor": t,
                   "heatmap": {"rows": "tokens", "columns": f"residual layers 0..{L}",
                               "normalised": [_nan_to_none(r) for r in normalised.T.tolist()],
                               "prob": [_nan_to_none(r) for r in probs.T.tolist()]}},
        )
