"""`cache`: show the disk caches (where, how big, their budgets) and clear them.

    main.py cache [--clear [NAME]] [--json]

Only rebuildable files live in the caches (converted models, SAE features of stepped
prompts); the user's sessions and saved prompts are in the data folder and never touched.
"""

from __future__ import annotations

import argparse
import json

NAME = "cache"
HELP = "show the disk caches (size, budget, where) or clear them with --clear [NAME]"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from explorer.io.cache_budget import AREAS

    p.add_argument("--clear", nargs="?", const="all", default=None, metavar="NAME",
                   help=f"delete every entry of one cache ({', '.join(AREAS)}) or of all (no value)")
    p.add_argument("--json", action="store_true", help="print JSON")


def _mb(n: int) -> str:
    return f"{n / 2**20:,.1f} MB"


def run(args: argparse.Namespace) -> int:
    from explorer.io import cache_budget

    freed = None
    if args.clear is not None:
        name = None if args.clear == "all" else cache_budget.area(args.clear).name  # unknown: one sentence
        freed = cache_budget.clear(name)
    rows = cache_budget.summary()
    if args.json:
        print(json.dumps({"caches": rows, **({"freed_bytes": freed} if freed is not None else {})}))
        return 0
    if freed is not None:
        print(f"Freed {_mb(freed)}.")
    for r in rows:
        print(f"{r['name']:<13} {_mb(r['bytes']):>12} of {_mb(r['budget_bytes']):>12}  {r['entries']:>5} entries  "
              f"{r['path']}  ({r['what']})")
    print("Budgets: TOKEN_EXPLORER_CACHE_MB_<NAME> (MB); the least recently used entries go first.")
    return 0
