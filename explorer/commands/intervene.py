"""`intervene`: next-token table of the untouched and the intervened model, their KL, and both continuations.

    main.py intervene --prompt TEXT [--steer SPEC] [--clamp SPEC] [--ablate SPEC] [--sae PATH]
                      [--top K] [--generate N] [--json]

JSON: ``{"baseline": {"top": [{"token", "id", "p", "logprob"}]}, "intervened": {"top": [... +
"delta_p"]}, "kl": KL(intervened ‖ baseline) nats, "interventions": [...], "generated":
{"baseline": [...], "intervened": [...]}}`` (the last with ``--generate``; greedy). The
baseline and the intervened numbers come from one batch-of-two forward pass.
"""

from __future__ import annotations

import argparse
import json
import math

from explorer.commands.common import add_model_arguments, add_prompt_arguments, check_input_early, open_session, progress
from explorer.errors import InputError

NAME = "intervene"
HELP = "steer, clamp or ablate the model and compare its next-token table (and continuations) with the untouched model"


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_prompt_arguments(p)
    g = p.add_argument_group("interventions (repeat a flag to compose several)")
    g.add_argument("--steer", action="append", default=[], metavar="SPEC",
                   help="layer=L,vector=FILE|feature=N|diff=POS.txt:NEG.txt,alpha=A[,from=P]: add α·v after block L")
    g.add_argument("--clamp", action="append", default=[], metavar="SPEC",
                   help="layer=L,feature=N,value=V|scale=S[,strength=S]: set an SAE feature, keeping the SAE's error")
    g.add_argument("--ablate", action="append", default=[], metavar="SPEC",
                   help="head=L.H|mlp=L|neuron=L.N,how=zero|mean[,strength=S]: mean = over the prompt's tokens")
    g.add_argument("--sae", metavar="PATH", help="the SAE for --clamp and --steer feature=N")
    g.add_argument("--sae-format", metavar="FMT", help="format of --sae (default: detected)")
    o = p.add_argument_group("output")
    o.add_argument("--top", type=int, default=10, metavar="K", help="rows of each table (default 10)")
    o.add_argument("--generate", type=int, default=0, metavar="N", help="also generate N tokens greedily, both ways")
    o.add_argument("--json", action="store_true", help="print JSON")
    add_model_arguments(p)


def _top(rows, with_delta: bool) -> list[dict]:
    out = []
    for r in rows:
        p, lp = (r.int_p, r.int_logprob) if with_delta else (r.base_p, r.base_logprob)
        item = {"token": r.text, "id": r.id, "p": p, "logprob": lp}
        if with_delta:
            item["delta_p"] = r.delta_p
        out.append(item)
    return out


def _continuation(wrapper, ids: list[int], n: int) -> list[dict]:
    from explorer.engine.decoding.generate import generate

    gen = generate(wrapper, ids, n)
    return [{"token": wrapper.token_text(s.token_id).text, "id": s.token_id, "logprob": s.logprob} for s in gen.steps]


def run(args: argparse.Namespace) -> int:
    from explorer.commands.intervention_args import build_interventions, parse_specs

    if not 1 <= args.top <= 1000:
        raise InputError(f"--top must be between 1 and 1000, found {args.top}.")
    if not 0 <= args.generate <= 10_000:
        raise InputError(f"--generate must be between 0 and 10000, found {args.generate}.")
    specs = parse_specs(args.steer, args.clamp, args.ablate, args.sae)
    if not specs:
        raise InputError("Give at least one intervention: --steer, --clamp or --ablate.")
    check_input_early(args)

    from explorer.commands.common import prompt_ids_from_args
    from explorer.engine.interventions.hooks import InterventionHooks, require_hookable
    from explorer.engine.interventions.paired import PairedTrace, build_effect
    from explorer.engine.interventions.spec import to_json

    session = open_session(args)
    wrapper = session.wrapper
    require_hookable(wrapper.model)
    ids = prompt_ids_from_args(args, session)
    items = build_interventions(wrapper, specs, ids, args.sae, args.sae_format)
    generated = None
    with InterventionHooks(wrapper.model, items) as hooks:  # checks every item against the model first
        progress(f"intervene: {len(items)} intervention(s) on a {len(ids)}-token prompt")
        paired = PairedTrace(wrapper, hooks)
        paired.sync(ids)
        effect = build_effect(paired, args.top)
        if args.generate:
            steered = _continuation(wrapper, ids, args.generate)
    if args.generate:
        generated = {"baseline": _continuation(wrapper, ids, args.generate), "intervened": steered}
    result = {
        "model": wrapper.name, "prompt_tokens": len(ids),
        "baseline": {"top": _top(effect.baseline_rows, False)},
        "intervened": {"top": _top(effect.rows, True)},
        "kl": effect.kl_next, "kl_unit": "nats, KL(intervened || baseline) of the next-token distribution",
        "interventions": to_json(items),
    }
    if generated is not None:
        result["generated"] = generated
    if args.json:
        print(json.dumps(result, ensure_ascii=False))
        return 0
    print("interventions: " + "; ".join(i.describe() for i in items))
    print(f"KL(intervened ‖ baseline) = {effect.kl_next:.4f} nats")
    print(f"{'intervened':<24} {'p':>8} {'Δp':>9}   {'baseline':<24} {'p':>8}")
    for a, b in zip(effect.rows, effect.baseline_rows):
        print(f"{a.text!r:<24} {a.int_p:8.4f} {a.delta_p:+9.4f}   {b.text!r:<24} {b.base_p:8.4f}")
    if generated is not None:
        for name in ("baseline", "intervened"):
            text = "".join(s["token"] for s in generated[name])
            total = sum(s["logprob"] for s in generated[name])
            print(f"{name}: {text!r} (Σ logprob {total:.3f}, geometric mean p {math.exp(total / max(1, len(generated[name]))):.3f})")
    return 0
