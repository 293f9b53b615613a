"""`next`: the next-token table the app would show for a prompt, as text or JSON."""

from __future__ import annotations

import argparse
import json

from explorer.commands.common import (add_model_arguments, add_prompt_arguments, check_input_early,
                                      config_from_args, open_session, prompt_ids_from_args)
from explorer.errors import InputError

NAME = "next"
HELP = "print the next-token table for a prompt (token, id, probability, logit, z-score)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_prompt_arguments(p)
    p.add_argument("--top", type=int, default=None, metavar="K",
                   help="how many tokens to list (default: [display] tokens_to_show)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    add_model_arguments(p)


def run(args: argparse.Namespace) -> int:
    if args.top is not None and not 1 <= args.top <= 100_000:
        raise InputError(f"--top must be between 1 and 100000, found {args.top}.")
    check_input_early(args)
    cfg = config_from_args(args)
    if args.top is not None:
        import dataclasses

        cfg = cfg.replace(display=dataclasses.replace(cfg.display, tokens_to_show=args.top))
    session = open_session(args, cfg)
    ids = prompt_ids_from_args(args, session)
    session.replace_ids(ids)
    view = session.compute()
    if args.json:
        print(json.dumps({
            "model": session.wrapper.name,
            "prompt": session.wrapper.decode(view.ids),
            "token_ids": list(view.ids),
            "entropy_bits": view.next_entropy_bits,
            "energy": view.next_energy,
            "notes": list(view.notes),
            "candidates": [{"rank": c.rank, "token": c.text.text, "id": c.id, "prob": c.prob,
                            "logprob": c.logprob, "logit": c.logit, "zscore": c.zscore,
                            "special": c.text.kind == "special"} for c in view.candidates],
        }, ensure_ascii=False))
        return 0
    for note in view.notes:
        print(f"note: {note}")
    print(f"{'rank':>4}  {'token':<24} {'id':>7}  {'prob':>8}  {'logit':>8}  {'z':>6}")
    for c in view.candidates:
        print(f"{c.rank:>4}  {c.text.visible()[:24]:<24} {c.id:>7}  {c.prob:>8.4f}  {c.logit:>8.3f}  {c.zscore:>6.2f}")
    print(f"entropy {view.next_entropy_bits:.3f} bits, energy {view.next_energy:.3f}")
    return 0
