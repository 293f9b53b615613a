"""`analyze`: the numbers a visualization mode shows for a prompt, as JSON or a table.

Runs exactly the code the app runs (``compute_mode`` over the registry's mode) and prints
``{"schema_version", "mode", "tokens": [{"index", "id", "text", "value"}], "layers", "checks", "extra"}``;
``value`` is null where the mode has no number for a token, ``layers`` is null for modes
without per-layer series. ``extra`` holds the mode's own exports plus its legend, details,
the cursor position and the parameters used.
"""

from __future__ import annotations

import argparse
import json
import math

from explorer.commands.common import (add_model_arguments, add_prompt_arguments, check_input_early,
                                      config_from_args, open_session, progress, prompt_ids_from_args,
                                      require_capabilities)
from explorer.commands.compare_args import add_compare_arguments, compare_request_from_args
from explorer.errors import InputError
from explorer.schema import ANALYZE_SCHEMA_VERSION

NAME = "analyze"
HELP = "print the numbers of one visualization mode for a prompt (per token, per layer, self-checks)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from explorer.analyses.registry import analysis_names

    add_prompt_arguments(p)
    p.add_argument("--mode", required=True, metavar="NAME", help="one of: " + ", ".join(analysis_names()))
    p.add_argument("--position", type=int, default=None, metavar="P",
                   help="token index under the cursor (default: the last token; negative counts from the end)")
    p.add_argument("--layer", type=int, default=None, metavar="L",
                   help="layer for modes that show one (residual layers 0..L, or a block for raw attention)")
    p.add_argument("--head", type=int, default=None, metavar="H", help="attention head for --method raw (default: mean)")
    p.add_argument("--method", default=None, metavar="M",
                   help="attention: rollout | raw; attribution: integrated_gradients (ig) | saliency | input_x_gradient (ixg)")
    p.add_argument("--quadrature", default=None, metavar="Q",
                   help="integrated gradients: adaptive (default) | gauss_legendre")
    p.add_argument("--budget", type=int, default=None, metavar="N",
                   help="integrated gradients, adaptive: most gradient evaluations (default 400)")
    p.add_argument("--steps", type=int, default=None, metavar="N",
                   help="integrated gradients, gauss_legendre: nodes (default 50)")
    p.add_argument("--baseline", default=None, metavar="B", help="integrated-gradients baseline: zero | pad | eos")
    p.add_argument("--reduction", default=None, metavar="R", help="attribution per-token reduction: sum | l2")
    p.add_argument("--threshold", type=float, default=None, metavar="T",
                   help="residual: contribution threshold τ (default 0.02); smaller shares are zeroed, the rest renormalised")
    p.add_argument("--state", default=None, metavar="S",
                   help="local_bias, hidden_similarity: pre_norm (default) | post_norm (after the final norm)")
    p.add_argument("--free-first", action="store_true",
                   help="integrated gradients: interpolate the first token too (default: it stays fixed, BOS/attention sink)")
    p.add_argument("--no-refine", action="store_true",
                   help="integrated gradients, gauss_legendre: keep --steps even when the completeness error is above 2 %%")
    p.add_argument("--by", default=None, metavar="X",
                   help="divergence: kl (KL(A‖B) of each token's distribution) | logp (log p_A − log p_B)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    add_compare_arguments(p)
    add_model_arguments(p)


def _params(args: argparse.Namespace) -> dict:
    keys = ("layer", "head", "method", "quadrature", "budget", "steps", "baseline", "reduction", "threshold", "state", "by")
    params = {k: getattr(args, k) for k in keys if getattr(args, k) is not None}
    if args.free_first:
        params["fix_first"] = False
    if args.no_refine:
        params["refine"] = False
    return params


def _number(v):
    if v is None:
        return None
    v = float(v)
    return v if math.isfinite(v) else None


def result_json(analysis, view, wrapper, cursor: int, params: dict, result) -> dict:
    """The JSON object of one computed mode (what ``--json`` prints)."""
    tokens = [{"index": i, "id": int(tid), "text": wrapper.token_text(int(tid)).text,
               "value": _number(result.values[i])} for i, tid in enumerate(view.ids)]
    layers = None
    if result.layers:
        layers = {k: [_number(v) for v in series] for k, series in result.layers.items()}
    extra = dict(result.extra)
    extra.update(legend=result.legend, details=list(result.details), position=cursor, params=params,
                 model=wrapper.name, color_scale={"lo": result.lo, "hi": result.hi, "colors": list(result.colors)})
    return {"schema_version": ANALYZE_SCHEMA_VERSION, "mode": analysis.name, "tokens": tokens, "layers": layers,
            "checks": {k: _number(v) for k, v in result.checks.items()}, "extra": extra}


def run(args: argparse.Namespace) -> int:
    from explorer.analyses.registry import get_analysis

    analysis = get_analysis(args.mode)  # unknown names fail before the model loads
    if args.steps is not None and not 1 <= args.steps <= 1000:
        raise InputError(f"--steps must be between 1 and 1000, found {args.steps}.")
    check_input_early(args)
    cfg = config_from_args(args)
    request = compare_request_from_args(args)
    session = open_session(args, cfg)
    # Modes read only the per-token log-probabilities (plain, probability) or need the model's
    # internals; a mode may declare its needs in ``requires``.
    needed = getattr(analysis, "requires", None)
    if needed is None:
        needed = set() if analysis.name in ("plain", "probability") else {"full_logits", "hidden_states"}
    require_capabilities(session.wrapper, needed, f"The {analysis.name} mode")
    ids = prompt_ids_from_args(args, session)
    session.replace_ids(ids)
    if request is not None:  # model B steps beside A (the divergence mode reads the comparison)
        from explorer.engine.compare import open_comparison

        open_comparison(session, request, progress)
    view = session.compute()
    n = len(view.ids)
    cursor = n - 1 if args.position is None else args.position
    if not -n <= cursor < n:
        raise InputError(f"--position {args.position} is outside the prompt's {n} tokens (0..{n - 1}).")
    cursor %= n

    from explorer.analyses.base import AnalysisContext
    from explorer.analyses.cache import ResultCache, compute_mode

    params = _params(args)
    if analysis.lazy:
        progress(f"computing {analysis.name} for {n} tokens…")
    inputs = dict(params)
    if session.comparison is not None:
        inputs["comparison"] = session.comparison.view(session)
    flags = frozenset({"cross_layer"}) if getattr(args, "cross_layer", False) else frozenset()
    ctx = AnalysisContext(view=view, wrapper=session.wrapper, cursor=cursor, params=inputs, config=cfg, flags=flags)
    result = compute_mode(analysis, ctx, ResultCache(cfg.display.cache_size))
    data = result_json(analysis, view, session.wrapper, cursor, params, result)
    if args.json:
        print(json.dumps(data, ensure_ascii=False))
        return 0
    print(result.legend)
    for line in result.details:
        print(f"  {line}")
    print(f"{'index':>5}  {'token':<20} {'id':>7}  value")
    for tok in data["tokens"]:
        value = "—" if tok["value"] is None else result.fmt.format(tok["value"])
        print(f"{tok['index']:>5}  {repr(tok['text'])[:20]:<20} {tok['id']:>7}  {value}")
    for name, series in (data["layers"] or {}).items():
        print(f"{name}: " + " ".join("—" if v is None else f"{v:.4g}" for v in series))
    for name, value in data["checks"].items():
        print(f"check {name}: {value:.3g}" if value is not None else f"check {name}: —")
    return 0
