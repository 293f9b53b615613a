"""Probability: p(token | the tokens before it), from the model's own softmax at the previous position."""

from __future__ import annotations

from explorer.analyses.base import AnalysisContext, ModeResult


class ProbabilityMode:
    name = "probability"
    label = "Probability"
    lazy = False
    requires = frozenset()
    value_in_cursor_line = False  # the cursor line shows p, H and E already

    def compute(self, ctx: AnalysisContext) -> ModeResult:
        values = tuple(t.prob for t in ctx.view.tokens)
        return ModeResult(
            values=values, lo=0.0, hi=1.0, colors=("#d73027", "#4575b4"), unit="",
            legend="p(token | tokens before it): red 0 → blue 1. The first token has none.",
            fmt="{:.4f}",
        )
