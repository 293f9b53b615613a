"""Hidden-state similarity: how each layer's residual for a token lines up with its final one.

For the cursor token t, the per-layer series is ``cos(resid[l][t], resid[L][t])`` for
residual layers l = 0..L (0 = embeddings, L = after the last block, before the final
norm); the last entry is 1 by construction and is a self-check. Tokens are coloured with
the same cosine at the chosen ``layer`` (default L // 2), each against its own final state.
``state = post_norm`` passes every layer's residual through the final norm first (as the
logit lens does), so layer L is transformers' ``hidden_states[-1]``; the default ``pre_norm``
compares the raw residuals.
Never imports Textual or Rich.
"""

from __future__ import annotations

from explorer.analyses.base import AnalysisContext, ModeResult, ParamSpec
from explorer.analyses.support import (STATE_HELP, STATES, choice_param, cosine, final_normed, int_param,
                                       residual_layers, residuals)


class HiddenSimilarityMode:
    name = "hidden_similarity"
    label = "Hidden similarity"
    lazy = True
    requires = frozenset({"hidden_states"})
    params = (ParamSpec("layer", "residual layer coloured (0 = embeddings .. L; default L//2)", (), None,
                        keys=("<", ">"), options=residual_layers),
              ParamSpec("state", STATE_HELP + " (applied to every layer)", ("pre_norm", "post_norm"), "pre_norm"))

    def compute(self, ctx: AnalysisContext) -> ModeResult:
        t = ctx.cursor
        cap = residuals(ctx)
        L = cap.n_layers
        layer = int_param(ctx, "layer", L // 2, L + 1, "residual layers")
        state = choice_param(ctx, "state", "pre_norm", STATES)
        resid = cap.resid if state == "pre_norm" else final_normed(ctx, cap.resid)  # [L+1, n, d]
        final = resid[-1]  # [n, d]
        per_layer = cosine(resid[:, t], final[t].expand(L + 1, -1))  # [L+1]
        per_token = cosine(resid[layer], final)  # [n]
        where = "pre-norm" if state == "pre_norm" else "each through the final norm"
        series = [float(v) for v in per_layer]
        converged = next((l for l in range(L + 1) if all(s >= 0.9 for s in series[l:])), L)
        return ModeResult(
            values=tuple(float(v) for v in per_token), lo=-1.0, hi=1.0, colors=("#e66101", "#2166ac"),
            fmt="{:.3f}",
            legend=(f"Cosine of each token's residual at layer {layer} (0 = embeddings, {L} = last block output, "
                    f"{where}) with its own layer-{L} residual: orange −1 → blue 1."),
            layers={"cosine_to_final": series},
            checks={"last_layer_self_similarity_error": abs(series[-1] - 1.0)},
            details=(f"Token {t + 1}: cosine with its final residual per layer (plot).",
                     f"first layer from which it stays ≥ 0.9: {converged}", f"coloured layer: {layer} of 0..{L}"),
            extra={"layer": layer, "cursor": t, "state": state, "stays_above_0.9_from_layer": converged},
        )
