"""Divergence: where a second model disagrees with this one, token by token (SCIENCE.md 5.12).

Colours every prompt token by KL(A‖B) of the two distributions it was drawn from (nats), or,
with the option ``by = logp``, by the change in its own log-probability log p_A(y) − log p_B(y).
The panel gives llama.cpp's summary (mean KL, 90/99/99.9th percentiles, maximum, same-top
share) and ranks the tokens where the models disagree most.

The comparison is stepped by the engine (explorer.engine.compare) and handed in as
``ctx.params["comparison"]`` (a ComparisonView of the same ids), the way the SAE mode gets its
config; without one the mode says how to open a second model. Never imports Textual or Rich.
"""

from __future__ import annotations

from explorer.analyses.base import AnalysisContext, ModeResult, ParamSpec
from explorer.analyses.support import choice_param, ranked
from explorer.errors import AnalysisUnavailable

_BY = {"kl": "kl", "logp": "logp", "delta_logp": "logp"}


class DivergenceMode:
    name = "divergence"
    label = "Divergence"
    lazy = False
    requires = frozenset({"full_logits"})  # KL over the whole vocabulary of both models
    params = (ParamSpec("by", "colour by KL(A‖B) of the distribution each token was drawn from, or by "
                              "log p_A − log p_B of the token itself", ("kl", "logp"), "kl", keys=("m",)),)

    def compute(self, ctx: AnalysisContext) -> ModeResult:
        cmp = ctx.params.get("comparison")
        if cmp is None:
            raise AnalysisUnavailable(
                "No second model is open: start with --compare MODEL (or --compare-bf16 / --compare-fp16).")
        if tuple(cmp.ids) != tuple(ctx.view.ids):
            raise AnalysisUnavailable("The comparison for this prompt is still being computed.")
        by = choice_param(ctx, "by", "kl", _BY)
        tokens = cmp.tokens
        if by == "kl":
            values = tuple(t.kl for t in tokens)
            present = [v for v in values if v is not None]
            hi = max(present, default=0.0)
            hi = hi if hi > 0 else 1.0
            result = dict(values=values, lo=0.0, hi=hi, colors=("#f7f7f7", "#d73027"), unit="nats", fmt="{:.4f}",
                          legend=(f"KL(A‖B) of the two distributions each token was drawn from: white 0 → red "
                                  f"{hi:.3g} nats (prompt max). The first token has none."))
        else:
            values = tuple(t.delta_logp for t in tokens)
            span = max((abs(v) for v in values if v is not None), default=0.0)
            span = span if span > 0 else 1.0
            result = dict(values=values, lo=-span, hi=span, colors=("#4575b4", "#d73027"), unit="nats",
                          fmt="{:+.3f}",
                          legend=(f"log p_A(token) − log p_B(token): blue −{span:.3g} (B likes it more) → red "
                                  f"+{span:.3g} nats (A likes it more). The first token has none."))
        scores = {t.index: (t.kl if by == "kl" else abs(t.delta_logp)) for t in tokens if t.kl is not None}
        rows, lines = ranked(ctx, scores)
        details = [f"A: {cmp.model_a}   B: {cmp.model_b}"]
        summary = cmp.summary
        if summary is not None:
            details.append(
                f"KL(A‖B) over {summary.tokens} tokens: mean {summary.mean_kl:.4g}, p90 {summary.p90_kl:.4g}, "
                f"p99 {summary.p99_kl:.4g}, p99.9 {summary.p999_kl:.4g}, max {summary.max_kl:.4g} nats; "
                f"same top token {summary.same_top:.1%}")
        details.append(f"Next token: KL {cmp.next_kl:.4g} nats, TV {cmp.next_tv:.4f}, "
                       f"top token {'same' if cmp.next_same_top else 'differs'}")
        cur = tokens[ctx.cursor]
        if cur.kl is not None:
            top_a = ctx.wrapper.token_text(cur.top_a).text
            top_b = ctx.wrapper.token_text(cur.top_b).text
            details.append(
                f"Cursor: KL(A‖B) {cur.kl:.4g}, KL(B‖A) {cur.kl_reverse:.4g}, TV {cur.tv:.4f}; log p_A {cur.logp_a:.3f}, "
                f"log p_B {cur.logp_b:.3f} (Δ {cur.delta_logp:+.3f}); top A {top_a!r}, top B {top_b!r}")
        details.append("Most different tokens (" + ("KL, nats" if by == "kl" else "|Δ log p|, nats") + "):")
        details.extend(lines)
        details.extend(cmp.notes)
        return ModeResult(
            **result, details=tuple(details),
            extra={"by": by, "model_a": cmp.model_a, "model_b": cmp.model_b,
                   "summary": summary.to_json() if summary is not None else None,
                   "next": {"kl": cmp.next_kl, "kl_reverse": cmp.next_kl_reverse, "tv": cmp.next_tv,
                            "same_top": cmp.next_same_top},
                   "ranked": rows},
        )
