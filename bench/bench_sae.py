"""Benchmark: time to show SAE features for a cursor move, cold and cached (prints JSON).

    uv run python bench/bench_sae.py [--runs 5] [--tokens 64] [--sae saes/smollm2-L12-topk32 --layer 12]

Measured on the bundled model through the features mode (what the UI calls), with torch
threads 1 and 2:

* ``load_s``: first use of the SAE (reading and checking the weights);
* ``cold_s``: a prompt never seen: one forward pass stopped after the SAE layer, the SAE on
  every token, the result stored in both cache levels;
* ``cursor_move_s``: the same prompt, another cursor position (memory cache hit);
* ``disk_s``: the same prompt after the memory level was cleared (disk cache hit);
* ``select_feature_s``: colouring the prompt by another feature (memory hit).

Each figure is the median of ``--runs`` runs (each cold run uses a new prompt), with min/max.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

TEXT = ("The old lighthouse keeper climbed the stairs every evening to light the lamp, and the ships "
        "that passed the rocky coast trusted its beam to guide them home through storms and fog. ")


def stats(xs: list[float]) -> dict:
    return {"median": round(statistics.median(xs), 5), "min": round(min(xs), 5), "max": round(max(xs), 5), "n": len(xs)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--tokens", type=int, default=64, help="prompt length in tokens")
    ap.add_argument("--sae", default=str(Path(__file__).resolve().parent.parent / "saes" / "smollm2-L12-topk32"))
    ap.add_argument("--layer", type=int, default=12)
    args = ap.parse_args()

    import torch

    import explorer.engine.sae.catalog as catalog_module

    from explorer.analyses.base import AnalysisContext
    from explorer.analyses.sae_features import SaeFeaturesMode
    from explorer.config import Config, ModelSection, SaeEntry
    from explorer.engine.loading import load_model
    from explorer.engine.model import ModelWrapper
    from explorer.engine.sae.catalog import catalog_for
    from explorer.engine.session import Session

    wrapper = ModelWrapper.from_loaded(load_model("bundled", device="cpu"))
    base_ids = wrapper.encode(TEXT * 8)
    mode = SaeFeaturesMode()
    results = {}
    for threads in (1, 2):
        torch.set_num_threads(threads)
        # A fresh, empty disk cache per setting, so "cold" is never a disk hit of an earlier round.
        feature_dir = Path(tempfile.mkdtemp(prefix=f"bench-sae-t{threads}-"))
        catalog_module.feature_cache_dir = lambda: feature_dir
        config = Config(model=ModelSection(enable_sae=True), sae=(SaeEntry(layer=args.layer, path=args.sae),),
                        source=f"<bench threads={threads}>")
        session = Session(wrapper, config, prompts=[base_ids[: args.tokens]])
        cold, move, disk, select = [], [], [], []
        t0 = time.perf_counter()
        catalog = catalog_for(config, wrapper)
        catalog.load(args.layer)
        load_s = time.perf_counter() - t0
        for run in range(args.runs):
            ids = base_ids[run + 1: run + 1 + args.tokens]  # a prompt not seen before
            session.replace_ids(ids)
            view = session.compute()  # the trace: not part of the SAE's cost

            def ctx(cursor, **extra):
                return AnalysisContext(view=view, wrapper=wrapper, cursor=cursor,
                                       params={"config": config, "layer": args.layer, **extra})

            t = time.perf_counter()
            res = mode.compute(ctx(len(ids) - 1))
            cold.append(time.perf_counter() - t)
            t = time.perf_counter()
            mode.compute(ctx(len(ids) // 2))
            move.append(time.perf_counter() - t)
            catalog.cache.clear_memory()
            t = time.perf_counter()
            mode.compute(ctx(len(ids) // 3))
            disk.append(time.perf_counter() - t)
            other = res.extra["features"][-1]["index"] if res.extra["features"] else 0
            t = time.perf_counter()
            mode.compute(ctx(len(ids) // 2, feature=other))
            select.append(time.perf_counter() - t)
        results[f"threads_{threads}"] = {"load_s": round(load_s, 4), "cold_s": stats(cold), "cursor_move_s": stats(move),
                                         "disk_s": stats(disk), "select_feature_s": stats(select)}
    print(json.dumps({"bench": "sae_features", "model": wrapper.name, "sae": catalog.load(args.layer).describe(),
                      "prompt_tokens": args.tokens, "runs": args.runs, "device": "cpu",
                      "cpu_count": os.cpu_count(), "load_average": os.getloadavg()[0], "results": results}, indent=1))


if __name__ == "__main__":
    main()
