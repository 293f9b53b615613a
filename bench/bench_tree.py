"""Benchmark: the batched token-tree builder against the notebook's clone-per-child baseline.

Same model (bundled SmolLM2), same prompt and parameters, torch threads 1 and 2, several runs,
alternating the two builders so both see the same machine load. Each run is a fresh process,
so its memory peak is its own: a sampler thread reads the resident set size every 2 ms while
the tree is built, and the result is the peak above the resident size just before building
(the model weights and a warm-up build are excluded). The KV-cache peak each builder reports is printed too
(exact, independent of the allocator). Wall-clock and process CPU time are both reported: on
a shared, loaded machine the CPU time of a one-thread run is the steadier number. Prints one
JSON document on stdout.

    python bench/bench_tree.py                      # 3 runs x threads 1,2
    python bench/bench_tree.py --runs 5 --threads 1 --max-depth 25
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# A longer prompt (~150 tokens): the baseline copies it into every queued node's cache, the
# batched builder stores it once. The short prompt is the notebook's own example.
SCENARIOS = {
    "short-prompt": ("The capital of France is", 20),
    "long-prompt": (
        "The history of the printing press begins in the fifteenth century, when Johannes Gutenberg, "
        "a goldsmith from Mainz, combined movable metal type, oil-based inks and a wooden press adapted "
        "from those used to make wine. Before him, books in Europe were copied by hand, mostly in "
        "monasteries, and a single Bible could take a scribe years to finish. Within fifty years of his "
        "first printed Bible, presses were running in more than two hundred cities, and millions of "
        "volumes had been printed. Prices fell, literacy spread, and ideas travelled faster than ever "
        "before. Historians still debate how much the press caused and how much it only accelerated. "
        "In one sentence, the most important consequence of the printing press was", 30),
}
PAGE = os.sysconf("SC_PAGE_SIZE")


def _rss() -> int:
    with open("/proc/self/statm", encoding="ascii") as fh:
        return int(fh.read().split()[1]) * PAGE


class _PeakSampler(threading.Thread):
    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak = _rss()
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            self.peak = max(self.peak, _rss())
            time.sleep(0.002)


def child(impl: str, threads: int, args: argparse.Namespace) -> dict:
    """One measured build in this process."""
    import torch

    torch.set_num_threads(threads)
    sys.path.insert(0, str(REPO))
    from explorer.engine.loading import load_model
    from explorer.engine.model import ModelWrapper
    from explorer.engine.tree import TreeParams, build_tree

    wrapper = ModelWrapper.from_loaded(load_model("bundled", device="cpu"))
    ids = wrapper.encode(args.prompt)
    params = TreeParams(args.min_branch_threshold, args.max_branch_threshold, args.soft_queue_limit,
                        args.candidate_threshold, args.max_depth, args.max_completed_paths)
    def build(p: TreeParams):
        if impl == "fast":
            r = build_tree(wrapper, ids, p, prompt_text=args.prompt)
            return r.nodes, r.forward_passes, r.peak_cache_bytes
        from bench.tree_baseline import build_token_tree_baseline

        _root, stats = build_token_tree_baseline(wrapper.model, wrapper.tokenizer, ids, args.prompt,
                                                 wrapper.eos_ids, **p.as_dict())
        return stats["total_nodes"], stats["forward_passes"], stats["peak_cache_bytes"]

    # Warm-up: a small tree with the same builder, so one-time library workspaces (GEMM packing,
    # thread pools) are not counted as the tree's time or memory.
    build(TreeParams(params.min_branch_threshold, params.max_branch_threshold, params.soft_queue_limit,
                     params.candidate_threshold, 4, params.max_completed_paths))
    import gc

    gc.collect()
    before = _rss()
    sampler = _PeakSampler()
    sampler.start()
    t0, c0 = time.perf_counter(), time.process_time()
    nodes, passes, cache_peak = build(params)
    seconds, cpu_seconds = time.perf_counter() - t0, time.process_time() - c0
    sampler.done.set()
    sampler.join()
    return {"impl": impl, "threads": threads, "nodes": nodes, "forward_passes": passes,
            "seconds": round(seconds, 3), "nodes_per_s": round(nodes / seconds, 2),
            "cpu_seconds": round(cpu_seconds, 3), "nodes_per_cpu_s": round(nodes / cpu_seconds, 2),
            "peak_rss_above_model_mb": round((sampler.peak - before) / 2**20, 1),
            "peak_kv_cache_mb": round(cache_peak / 2**20, 1)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scenarios", default=",".join(SCENARIOS), help="comma-separated: " + ", ".join(SCENARIOS))
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--threads", default="1,2", help="comma-separated torch thread counts")
    p.add_argument("--min-branch-threshold", type=float, default=0.1)
    p.add_argument("--max-branch-threshold", type=float, default=0.5)
    p.add_argument("--soft-queue-limit", type=int, default=30)
    p.add_argument("--candidate-threshold", type=float, default=0.01)
    p.add_argument("--max-depth", type=int, default=None, help="default: the scenario's (20 short, 30 long)")
    p.add_argument("--max-completed-paths", type=int, default=5)
    p.add_argument("--child", nargs=3, metavar=("SCENARIO", "IMPL", "THREADS"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        scenario, impl, threads = args.child
        args.prompt, depth = SCENARIOS[scenario]
        args.max_depth = args.max_depth or depth
        run = child(impl, int(threads), args)
        run["scenario"] = scenario
        print(json.dumps(run))
        return

    passthrough = [a for a in sys.argv[1:]]
    runs: list[dict] = []
    for scenario in args.scenarios.split(","):
        for threads in [int(t) for t in args.threads.split(",")]:
            for r in range(args.runs):
                for impl in ("baseline", "fast"):  # alternate so both see the same load
                    cmd = [sys.executable, __file__, *passthrough, "--child", scenario, impl, str(threads)]
                    env = dict(os.environ, HF_HUB_OFFLINE="1", OMP_NUM_THREADS=str(threads))
                    out = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, env=env, check=True)
                    run = json.loads(out.stdout.strip().splitlines()[-1])
                    print(f"{scenario} {impl:8} threads={threads} run {r + 1}: {run['nodes']} nodes, "
                          f"{run['nodes_per_s']} nodes/s ({run['nodes_per_cpu_s']} per CPU s), "
                          f"{run['peak_rss_above_model_mb']} MB",
                          file=sys.stderr, flush=True)
                    runs.append(run)

    summary = {}
    for key in sorted({(r["scenario"], r["threads"]) for r in runs}):
        row = {}
        for impl in ("baseline", "fast"):
            mine = [r for r in runs if r["impl"] == impl and (r["scenario"], r["threads"]) == key]
            row[impl] = {
                "nodes": mine[0]["nodes"],
                "forward_passes": mine[0]["forward_passes"],
                "median_nodes_per_s": statistics.median(r["nodes_per_s"] for r in mine),
                "median_seconds": statistics.median(r["seconds"] for r in mine),
                "median_nodes_per_cpu_s": statistics.median(r["nodes_per_cpu_s"] for r in mine),
                "max_peak_rss_above_model_mb": max(r["peak_rss_above_model_mb"] for r in mine),
                "peak_kv_cache_mb": mine[0]["peak_kv_cache_mb"],
            }
        row["speedup"] = round(row["fast"]["median_nodes_per_s"] / row["baseline"]["median_nodes_per_s"], 2)
        row["speedup_cpu_time"] = round(row["fast"]["median_nodes_per_cpu_s"]
                                        / row["baseline"]["median_nodes_per_cpu_s"], 2)
        row["same_node_count"] = row["fast"]["nodes"] == row["baseline"]["nodes"]
        summary[f"{key[0]}/threads_{key[1]}"] = row
    print(json.dumps({"model": "bundled SmolLM2-135M-Instruct (float32, CPU)",
                      "scenarios": {k: {"prompt": v[0], "max_depth": args.max_depth or v[1]} for k, v in SCENARIOS.items()},
                      "parameters": {k: getattr(args, k) for k in ("min_branch_threshold", "max_branch_threshold",
                                                                   "soft_queue_limit", "candidate_threshold",
                                                                   "max_completed_paths")},
                      "cpu_count": os.cpu_count(), "load_average": os.getloadavg(),
                      "summary": summary, "runs": runs}, indent=2))


if __name__ == "__main__":
    main()
