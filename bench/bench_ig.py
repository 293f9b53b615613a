"""Integrated gradients on the bundled model: completeness error, gradient evaluations and time per position.

Prints one JSON object: for each prompt of ``tests/analyses/ig_prompts.py`` and each chosen
position, the adaptive rule's relative completeness error, gradient evaluations, forward
passes, panels and seconds, and (with ``--compare``) the fixed 50-node Gauss–Legendre rule's
error on the same integral. Run from the repository root:

    python bench/bench_ig.py --positions short:1,2,3,4,5 mixed:5,20,44,87 long:40,120
    python bench/bench_ig.py --positions mixed:20 --compare --threads 2
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--positions", nargs="+", default=["short:1,2,3,4,5", "mixed:20", "long:40"],
                   metavar="PROMPT:P,P", help="prompt (short, mixed, long) and positions")
    p.add_argument("--budget", type=int, default=400)
    p.add_argument("--baseline", default="zero", choices=("zero", "pad", "eos"))
    p.add_argument("--compare", action="store_true", help="also the fixed 50-node Gauss–Legendre rule")
    p.add_argument("--threads", type=int, default=None)
    args = p.parse_args()

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    from explorer.engine.capture import input_embeddings
    from explorer.engine.gradients import baseline_embeddings, integrated_gradients
    from explorer.engine.ig_adaptive import adaptive_integrated_gradients
    from explorer.engine.loading import load_model
    from explorer.engine.model import ModelWrapper
    from tests.analyses.ig_prompts import LONG, MIXED, SHORT

    texts = {"short": SHORT, "mixed": MIXED, "long": LONG}
    w = ModelWrapper.from_loaded(load_model("bundled"))
    rows = []
    for spec in args.positions:
        name, _, positions = spec.partition(":")
        ids = w.encode(texts[name])
        for pos in (int(x) for x in positions.split(",")):
            e = input_embeddings(w, ids[:pos])  # [pos, d]
            b = baseline_embeddings(w, ids[:pos], args.baseline)
            t0 = time.perf_counter()
            r = adaptive_integrated_gradients(w, e, b, ids[pos], max_evaluations=args.budget)
            row = {"prompt": name, "tokens": len(ids), "position": pos, "relative_error": r.relative_error,
                   "converged": r.converged, "gradient_evaluations": r.gradient_evaluations,
                   "forward_passes": r.forward_passes, "panels": r.panels,
                   "seconds": round(time.perf_counter() - t0, 2)}
            if args.compare:
                row["gauss_legendre_50_relative_error"] = integrated_gradients(w, e, b, ids[pos], steps=50).relative_error
            rows.append(row)
            print(json.dumps(row), file=sys.stderr)
    print(json.dumps({"machine": platform.platform(), "threads": torch.get_num_threads(), "baseline": args.baseline,
                      "budget": args.budget, "results": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
