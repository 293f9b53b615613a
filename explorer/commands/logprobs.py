"""`logprobs`: generate with per-token log-probabilities and append the seed's JSONL record.

Greedy by default, ``--sample --seed N`` for a replayable sampled run; ``--guide TEXT`` forces
a prefix after a blank line (the notebook's guided generation) and generation goes on after
it; ``--guide-tokenization`` chooses how a token crossing that blank line is scored
(``explorer.engine.guided``) and the record says which was. stdout gets the response and, last, one JSON line with the counts.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from explorer.commands.common import add_model_arguments, add_prompt_arguments, check_input_early, open_session, progress
from explorer.errors import InputError

NAME = "logprobs"
HELP = "generate with per-token logprobs (optionally after a forced guide) and append a JSONL record"


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_prompt_arguments(p)
    g = p.add_argument_group("generation")
    g.add_argument("--guide", metavar="TEXT", help="force this prefix (after a blank line), then continue")
    g.add_argument("--guide-tokenization", choices=("separate", "joint"), default="separate",
                   help="when a token would cross the blank line before the guide: score the prompt and the guide "
                        "tokenized apart (separate, default) or the whole text as the tokenizer splits it (joint); "
                        "recorded in the JSONL")
    g.add_argument("--max-new-tokens", type=int, default=100, metavar="N", help="tokens to generate (default 100)")
    g.add_argument("--top", type=int, default=5, metavar="K", help="alternatives recorded per token (1-20, default 5)")
    g.add_argument("--sample", action="store_true", help="sample at temperature 1 instead of greedy (use --seed)")
    g.add_argument("--chat", action="store_true", help="wrap the prompt in the model's chat template")
    g.add_argument("--out", required=True, metavar="FILE", help="JSONL file to append the record to (- for standard output)")
    add_model_arguments(p)


def run(args: argparse.Namespace) -> int:
    from explorer.commands.prompt_args import prompt_from_args, prompt_text_from_args
    from explorer.engine.decoding.generate import TOP_STORED
    from explorer.io.exports import append_jsonl, check_writable

    if not 1 <= args.max_new_tokens <= 100_000:
        raise InputError(f"--max-new-tokens must be between 1 and 100000, found {args.max_new_tokens}.")
    if not 1 <= args.top <= TOP_STORED:
        raise InputError(f"--top must be between 1 and {TOP_STORED}, found {args.top}.")
    if args.guide is not None and not args.guide.strip():
        raise InputError("--guide is empty; give the text to force, or leave the flag out.")
    out = check_writable(args.out)
    check_input_early(args)
    prompt = prompt_text_from_args(args)

    from explorer.engine.decoding.generate import generate, logprob_record
    from explorer.engine.guided import guided_input

    session = open_session(args)
    wrapper = session.wrapper
    guided = None
    if args.guide is not None:
        guided = guided_input(wrapper, prompt, args.guide, tokenization=args.guide_tokenization, chat=args.chat)
        context, forced = guided.context, guided.forced
        if guided.join_merges:
            progress(f"logprobs: a token crosses the blank line before the guide; scoring the {guided.tokenization} "
                     "tokenization (see --guide-tokenization).")
    else:
        _text, context = prompt_from_args(args, session, chat=args.chat)
        forced = []
    seed = args.seed if args.seed is not None else 0

    count = [0]

    def on_token(_step) -> None:
        count[0] += 1
        if count[0] % 20 == 0:
            progress(f"logprobs: {count[0]} tokens")

    from explorer.engine.interface import FULL_LOGITS

    if FULL_LOGITS not in wrapper.capabilities:  # a served model: the server runs each step
        from explorer.engine.remote.generate import generate_remote as generate
    t0 = time.perf_counter()
    gen = generate(wrapper, context, args.max_new_tokens, sample=args.sample, seed=seed, forced_ids=forced,
                   on_token=on_token)
    seconds = time.perf_counter() - t0
    extra = {"model": wrapper.name, "sampled": bool(args.sample), "chat": bool(args.chat),
             "stop_reason": gen.stop_reason}
    if args.sample:
        extra["seed"] = seed
    if guided is not None:
        extra.update(guided.record_fields(wrapper.decode))
    record = logprob_record(wrapper, prompt, gen.steps, top=args.top, guide=args.guide, extra=extra)
    append_jsonl(out, record)
    progress(f"Appended a record of {len(gen.steps)} tokens to {'standard output' if out == '-' else out}.")
    # With --out - the JSONL record owns standard output; the summary goes to stderr instead.
    summary = sys.stderr if args.out == "-" else sys.stdout
    print(record["response"], file=summary)
    print(json.dumps({"tokens": len(gen.generated_ids), "forced_tokens": len(gen.steps) - len(gen.generated_ids),
                      "stop_reason": gen.stop_reason, "seconds": round(seconds, 3)}), file=summary)
    return 0
