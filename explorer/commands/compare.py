"""`compare`: two models (or a model and its own weights at another precision) token by token over a text.

Scores a whole file the way llama.cpp's ``perplexity --kl-divergence`` does: in windows of
``--window`` tokens (each from an empty context), KL(A‖B) in nats of the distributions every
token was drawn from, log p_A and log p_B of the token, both top tokens; then mean KL, its
90/99/99.9th percentiles, the maximum and the share of positions whose top tokens agree.
"""

from __future__ import annotations

import argparse
import json
import time

from explorer.commands.common import (add_model_arguments, add_prompt_arguments, check_input_early,
                                      config_from_args, progress)
from explorer.commands.compare_args import add_compare_arguments, compare_request_from_args
from explorer.errors import InputError

NAME = "compare"
HELP = ("compare model A with model B (--compare MODEL, or A's weights at --compare-bf16 / --compare-fp16) "
        "token by token: KL(A‖B), log p under each, top-token agreement, and llama.cpp's KL summary")


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_prompt_arguments(p)
    add_compare_arguments(p)
    p.add_argument("--window", type=int, default=None, metavar="N",
                   help="tokens per window, each scored from an empty context (default: the shorter model context)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a summary and a table")
    add_model_arguments(p)


def _text_from_args(args: argparse.Namespace) -> str:
    from explorer.io.prompts import read_prompt_file

    if args.input:
        return read_prompt_file(args.input).text
    if args.prompt is not None:
        return args.prompt
    raise InputError("Give the text to score with --input FILE or --prompt TEXT.")


def run(args: argparse.Namespace) -> int:
    request = compare_request_from_args(args)
    if request is None:
        raise InputError("Say what to compare with: --compare MODEL, --compare-bf16 or --compare-fp16.")
    if args.window is not None and args.window < 2:
        raise InputError(f"--window must be at least 2 tokens, found {args.window}.")
    check_input_early(args)
    text = _text_from_args(args)
    if not text.strip():
        raise InputError("The text is empty; give something to score.")
    cfg = config_from_args(args)
    from explorer.engine.loading import resolve_source

    resolve_source(cfg.model.name)
    if request.model is not None:
        resolve_source(request.model)  # a missing path fails before model A spends seconds loading

    from explorer.engine.compare import Comparison, score_ids
    from explorer.engine.compare_load import load_second_model
    from explorer.engine.loading import load_model
    from explorer.engine.model import ModelWrapper

    m = cfg.model
    a = ModelWrapper.from_loaded(load_model(m.name, device=m.device, bf16=m.bf16,
                                            trust_remote_code=m.trust_remote_code, progress=progress))
    b = load_second_model(a, request, device=m.device, bf16=m.bf16, trust_remote_code=m.trust_remote_code,
                          progress=progress)
    comparison = Comparison(a, b)
    for note in comparison.notes:
        progress(f"note: {note}")
    ids = a.encode(text)
    if len(ids) < 2:
        raise InputError("The text is a single token; a comparison needs at least two.")
    window = args.window or comparison.context_length
    started = time.monotonic()
    last_report = [0.0]

    def report(done: int, total: int) -> None:
        now = time.monotonic()
        if done == total or now - last_report[0] >= 1.0:
            last_report[0] = now
            progress(f"compared {done}/{total} tokens ({now - started:.0f} s)")

    rows = score_ids(comparison, ids, window=window, progress=report)
    from explorer.engine.compare_stats import summarize

    scored = [r for r in rows if r.kl is not None]
    summary = summarize([r.kl for r in scored], [bool(r.same_top) for r in scored])
    if args.json:
        out = {
            "model_a": a.name, "model_b": b.name, "summary": summary.to_json(),
            "tokens": [{"index": r.index, "id": r.id, "text": r.text.text, "kl": r.kl, "logp_a": r.logp_a,
                        "logp_b": r.logp_b, "top_a": r.top_a, "top_b": r.top_b} for r in rows],
        }
        print(json.dumps(out, ensure_ascii=False))
        return 0
    print(f"A: {a.name}\nB: {b.name}")
    print(f"{summary.tokens} tokens scored in windows of {window}; KL(A‖B) in nats: mean {summary.mean_kl:.6f}, "
          f"p90 {summary.p90_kl:.6f}, p99 {summary.p99_kl:.6f}, p99.9 {summary.p999_kl:.6f}, max {summary.max_kl:.6f}; "
          f"same top token {summary.same_top:.2%}")
    print(f"{'index':>6}  {'token':<20} {'KL(A‖B)':>10}  {'log p_A':>9}  {'log p_B':>9}  {'Δ':>8}  {'top A':<14} {'top B':<14}")
    for r in rows:
        token = r.text.visible()[:20]
        if r.kl is None:
            print(f"{r.index:>6}  {token:<20} {'—':>10}")
            continue
        top_a = a.token_text(r.top_a).visible()[:14]
        top_b = a.token_text(r.top_b).visible()[:14]
        print(f"{r.index:>6}  {token:<20} {r.kl:>10.6f}  {r.logp_a:>9.4f}  {r.logp_b:>9.4f}  {r.delta_logp:>+8.4f}  "
              f"{top_a:<14} {top_b:<14}")
    return 0
