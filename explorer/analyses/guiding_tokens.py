"""Guiding tokens (seed 002): last-block, head-averaged attention from the cursor token, ranked.

The seed reads ``attentions[-1].mean(heads)[-1, :]``: how the last token spreads its
attention over the context in the last block. The cursor defaults to the last token, so the
default view is exactly that; moving the cursor asks the same question of another token.
It is attention, not a measure of causal importance. Never imports Textual or Rich.
"""

from __future__ import annotations

from explorer.analyses.attention import query_row_error
from explorer.analyses.base import AnalysisContext, ModeResult
from explorer.analyses.support import attentions, ranked, sink_excluded_hi, clamped_colors


class GuidingTokensMode:
    name = "guiding_tokens"
    label = "Guiding tokens"
    lazy = True
    requires = frozenset({"attention"})

    def compute(self, ctx: AnalysisContext) -> ModeResult:
        t = ctx.cursor
        n = len(ctx.view.ids)
        cap = attentions(ctx, t)
        last = cap.mean.shape[0] - 1
        row = cap.mean[last, t]  # [n]
        values = tuple(float(row[j]) if j <= t else None for j in range(n))
        scores = {j: values[j] for j in range(t + 1)}
        rank_rows, lines = ranked(ctx, scores, top=15)
        hi = max(scores.values()) or 1.0
        sink_hi, sink_note = sink_excluded_hi(values, t)
        hi = sink_hi or hi
        row_err, future = query_row_error(cap.mean[last, t], t)  # the row shown
        return ModeResult(
            values=values, color_values=clamped_colors(values, hi), lo=0.0, hi=hi, colors=("#fff7ec", "#b30000"), fmt="{:.4f}",
            legend=(f"Attention of block {last} (the last), mean over {cap.n_heads} heads, from "
                    f"token {t + 1} to each earlier token: white 0 → red {hi:.3f}. Attention, not importance.{sink_note}"),
            checks={"attention_row_sum_error": row_err, "attention_future_mass": future},
            details=(f"Last-block attention from token {t + 1}, heads averaged, ranked:", *lines),
            extra={"ranked": rank_rows, "block": last},
        )
