"""`beam`: beam search from a prompt, step by step (every beam, dropped beams, the winner), as text or JSON.

Agrees with ``model.generate(num_beams=..., do_sample=False, length_penalty=...,
max_new_tokens=..., early_stopping=...)`` on the winning sequence and its score.
"""

from __future__ import annotations

import argparse
import json

from explorer.commands.common import (add_model_arguments, add_prompt_arguments, check_input_early,
                                      open_session, progress, prompt_ids_from_args,
                                      require_capabilities)

NAME = "beam"
HELP = "run beam search from a prompt and show every step (beams, scores, dropped beams, winner)"


def _early_stopping(text: str):
    value = {"false": False, "true": True, "never": "never"}.get(text.lower())
    if value is None:
        raise argparse.ArgumentTypeError(f'must be true, false or never, not "{text}"')
    return value


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_prompt_arguments(p)
    p.add_argument("--num-beams", dest="num_beams", type=int, default=4, metavar="N", help="beams kept (1..64, default 4)")
    p.add_argument("--length-penalty", dest="length_penalty", type=float, default=1.0, metavar="L",
                   help="score = sum log p / length**L; > 0 favours longer (default 1.0)")
    p.add_argument("--max-new-tokens", dest="max_new_tokens", type=int, default=20, metavar="N",
                   help="most tokens to generate (1..1024, default 20)")
    p.add_argument("--early-stopping", dest="early_stopping", type=_early_stopping, default=False,
                   metavar="{false,true,never}", help="transformers' early_stopping (default false, as generate())")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    add_model_arguments(p)


def _state_json(wrapper, s) -> dict:
    return {"tokens": list(s.tokens), "text": wrapper.decode(s.tokens), "token_logprobs": list(s.token_logprobs),
            "cum_logprob": s.cum_logprob, "score": s.score, "parent": s.parent, "status": s.status,
            "ended_with_eos": s.ended_with_eos}


def run(args: argparse.Namespace) -> int:
    from explorer.engine.decoding.beam import _check

    _check(args.num_beams, args.length_penalty, args.max_new_tokens, args.early_stopping)  # before the model loads
    check_input_early(args)
    session = open_session(args)
    require_capabilities(session.wrapper, {"full_logits"}, "Beam search")
    ids = prompt_ids_from_args(args, session)
    from explorer.engine.decoding.beam import beam_search

    wrapper = session.wrapper
    result = beam_search(wrapper, ids, num_beams=args.num_beams, length_penalty=args.length_penalty,
                         max_new_tokens=args.max_new_tokens, early_stopping=args.early_stopping,
                         on_step=lambda i, n: progress(f"beam step {i}/{n}") if not args.json else None)
    if args.json:
        print(json.dumps({
            "model": wrapper.name, "prompt": wrapper.decode(ids), "token_ids": list(ids),
            "parameters": {"num_beams": result.num_beams, "length_penalty": result.length_penalty,
                           "max_new_tokens": result.max_new_tokens, "early_stopping": result.early_stopping},
            "steps": [{"index": st.index,
                       "candidates": [_state_json(wrapper, c) for c in st.candidates],
                       "running": [_state_json(wrapper, c) for c in st.running],
                       "finished_now": [_state_json(wrapper, c) for c in st.finished_now],
                       "dropped": [_state_json(wrapper, c) for c in st.dropped]} for st in result.steps],
            "finished": [_state_json(wrapper, c) for c in result.finished],
            "winner": _state_json(wrapper, result.winner),
            "winner_text": wrapper.decode(result.winner_ids),
            "stopped": result.stopped,
        }, ensure_ascii=False))
        return 0
    print(f"prompt: {wrapper.decode(ids)!r}  (beams {result.num_beams}, length penalty {result.length_penalty:g}, "
          f"early stopping {result.early_stopping})")
    for st in result.steps:
        print(f"step {st.index}:")
        for c in st.candidates:
            last = wrapper.token_text(c.tokens[-1]).visible()
            print(f"  {c.status:<8} from beam {c.parent}  +{last!s:<16} log p {c.token_logprobs[-1]:8.3f}  "
                  f"cum {c.cum_logprob:8.3f}  score {c.score:8.4f}")
    print(f"stopped: {result.stopped}")
    for rank, h in enumerate(result.finished, 1):
        mark = "winner" if rank == 1 else f"#{rank}"
        print(f"{mark:>6}  score {h.score:8.4f}  cum {h.cum_logprob:8.3f}  {wrapper.decode(h.tokens)!r}")
    return 0
