"""Remote-engine benchmark: keystroke latency through a real llama-server on the bundled weights.

Starts llama-server (built by scripts/build_llama_server.py) on the all-float32 GGUF, opens
the remote engine, scores a prompt, then times appends (one request each) and pops (no
request), and a small token tree. Prints one JSON object; nothing is asserted.
Run with `uv run python bench/bench_remote.py [--steps 20]`.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

TEXT = ("Once upon a time, in a small village at the edge of a great forest, there lived a girl who loved "
        "to read. Every morning she walked to the old library.")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()

    from explorer.config import load_config
    from explorer.engine.remote.open import open_remote_engine
    from explorer.engine.remote.tree import build_tree_remote
    from explorer.engine.session import Session
    from explorer.engine.tree import TreeParams
    from tests.remote.conftest import SERVED_NAME, LlamaServer

    t0 = time.perf_counter()
    server = LlamaServer()
    started = time.perf_counter() - t0
    try:
        engine = open_remote_engine(server.url, served_model=SERVED_NAME, tokenizer="bundled")
        session = Session(engine, load_config(None), prompts=[engine.encode(TEXT)])
        t = time.perf_counter()
        view = session.compute()
        first = time.perf_counter() - t
        appends, pops = [], []
        for _ in range(args.steps):
            session.append(view.candidates[0].id)
            t = time.perf_counter()
            view = session.compute()
            appends.append(time.perf_counter() - t)
        for _ in range(args.steps // 2):
            session.pop()
            t = time.perf_counter()
            view = session.compute()
            pops.append(time.perf_counter() - t)
        t = time.perf_counter()
        tree = build_tree_remote(engine, engine.encode("The three primary colours are"),
                                 TreeParams(max_depth=4, max_completed_paths=3))
        tree_s = time.perf_counter() - t
        print(json.dumps({
            "server_start_s": round(started, 3),
            "prompt_tokens": len(engine.encode(TEXT)),
            "first_compute_s": round(first, 3),
            "append_median_ms": round(1000 * statistics.median(appends), 2),
            "pop_median_ms": round(1000 * statistics.median(pops), 3),
            "tree": {"nodes": tree.nodes, "requests": tree.forward_passes, "seconds": round(tree_s, 3)},
            "requests_sent": len(engine.client.sent),
        }))
    finally:
        server.stop()


if __name__ == "__main__":
    main()
