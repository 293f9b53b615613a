"""Effect of the interventions: KL(p_int ‖ p_base) of the next-token distribution at each token (SCIENCE.md 5.11).

Token i is coloured by the KL between the intervened and the untouched model's distributions
computed at i (the ones predicting token i + 1), in nats, so a user sees where in the text
an intervention bites. Both rows come from the session's batch-of-two stepping
(``StepView.effect``); with no intervention on there is nothing to show.
"""

from __future__ import annotations

from explorer.analyses.base import AnalysisContext, ModeResult


class EffectMode:
    name = "effect"
    label = "Intervention effect"
    lazy = False
    requires = frozenset({"interventions", "full_logits"})  # KL(intervened ‖ baseline) over the whole vocabulary

    def compute(self, ctx: AnalysisContext) -> ModeResult:
        effect = getattr(ctx.view, "effect", None)
        n = len(ctx.view.tokens)
        if effect is None:
            return ModeResult(values=(None,) * n, lo=0.0, hi=1.0, colors=("#f7f7f7", "#b2182b"), unit="nats",
                              legend="No intervention is on: switch one on to see KL(intervened ‖ baseline) per token.")
        values = tuple(float(v) for v in effect.kl_per_token)
        hi = max(values) if values else 0.0
        hi = hi if hi > 0 else 1e-6
        return ModeResult(
            values=values, lo=0.0, hi=hi, colors=("#f7f7f7", "#b2182b"), unit="nats", fmt="{:.4f}",
            legend=(f"KL(intervened ‖ baseline) of the next-token distribution at each token: white 0 → "
                    f"red {hi:.4f} nats (prompt max)."),
            details=tuple(effect.interventions),
            extra={"kl_next": effect.kl_next},
        )
