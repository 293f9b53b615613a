"""Energy: E = -T·logsumexp(logits/T) at T = 1 of the distribution each token was drawn from (SCIENCE.md 5.3).

Lower energy = more in-distribution (Liu et al. 2020). Energy is not shift-invariant in the
logits, so raw values are shown together with a z-score against the prompt, which is what
the colour encodes (never a min-max rescale).
"""

from __future__ import annotations

import statistics

from explorer.analyses.base import AnalysisContext, ModeResult


class EnergyMode:
    name = "energy"
    label = "Energy"
    lazy = False
    requires = frozenset({"full_logits"})
    value_in_cursor_line = False  # the cursor line shows p, H and E already

    def compute(self, ctx: AnalysisContext) -> ModeResult:
        values = tuple(t.energy for t in ctx.view.tokens)
        present = [v for v in values if v is not None]
        if len(present) >= 2:
            mean, std = statistics.fmean(present), statistics.pstdev(present)
        else:
            mean, std = (present[0] if present else 0.0), 0.0
        zs = tuple(None if v is None else ((v - mean) / std if std > 0 else 0.0) for v in values)
        return ModeResult(
            values=values, color_values=zs, lo=-3.0, hi=3.0, colors=("#1a9850", "#d73027"),
            unit="nats", fmt="{:.2f}",
            legend=(f"Energy −logsumexp(logits) of the distribution each token was drawn from; colour = "
                    f"z-score in this prompt (mean {mean:.2f}, sd {std:.2f}): green −3 in-distribution → red +3."),
            extra={"zscores": list(zs), "mean": mean, "std": std},
        )
