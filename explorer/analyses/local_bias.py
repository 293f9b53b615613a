"""Local token bias: cosine similarity of each token's last-layer state with the cursor token's.

The state is the residual stream after the last block (residual layer L; see
``explorer.analyses.support``), before the final norm by default (``state = pre_norm``) or
after it (``post_norm``: what transformers calls ``hidden_states[-1]`` / ``last_hidden_state``,
the vector the unembedding reads). The two differ: the norm's per-dimension gain reweights
the cosine. Cosine runs from -1 to 1 and the colour uses
that whole range, so two prompts are comparable. Never imports Textual or Rich.
"""

from __future__ import annotations

from explorer.analyses.base import AnalysisContext, ModeResult, ParamSpec
from explorer.analyses.support import STATE_HELP, STATES, choice_param, cosine, final_normed, ranked, residuals


class LocalBiasMode:
    name = "local_bias"
    label = "Local bias"
    lazy = True
    requires = frozenset({"hidden_states"})
    params = (ParamSpec("state", STATE_HELP, ("pre_norm", "post_norm"), "pre_norm"),)

    def compute(self, ctx: AnalysisContext) -> ModeResult:
        t = ctx.cursor
        state = choice_param(ctx, "state", "pre_norm", STATES)
        cap = residuals(ctx)
        last = cap.resid[-1]  # [n, d] output of the last block, pre-norm
        if state == "post_norm":
            last = final_normed(ctx, last)  # [n, d]
        where = "before" if state == "pre_norm" else "after"
        sims = cosine(last, last[t].expand_as(last))  # [n]
        values = tuple(float(v) for v in sims)
        others = {j: values[j] for j in range(len(values)) if j != t}
        rank_rows, lines = ranked(ctx, others) if others else ([], [])
        return ModeResult(
            values=values, lo=-1.0, hi=1.0, colors=("#e66101", "#2166ac"), fmt="{:.3f}",
            legend=(f"Cosine similarity of each token's residual after the last block ({cap.n_layers}, {where} the "
                    f"final norm) with token {t + 1}'s: orange −1 → blue 1."),
            checks={"self_similarity_error": abs(values[t] - 1.0)},
            details=(f"Most similar to token {t + 1}:", *lines),
            extra={"ranked": rank_rows, "layer": cap.n_layers, "state": state},
        )
