"""`steer-vector`: build a difference-of-means steering vector from two prompt files and save it.

    main.py steer-vector --layer L --positive FILE --negative FILE --out vec.safetensors [--json]

``v = mean_P h_L[last] − mean_N h_L[last]`` at ``blocks.L.hook_resid_post``, averaged at the
last token of each prompt (one prompt a line). Saved as safetensors key ``layer.L`` with the
recipe in the metadata; ``intervene --steer layer=L,vector=FILE`` reads it.
"""

from __future__ import annotations

import argparse
import json

from explorer.commands.common import add_model_arguments, open_session, progress
from explorer.errors import InputError

NAME = "steer-vector"
HELP = "build a difference-of-means steering vector (positive minus negative prompts) and save it"


def add_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("vector")
    g.add_argument("--layer", type=int, required=True, metavar="L", help="block whose output (hook_resid_post) is read")
    g.add_argument("--positive", required=True, metavar="FILE", help="text file, one prompt a line")
    g.add_argument("--negative", required=True, metavar="FILE", help="text file, one prompt a line")
    g.add_argument("--out", required=True, metavar="FILE", help="the .safetensors file to write")
    g.add_argument("--json", action="store_true", help="print a JSON summary")
    add_model_arguments(p)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from explorer.engine.interventions.vectors import read_prompt_lines

    if args.layer < 0:
        raise InputError(f"--layer must be ≥ 0, found {args.layer}.")
    if Path(args.out).suffix.lower() != ".safetensors":
        raise InputError(f"--out {args.out}: the vector is written as a .safetensors file.")
    positive, negative = read_prompt_lines(args.positive), read_prompt_lines(args.negative)

    from explorer.engine.interventions.vectors import diff_of_means, save_vector

    session = open_session(args)
    w = session.wrapper
    progress(f"steer-vector: {len(positive)} positive and {len(negative)} negative prompts at layer {args.layer}")
    v, meta = diff_of_means(w, positive, negative, args.layer)
    path = save_vector(args.out, v, args.layer, meta)
    summary = {"out": str(path), "layer": args.layer, "width": int(v.shape[0]), "norm": float(v.norm()),
               "n_positive": len(positive), "n_negative": len(negative), "position": meta["position"],
               "site": meta["site"]}
    print(json.dumps(summary) if args.json else
          f"Wrote {path}: layer {args.layer}, width {summary['width']}, norm {summary['norm']:.4f} "
          f"(mean of {len(positive)} positive minus {len(negative)} negative last-token residuals).")
    return 0
