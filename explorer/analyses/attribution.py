"""Gradient attribution of the token under the cursor to the tokens before it (SCIENCE.md 5.7).

Target ``f = log p(ids[t] | ids[:t])`` for the cursor token t (t >= 1); the inputs are the
embeddings of tokens 0..t-1. Methods: integrated gradients (default; Gauss–Legendre,
``steps`` = 50, baseline ``zero`` / ``pad`` / ``eos``; the first position keeps its real
embedding unless ``fix_first`` is false: BOS, or the attention-sink first token of a model
without BOS, see ``explorer.engine.gradients``), saliency
|∂f/∂e| and input × gradient. Per-token reduction over the embedding dimension:
``sum`` (default; signed sum, which keeps IG's completeness; for saliency a sum of
absolute values) or ``l2`` (magnitude only). IG reports the completeness gap
δ = Σ IG − (f(e) − f(e')) and its relative error, with a warning above 5 %. With ``refine``
(default) the steps are doubled, up to 400, while that error is above 2 %; the steps used and
each try are shown (Gauss–Legendre rules are not nested, so each try is a fresh integral).
Never imports Textual or Rich.
"""

from __future__ import annotations

from explorer.analyses.base import AnalysisContext, ModeResult, ParamSpec
from explorer.analyses.support import choice_param, ranked
from explorer.engine.capture import input_embeddings
from explorer.engine.gradients import baseline_embeddings, integrated_gradients, is_bos, value_and_grad
from explorer.errors import InputError

METHODS = {"integrated_gradients": "integrated_gradients", "ig": "integrated_gradients",
           "saliency": "saliency", "input_x_gradient": "input_x_gradient", "ixg": "input_x_gradient",
           "input_times_gradient": "input_x_gradient"}
BASELINES = {"zero": "zero", "pad": "pad", "eos": "eos"}
REDUCTIONS = {"sum": "sum", "l2": "l2"}
WARN_ABOVE = 0.05
REFINE_TARGET = 0.02
MAX_STEPS = 1000
MAX_REFINED_STEPS = 400

_NAMES = {"integrated_gradients": "Integrated gradients", "saliency": "Saliency |∂f/∂e|",
          "input_x_gradient": "Input × gradient"}


