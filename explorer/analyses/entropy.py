"""Entropy: H = -Σ p log p of the distribution each token was drawn from, in bits (SCIENCE.md 5.4).

Not normalised by log V (that makes values tiny for large vocabularies); the colour runs
from 0 bits to the largest entropy in the prompt, and both ends are printed.
"""

from __future__ import annotations

from explorer.analyses.base import AnalysisContext, ModeResult


class EntropyMode:
    name = "entropy"
    label = "Entropy"
    lazy = False
    requires = frozenset({"full_logits"})
    value_in_cursor_line = False  # the cursor line shows p, H and E already

    def compute(self, ctx: AnalysisContext) -> ModeResult:
        values = tuple(t.entropy_bits for t in ctx.view.tokens)
        present = [v for v in values if v is not None]
        hi = max(present) if present else 1.0
        hi = hi if hi > 0 else 1.0
        return ModeResult(
            values=values, lo=0.0, hi=hi, colors=("#1a9850", "#d73027"), unit="bits", fmt="{:.2f}",
            legend=(f"Entropy of the distribution each token was drawn from: green 0 bits → "
                    f"red {hi:.2f} bits (prompt max). The first token has none."),
            extra={"varentropy_bits": [t.varentropy_bits for t in ctx.view.tokens]},
        )
