"""Decoding-lab benchmark on the bundled model: re-scoring a step, sampling, beam search, regex masks.

Prints one JSON object. Run with `uv run python bench/bench_decoding.py [--runs 10] [--threads 1 2]`.
Each thread setting runs in its own process so torch's thread pool is set before any work.
Nothing here is asserted: the numbers go to the issue notes.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PROMPT = "Once upon a time, in a small village at the edge of a great forest, there lived a girl who"


def _ms(samples: list[float]) -> float:
    return round(1000 * statistics.median(samples), 3)


def _timed(fn, runs: int) -> float:
    samples = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t)
    return _ms(samples)


def measure(threads: int, runs: int) -> dict:
    import torch

    torch.set_num_threads(threads)
    from explorer.engine.decoding import constraint as C
    from explorer.engine.decoding.beam import beam_search
    from explorer.engine.decoding.generate import generate_tokens
    from explorer.engine.decoding.pipeline import DecodingSettings, SeededSampler, lab_view, process_logits
    from explorer.engine.loading import load_model
    from explorer.engine.model import ModelWrapper
    from explorer.engine.trace import Trace

    w = ModelWrapper.from_loaded(load_model("bundled"))
    ids = w.encode(PROMPT)
    trace = Trace(w)
    trace.extend(ids)
    row = trace.last_row()
    combined = DecodingSettings(temperature=0.8, top_k=50, top_p=0.9, min_p=0.05, typical_p=0.95,
                                repetition_penalty=1.2, epsilon=3e-4, eta=3e-4, bans=[260], biases={1315: 2.0})
    out: dict = {"threads": threads, "prompt_tokens": len(ids), "vocab": w.vocab_size}
    process_logits(row, ids, combined, eos_ids=w.eos_ids)  # warm imports
    out["rescore_neutral_ms"] = _timed(lambda: process_logits(row, ids, DecodingSettings(), eos_ids=w.eos_ids), runs)
    out["rescore_combined_ms"] = _timed(lambda: process_logits(row, ids, combined, eos_ids=w.eos_ids), runs)
    out["lab_view_top30_combined_ms"] = _timed(lambda: lab_view(w, trace, combined, 30), runs)
    n = 20
    gen = _timed(lambda: generate_tokens(w, ids, combined, n, SeededSampler(0), trace=trace, stop_at_eos=False),
                 max(1, runs // 3))
    out["generate_20_tokens_ms"] = gen
    out["generate_ms_per_token"] = round(gen / n, 3)
    out["beam_4x20_ms"] = _timed(lambda: beam_search(w, ids, num_beams=4, max_new_tokens=20, trace=trace),
                                 max(1, runs // 3))
    t = time.perf_counter()
    C._tokenizers.clear()
    C.llg_tokenizer(w)
    out["llguidance_tokenizer_build_ms"] = round(1000 * (time.perf_counter() - t), 1)

    def compile_fresh():
        C._compiled.clear()
        C.compile_regex(w, r"[0-9]{4}-[0-9]{2}-[0-9]{2}")

    out["regex_compile_ms"] = _timed(compile_fresh, runs)
    compiled = C.compile_regex(w, r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
    date = w.tokenizer("2024-05-17", add_special_tokens=False)["input_ids"]

    def step_all():
        tracker = compiled.new_tracker()
        for k in range(len(date) + 1):
            tracker.step(date[:k])

    out["regex_mask_ms_per_token"] = round(_timed(step_all, runs) / (len(date) + 1), 3)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--runs", type=int, default=10)
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child is not None:
        print(json.dumps(measure(args.child, args.runs)))
        return
    results = []
    for th in args.threads:
        proc = subprocess.run([sys.executable, __file__, "--child", str(th), "--runs", str(args.runs)],
                              capture_output=True, text=True, cwd=ROOT)
        if proc.returncode != 0:
            results.append({"threads": th, "error": proc.stderr.strip().splitlines()[-1:]})
        else:
            results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    import platform

    print(json.dumps({"benchmark": "decoding", "machine": platform.machine(), "python": platform.python_version(),
                      "runs": args.runs, "results": results}, indent=1))


if __name__ == "__main__":
    main()
