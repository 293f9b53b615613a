"""Gradient attribution of the token under the cursor to the tokens before it (SCIENCE.md 5.7).

Target ``f = log p(ids[t] | ids[:t])`` for the cursor token t (t >= 1); the inputs are the
embeddings of tokens 0..t-1. Methods: integrated gradients (default), saliency |∂f/∂e| and
input × gradient. IG options: baseline ``zero`` / ``pad`` / ``eos`` (the first position keeps
its real embedding unless ``fix_first`` is false: BOS, or the attention-sink first token of a
model without BOS, see ``explorer.engine.gradients``); quadrature ``adaptive`` (default:
panels graded towards α = 0, each checked exactly against f at its ends, the worst halved until
the completeness error is ≤ 2 % or ``budget`` gradient evaluations are spent, see
``explorer.engine.ig_adaptive``) or ``gauss_legendre`` (captum's fixed rule with ``steps``
nodes; with ``refine`` the steps double up to 400 while the error is above 2 %). Both keep the
best result seen; one that missed the target says NOT CONVERGED and shows its error. The
panel says how close the baseline's path comes to the first norm's singular point (x = 0).
Per-token reduction over the embedding dimension: ``sum`` (default; signed sum, which keeps
IG's completeness; for saliency a sum of absolute values) or ``l2`` (magnitude only). IG
reports the completeness gap δ = Σ IG − (f(e) − f(e')) and its relative error.
Never imports Textual or Rich.
"""

from __future__ import annotations

from explorer.analyses.base import AnalysisContext, ModeResult, ParamSpec
from explorer.analyses.support import choice_param, ranked
from explorer.engine.capture import input_embeddings
from explorer.engine.gradients import (baseline_embeddings, integrated_gradients, is_bos, path_min_rms,
                                       value_and_grad)
from explorer.engine.ig_adaptive import INITIAL_EVALUATIONS, NODES, adaptive_integrated_gradients
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
DEFAULT_BUDGET = 400
MIN_BUDGET = INITIAL_EVALUATIONS  # the first round of the adaptive rule
QUADRATURES = {"adaptive": "adaptive", "gauss_legendre": "gauss_legendre", "gl": "gauss_legendre"}

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
        ParamSpec("quadrature", "integrated-gradients quadrature: adaptive (graded panels near the baseline, "
                  "checked panel by panel) or gauss_legendre (captum's fixed rule)", ("adaptive", "gauss_legendre"),
                  "adaptive"),
        ParamSpec("budget", "adaptive quadrature: most gradient evaluations to spend", (), DEFAULT_BUDGET),
        ParamSpec("steps", "gauss_legendre quadrature: nodes", (), 50),
        ParamSpec("baseline", "integrated-gradients baseline (zero starts at the norm's singular point; pad/eos "
                  "keep the path away from it)", ("zero", "pad", "eos"), "zero", keys=("M",)),
        ParamSpec("fix_first", "keep the first token (BOS / attention sink) at its real embedding in the baseline",
                  (), True),
        ParamSpec("refine", "gauss_legendre: double the steps (up to 400) until the completeness error is ≤ 2 %; "
                  "the best try is kept", (), True),
        ParamSpec("reduction", "per-token reduction over the embedding dimension", ("sum", "l2"), "sum"),
    )

    def compute(self, ctx: AnalysisContext) -> ModeResult:
        t = ctx.cursor
        n = len(ctx.view.ids)
        method = choice_param(ctx, "method", "integrated_gradients", METHODS)
        baseline_kind = choice_param(ctx, "baseline", "zero", BASELINES)
        reduction = choice_param(ctx, "reduction", "sum", REDUCTIONS)
        options = _ig_options(ctx)  # checked even where nothing is computed, so bad input always says so
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
            per_dim, f_value, ig_checks, ig_details, ig_extra = _integrated(ctx, ids, embeds, target,
                                                                            baseline_kind, options)
            checks.update(ig_checks)
            details += ig_details
            extra.update(ig_extra)
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
        legend = (f"{name} of log p({target_text!r} | tokens before it) at token {t + 1}, per token: {how}; "
                  + (f"pink −{bound:.3g} → green +{bound:.3g}" if signed else f"white 0 → green {bound:.3g}")
                  + ". Tokens from the cursor on: none.")
        return ModeResult(
            values=values, lo=lo, hi=bound, colors=colours, legend=legend, fmt="{:.4f}", checks=checks,
            details=(f"{name}, target log p = {f_value:.4f} of token {t + 1} {target_text!r}.",
                     f"reduction: {how}", *details, "Largest:", *lines),
            extra={**extra, "ranked": rank_rows, "target_logprob": f_value},
        )


def _whole_number(ctx: AnalysisContext, key: str, default: int, top: int, bottom: int = 1) -> int:
    value = ctx.params.get(key)
    value = default if value is None else value
    if not isinstance(value, int) or isinstance(value, bool) or not bottom <= value <= top:
        raise InputError(f"{key} must be a whole number from {bottom} to {top}, found {value!r}.")
    return value


def _ig_options(ctx: AnalysisContext) -> dict:
    """The integrated-gradients options, validated. Raises InputError."""
    options = {"quadrature": choice_param(ctx, "quadrature", "adaptive", QUADRATURES),
               "steps": _whole_number(ctx, "steps", 50, MAX_STEPS),
               "budget": _whole_number(ctx, "budget", DEFAULT_BUDGET, MAX_STEPS, bottom=MIN_BUDGET)}
    for key in ("fix_first", "refine"):
        flag = ctx.params.get(key, True)
        if not isinstance(flag, bool):
            raise InputError(f"{key} must be true or false, found {flag!r}.")
        options[key] = flag
    return options


