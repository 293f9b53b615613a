"""Time to fill every mode on the bundled model, and the extra cost after appending one token.

Prints one JSON object: per torch thread count, per prompt length, per mode, the median of
``--repeats`` runs of a cold fill (fresh ResultCache: the capture forward pass included) and
of the fill after one more token was appended (what a keystroke costs when the mode is on).
Run from the repository root:

    python bench/bench_modes.py                       # everything (slow on a laptop CPU)
    python bench/bench_modes.py --lengths 100 --threads 1 --modes attention residual
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

TEXT = ("Once upon a time, in a small village by the sea, there lived an old fisherman who told stories "
        "to the children every evening. The stories were about storms, whales, lost ships and the stars "
        "that guided sailors home. ")


def prompt_ids(wrapper, n: int) -> list[int]:
    ids: list[int] = []
    while len(ids) < n + 1:
        ids += wrapper.encode(TEXT)
    return ids[: n + 1]  # n tokens, plus one to append


def fill(analysis, session, ids, cache) -> float:
    """Seconds to compute ``analysis`` for ``ids`` with the cursor on the last token (trace step excluded)."""
    from explorer.analyses.base import AnalysisContext
    from explorer.analyses.cache import compute_mode

    session.replace_ids(ids)
    view = session.compute()
    start = time.perf_counter()
    ctx = AnalysisContext(view=view, wrapper=session.wrapper, cursor=len(ids) - 1, params={})
    compute_mode(analysis, ctx, cache)
    return time.perf_counter() - start


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--lengths", type=int, nargs="+", default=[100, 500])
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--modes", nargs="+", default=None, help="mode names (default: every lazy mode)")
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    from explorer.analyses import ANALYSES
    from explorer.analyses.cache import ResultCache
    from explorer.config import load_config
    from explorer.engine.loading import load_model
    from explorer.engine.model import ModelWrapper
    from explorer.engine.session import Session

    wrapper = ModelWrapper.from_loaded(load_model("bundled"))
    modes = [a for a in ANALYSES if (a.name in args.modes if args.modes else a.lazy)]
    out = {"model": wrapper.name, "device": wrapper.device, "torch": torch.__version__,
           "machine": platform.machine(), "cpus": os.cpu_count(), "repeats": args.repeats,
           "unit": "seconds (median)", "results": {}}
    for threads in args.threads:
        torch.set_num_threads(threads)
        per_thread = out["results"][f"threads={threads}"] = {}
        for n in args.lengths:
            session = Session(wrapper, load_config())
            ids = prompt_ids(wrapper, n)
            row = per_thread[f"tokens={n}"] = {}
            for analysis in modes:
                cold, after_append = [], []
                for _ in range(args.repeats):
                    cache = ResultCache(100)  # cold: nothing computed for this prompt yet
                    cold.append(fill(analysis, session, ids[:n], cache))
                    # the same cache, one token later: what a keystroke costs with the mode on
                    after_append.append(fill(analysis, session, ids[: n + 1], cache))
                row[analysis.name] = {"fill": statistics.median(cold), "after_append_one": statistics.median(after_append)}
                print(f"threads={threads} tokens={n} {analysis.name}: {row[analysis.name]}", file=sys.stderr, flush=True)
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
