"""Local token bias: cosine similarity of each token's last-layer state with the cursor token's.

The state is the residual stream after the last block, before the final norm (residual
layer L; see ``explorer.analyses.support``). Cosine runs from -1 to 1 and the colour uses
that whole range, so two prompts are comparable. Never imports Textual or Rich.
"""

from __future__ import annotations

from explorer.analyses.base import AnalysisContext, ModeResult
from explorer.analyses.support import cosine, ranked, residuals


class LocalBiasMode:
    name = "local_bias"
    label = "Local bias"
    lazy = True
    requires = frozenset({"hidden_states"})

    def compute(self, ctx: AnalysisContext) -> ModeResult:
        t = ctx.cursor
        cap = residuals(ctx)
        last = cap.resid[-1]  # [n, d] output of the last block, pre-norm
        sims = cosine(last, last[t].expand_as(last))  # [n]
        values = tuple(float(v) for v in sims)
        others = {j: values[j] for j in range(len(values)) if j != t}
        rank_rows, lines = ranked(ctx, others) if others else ([], [])
        return ModeResult(
            values=values, lo=-1.0, hi=1.0, colors=("#e66101", "#2166ac"), fmt="{:.3f}",
            legend=(f"Cosine similarity of each token's residual after the last block ({cap.n_layers}, before the "
                    f"final norm) with token {t}'s: orange −1 → blue 1."),
            checks={"self_similarity_error": abs(values[t] - 1.0)},
            details=(f"Most similar to token {t}:", *lines),
            extra={"ranked": rank_rows, "layer": cap.n_layers},
        )
