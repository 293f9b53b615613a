"""Benchmark: the cost of an HTML report on the bundled model (prints JSON).

Measures, for a prompt of N tokens: the SHA-256 of the weights, computing the chosen modes
(through the same build_report the command uses), rendering the page, and the page's size.
Usage: uv run python bench/bench_report.py [--tokens 100] [--modes probability entropy residual]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--tokens", type=int, default=100)
    p.add_argument("--modes", nargs="+", default=["probability", "entropy", "residual"])
    args = p.parse_args()

    import torch

    from explorer.analyses.report_data import build_report
    from explorer.config import load_config
    from explorer.engine.loading import load_model
    from explorer.engine.model import ModelWrapper
    from explorer.engine.provenance import weights_sha256
    from explorer.engine.session import Session
    from explorer.io.html_report import render_report

    torch.set_num_threads(1)
    wrapper = ModelWrapper.from_loaded(load_model("bundled"))
    cfg = load_config()
    session = Session(wrapper, cfg, seed=0)
    text = ("Once upon a time, there was a small island where the people built boats and sailed "
            "to the mainland every morning to sell fish. ") * 20
    ids = session.ids_from_text(text)[: args.tokens]
    session.replace_ids(ids)
    session.compute()

    t0 = time.perf_counter()
    weights_sha256(wrapper.model)
    t_hash = time.perf_counter() - t0
    t0 = time.perf_counter()
    data = build_report(session, args.modes, hash_weights=False)
    t_modes = time.perf_counter() - t0
    t0 = time.perf_counter()
    html = render_report(data)
    t_render = time.perf_counter() - t0
    print(json.dumps({"tokens": len(ids), "modes": args.modes, "torch_threads": 1,
                      "weights_sha256_s": round(t_hash, 3), "modes_s": round(t_modes, 3),
                      "render_s": round(t_render, 4), "page_kb": round(len(html.encode()) / 1024, 1)}))


if __name__ == "__main__":
    main()
