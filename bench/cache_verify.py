"""Time the converted-cache check: a full sha256 pass over every file vs the unchanged-stamp check.

    PYTHONPATH=. uv run python bench/cache_verify.py [ENTRY_DIR]

Default ENTRY_DIR: the bundled model's entry in the user cache (converted on first use).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from explorer.engine import converted_cache as cc
from explorer.engine.loading import bundled_gguf_path


def main() -> None:
    entry = Path(sys.argv[1]) if len(sys.argv) > 1 else cc.convert_gguf(bundled_gguf_path(), print)
    size = sum(p.stat().st_size for p in entry.iterdir() if p.is_file())
    (entry / cc.VERIFIED).unlink(missing_ok=True)  # force the full check
    t0 = time.perf_counter()
    problem = cc.verify_entry(entry)
    full = time.perf_counter() - t0
    t0 = time.perf_counter()
    cc.verify_entry(entry)
    quick = time.perf_counter() - t0
    print(f"entry {entry.name}: {size / 2**20:.0f} MB, problem={problem}")
    print(f"full sha256 check {full:.2f} s ({size / 2**20 / full:.0f} MB/s); unchanged-stamp check {quick * 1000:.2f} ms")


if __name__ == "__main__":
    main()
