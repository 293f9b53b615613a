"""`patch`: activation patching from a clean into a corrupted prompt, as a layers × positions grid.

    main.py patch --clean TEXT --corrupt TEXT --target TOKEN [--contrast TOKEN]
                  [--site resid|attn|mlp] [--method exact|attribution] [--json]

A cell is the metric after patching that site of the clean run into the corrupted run at
that (layer, position): the clean value is the ceiling, the corrupted value the floor.
``--site resid`` patches ``blocks.L.hook_resid_pre``. Prompts of different lengths are
aligned from the end (said in the output). JSON: ``{"metric", "clean", "corrupt", "layers",
"positions", "tokens", "grid", ...}``.
"""

from __future__ import annotations

import argparse
import json

from explorer.commands.common import add_model_arguments, open_session, progress
from explorer.errors import InputError

NAME = "patch"
HELP = "activation patching (exact or attribution) between a clean and a corrupted prompt"


def add_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("patching")
    g.add_argument("--clean", required=True, metavar="TEXT", help="the clean prompt (its activations are patched in)")
    g.add_argument("--corrupt", required=True, metavar="TEXT", help="the corrupted prompt (the run that is patched)")
    g.add_argument("--target", required=True, metavar="TOKEN", help="the token whose logit (or log p) is measured")
    g.add_argument("--contrast", metavar="TOKEN", help="metric = logit(target) − logit(contrast); without: log p(target)")
    g.add_argument("--site", choices=("resid", "attn", "mlp"), default="resid",
                   help="resid = input of block L (hook_resid_pre), attn = hook_attn_out, mlp = hook_mlp_out")
    g.add_argument("--method", choices=("exact", "attribution"), default="exact",
                   help="exact: one patched run per cell; attribution: gradient approximation, one forward + one backward")
    g.add_argument("--json", action="store_true", help="print JSON")
    add_model_arguments(p)


def token_id(wrapper, text: str, flag: str) -> int:
    """The single token ``text`` encodes to (no special tokens), or one sentence saying why not."""
    if not text:
        raise InputError(f"{flag} is empty; give the token's text, e.g. {flag} ' Paris'.")
    ids = list(wrapper.tokenizer(text, add_special_tokens=False)["input_ids"])
    if len(ids) != 1:
        pieces = [wrapper.token_text(i).text for i in ids]
        raise InputError(f"{flag} {text!r} is {len(ids)} tokens {pieces}; give a text that is exactly one token.")
    return int(ids[0])


def run(args: argparse.Namespace) -> int:
    for flag, value in (("--clean", args.clean), ("--corrupt", args.corrupt)):
        if not value.strip():
            raise InputError(f"{flag} is empty; give the prompt text.")
    from explorer.engine.interventions.hooks import require_hookable
    from explorer.engine.interventions.patching import attribution_patching, exact_patching, make_setup

    session = open_session(args)
    w = session.wrapper
    require_hookable(w.model)
    clean, corrupt = w.encode(args.clean), w.encode(args.corrupt)
    target = token_id(w, args.target, "--target")
    contrast = token_id(w, args.contrast, "--contrast") if args.contrast is not None else None
    setup = make_setup(w, clean, corrupt, target, contrast, args.site)
    if len(clean) != len(corrupt):
        progress(f"patch: the prompts have {len(clean)} and {len(corrupt)} tokens; positions are aligned from the end.")
    if args.method == "exact":
        def on_progress(done: int, total: int) -> None:
            progress(f"patch: {done}/{total} cells")
        res = exact_patching(w, setup, on_progress=on_progress)
    else:
        res = attribution_patching(w, setup)
    out = res.to_json()
    out.update({"model": w.name, "target": {"token": args.target, "id": target},
                "contrast": None if contrast is None else {"token": args.contrast, "id": contrast}})
    if args.json:
        print(json.dumps(out, ensure_ascii=False))
        return 0
    layout = "prompts of the same length" if res.aligned == "same length" else "positions aligned from the end"
    print(f"{res.metric}: clean {res.clean:.4f}, corrupted {res.corrupt:.4f} ({res.method}, site {res.site}, {layout})")
    print("layer " + " ".join(f"{t[:8]!r:>11}" for t in res.tokens))
    for L, row in zip(res.layers, res.grid):
        print(f"{L:5d} " + " ".join(f"{v:11.4f}" if v is not None else f"{'-':>11}" for v in row))
    return 0
