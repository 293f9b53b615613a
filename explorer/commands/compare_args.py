"""The flags that open a second model beside the first (the app and the `compare` command share them)."""

from __future__ import annotations

import argparse


def add_compare_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("comparison (model B beside model A)")
    one = g.add_mutually_exclusive_group()
    one.add_argument("--compare", metavar="MODEL",
                     help='model B: "bundled", a hub repo id, a local directory or a .gguf file (same vocabulary as A)')
    one.add_argument("--compare-bf16", action="store_true",
                     help="model B = model A's own weights cast to bfloat16 (no second download)")
    one.add_argument("--compare-fp16", action="store_true",
                     help="model B = model A's own weights cast to float16 (no second download)")


def compare_request_from_args(args: argparse.Namespace):
    """The CompareRequest the flags name, or None when no comparison was asked for."""
    from explorer.engine.compare_load import CompareRequest

    return CompareRequest.from_flags(getattr(args, "compare", None), bool(getattr(args, "compare_bf16", False)),
                                     bool(getattr(args, "compare_fp16", False)))