def _baseline_line(ctx: AnalysisContext, ids: list[int], embeds, base, kind: str, kept: str) -> str:
    """Which baseline, and how close its straight path comes to the first norm's singular point (x = 0)."""
    line = f"baseline: {kind} embedding" + (f" ({kept} kept fixed, so its IG is 0)" if kept else "")
    lowest = path_min_rms(embeds, base, skip_first=bool(kept))
    if lowest is None:
        return line
    eps = norm_epsilon(ctx.wrapper)
    where = (f"the path passes through x = 0, where the first RMSNorm is singular (ε = {eps:.0e}); the adaptive "
             "rule grades its panels towards α = 0 to resolve that" if lowest < 1e-12 else
             f"smallest RMS along the path {lowest:.3g}" + (f" (√ε = {eps ** 0.5:.2g}: away from the norm's "
                                                            "singular point)" if eps else ""))
    return f"{line}; {where}"


def norm_epsilon(wrapper) -> float:
    """ε of the model's RMSNorm / LayerNorm, from its config (0 when the config does not say)."""
    cfg = wrapper.config
    for key in ("rms_norm_eps", "layer_norm_eps", "layer_norm_epsilon"):
        value = getattr(cfg, key, None)
        if value:
            return float(value)
    return 0.0


def _integrated(ctx: AnalysisContext, ids: list[int], embeds, target: int, baseline_kind: str, options: dict):
    """Integrated gradients with the chosen quadrature -> (per_dim [t, d], f, checks, details, extra)."""
    fix_first = options["fix_first"]
    base = baseline_embeddings(ctx.wrapper, ids, baseline_kind, fix_first=fix_first)  # [t, d]
    first_fixed = fix_first or is_bos(ctx.wrapper, ids[0])
    kept = ("BOS" if is_bos(ctx.wrapper, ids[0]) else "first token, the attention sink") if first_fixed else ""
    details = [_baseline_line(ctx, ids, embeds, base, baseline_kind, kept)]
    extra: dict = {"baseline": baseline_kind, "first_fixed": first_fixed, "quadrature": options["quadrature"]}
    if options["quadrature"] == "adaptive":
        ig = adaptive_integrated_gradients(ctx.wrapper, embeds, base, target, max_evaluations=options["budget"],
                                           target_error=REFINE_TARGET, should_stop=ctx.should_stop)
        details.append(f"adaptive quadrature: {ig.panels} panels × {NODES} Gauss–Legendre nodes, graded towards α = 0; "
                       f"{ig.gradient_evaluations} gradient evaluations (budget {options['budget']}) and "
                       f"{ig.forward_passes} forward passes for the panel checks")
        details.append("completeness error per round: " + ", ".join(f"{k} → {e:.1%}" for k, e in ig.history))
        converged = ig.converged
        extra.update(steps=ig.gradient_evaluations, budget=options["budget"], panels=ig.panels, converged=converged,
                     forward_passes=ig.forward_passes,
                     refinement=[{"gradient_evaluations": k, "relative_error": e} for k, e in ig.history])
    else:
        steps = options["steps"]
        ig = integrated_gradients(ctx.wrapper, embeds, base, target, steps=steps, should_stop=ctx.should_stop)
        history, best = [(ig.steps, ig.relative_error)], ig
        # SCIENCE.md's "suggest more steps", automated; Gauss–Legendre rules are not nested, so each try is a
        # fresh integral and a later one can be worse: the best is kept.
        while options["refine"] and best.relative_error > REFINE_TARGET and ig.steps * 2 <= MAX_REFINED_STEPS:
            ig = integrated_gradients(ctx.wrapper, embeds, base, target, steps=ig.steps * 2,
                                          should_stop=ctx.should_stop)
            history.append((ig.steps, ig.relative_error))
            if ig.relative_error < best.relative_error:
                best = ig
        ig = best
        details.append(f"{ig.steps} Gauss–Legendre steps"
                       + (f" (the best of: {', '.join(f'{k} → {e:.1%}' for k, e in history)})" if len(history) > 1
                          else ""))
        converged = ig.relative_error <= REFINE_TARGET
        extra.update(steps=ig.steps, steps_requested=steps, converged=converged,
                     refinement=[{"steps": k, "relative_error": e} for k, e in history])
    per_dim = ig.attributions  # [t, d]
    details.append(f"f(input) = {ig.f_input:.4f}, f(baseline) = {ig.f_baseline:.4f}, Σ IG = "
                   f"{float(per_dim.sum()):.4f}, δ = {ig.delta:.2e} ({ig.relative_error:.2%})")
    if not converged:
        details.insert(0, f"NOT CONVERGED: the best estimate shown has a completeness error of "
                          f"{ig.relative_error:.1%} (target ≤ {REFINE_TARGET:.0%}); "
                          + ("raise budget" if options["quadrature"] == "adaptive" else "try quadrature adaptive")
                          + " or choose the pad/eos baseline.")
    elif ig.relative_error > WARN_ABOVE:
        details.insert(0, f"WARNING: completeness error {ig.relative_error:.1%} is above 5 %.")
    checks = {"completeness_delta": ig.delta, "completeness_relative_error": ig.relative_error,
              "f_input": ig.f_input, "f_baseline": ig.f_baseline}
    return per_dim, ig.f_input, checks, details, extra