class AttributionMode:
    name = "attribution"
    label = "Gradient attribution"
    lazy = True
    requires = frozenset({"gradients"})
    params = (
        ParamSpec("method", "integrated_gradients (ig), saliency or input_x_gradient (ixg)",
                  ("integrated_gradients", "saliency", "input_x_gradient"), "integrated_gradients", keys=("m",)),
        ParamSpec("steps", "Gauss–Legendre steps for integrated gradients", (), 50),
        ParamSpec("baseline", "integrated-gradients baseline", ("zero", "pad", "eos"), "zero", keys=("M",)),
        ParamSpec("fix_first", "keep the first token (BOS / attention sink) at its real embedding in the baseline",
                  (), True),
        ParamSpec("refine", "double the IG steps (up to 400) until the completeness error is ≤ 2 %", (), True),
        ParamSpec("reduction", "per-token reduction over the embedding dimension", ("sum", "l2"), "sum"),
    )

    def compute(self, ctx: AnalysisContext) -> ModeResult:
        t = ctx.cursor
        n = len(ctx.view.ids)
        method = choice_param(ctx, "method", "integrated_gradients", METHODS)
        baseline_kind = choice_param(ctx, "baseline", "zero", BASELINES)
        reduction = choice_param(ctx, "reduction", "sum", REDUCTIONS)
        fix_first = ctx.params.get("fix_first", True)
        refine = ctx.params.get("refine", True)
        for key, flag in (("fix_first", fix_first), ("refine", refine)):
            if not isinstance(flag, bool):
                raise InputError(f"{key} must be true or false, found {flag!r}.")
        steps = ctx.params.get("steps")
        steps = 50 if steps is None else steps
        if not isinstance(steps, int) or isinstance(steps, bool) or not 1 <= steps <= MAX_STEPS:
            raise InputError(f"steps must be a whole number from 1 to {MAX_STEPS}, found {steps!r}.")
        name = _NAMES[method]
        if t < 1:
            return ModeResult(values=(None,) * n, legend=f"{name}: the first token has no prediction to attribute.",
                              details=("Move the cursor right: attribution explains the token under the cursor "
                                       "from the tokens before it.",))
        ids = list(ctx.view.ids[:t])
        target = int(ctx.view.ids[t])
        embeds = input_embeddings(ctx.wrapper, ids)  # [t, d]
        checks: dict[str, float] = {}
        details: list[str] = []
        extra: dict = {"method": method, "reduction": reduction, "target_index": t, "target_id": target}
        if method == "integrated_gradients":
            base = baseline_embeddings(ctx.wrapper, ids, baseline_kind, fix_first=fix_first)
            ig = integrated_gradients(ctx.wrapper, embeds, base, target, steps=steps, should_stop=ctx.should_stop)
            history = [(ig.steps, ig.relative_error)]
            # Automate SCIENCE.md's "suggest more steps": double until the completeness check passes.
            while refine and ig.relative_error > REFINE_TARGET and ig.steps * 2 <= MAX_REFINED_STEPS:
                ig = integrated_gradients(ctx.wrapper, embeds, base, target, steps=ig.steps * 2,
                                          should_stop=ctx.should_stop)
                history.append((ig.steps, ig.relative_error))
            per_dim = ig.attributions  # [t, d]
            f_value = ig.f_input
            checks.update(completeness_delta=ig.delta, completeness_relative_error=ig.relative_error,
                          f_input=ig.f_input, f_baseline=ig.f_baseline)
            first_fixed = fix_first or is_bos(ctx.wrapper, ids[0])
            kept = ("BOS" if is_bos(ctx.wrapper, ids[0]) else "first token, the attention sink") if first_fixed else ""
            details.append(f"baseline: {baseline_kind} embedding" + (f" ({kept} kept fixed, so its IG is 0)" if kept else "")
                           + f"; {ig.steps} Gauss–Legendre steps")
            if len(history) > 1:
                details.append("steps doubled until the completeness error was ≤ 2 %: "
                               + ", ".join(f"{k} → {e:.1%}" for k, e in history))
            details.append(f"f(input) = {ig.f_input:.4f}, f(baseline) = {ig.f_baseline:.4f}, Σ IG = "
                           f"{float(per_dim.sum()):.4f}, δ = {ig.delta:.2e} ({ig.relative_error:.2%})")
            if ig.relative_error > WARN_ABOVE:
                details.insert(0, f"WARNING: completeness error {ig.relative_error:.1%} is above 5 %; "
                                  "raise steps for a trustworthy attribution.")
            extra.update(baseline=baseline_kind, steps=ig.steps, steps_requested=steps, first_fixed=first_fixed,
                         refinement=[{"steps": k, "relative_error": e} for k, e in history])
        else:
            f, grad = value_and_grad(ctx.wrapper, embeds, target)  # scalar, [t, d]
            f_value = float(f)
            per_dim = grad.abs() if method == "saliency" else embeds.double() * grad
        if reduction == "sum":
            scores = per_dim.sum(-1)  # [t]; for saliency a sum of absolute values (L1 norm)
            how = "sum of |gradient| over d (L1)" if method == "saliency" else "signed sum over the embedding dimension"
        else:
            scores = per_dim.norm(dim=-1)  # [t]
            how = "L2 norm over the embedding dimension (magnitude only, sign lost)"
        values = tuple(float(scores[i]) if i < t else None for i in range(n))
        present = [abs(v) for v in values if v is not None]
        bound = max(present) if present and max(present) > 0 else 1.0
        signed = method != "saliency" and reduction == "sum"
        lo = -bound if signed else 0.0
        colours = ("#d01c8b", "#1a9850") if signed else ("#f7fcf5", "#1a9850")
        rank_rows, lines = ranked(ctx, {i: values[i] for i in range(t)})
        target_text = ctx.wrapper.token_text(target).text
        legend = (f"{name} of log p({target_text!r} | tokens before it) at token {t}, per token: {how}; "
                  + (f"pink −{bound:.3g} → green +{bound:.3g}" if signed else f"white 0 → green {bound:.3g}")
                  + ". Tokens from the cursor on: none.")
        return ModeResult(
            values=values, lo=lo, hi=bound, colors=colours, legend=legend, fmt="{:.4f}", checks=checks,
            details=(f"{name}, target log p = {f_value:.4f} of token {t} {target_text!r}.",
                     f"reduction: {how}", *details, "Largest:", *lines),
            extra={**extra, "ranked": rank_rows, "target_logprob": f_value},
        )
