"""Plain: the prompt text with no colouring."""

from __future__ import annotations

from explorer.analyses.base import AnalysisContext, ModeResult


class PlainMode:
    name = "plain"
    label = "Plain"
    lazy = False
    requires = frozenset()

    def compute(self, ctx: AnalysisContext) -> ModeResult:
        return ModeResult(values=tuple(None for _ in ctx.view.tokens), legend="Plain text: no colouring.")
