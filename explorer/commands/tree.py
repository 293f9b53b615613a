"""`tree`: the seed notebook's token tree for a prompt, written as its JSON.

Progress goes to stderr; stdout gets the finished paths ranked by cumulative probability and,
last, one JSON line ``{"nodes", "forward_passes", "completed_paths", "seconds"}`` (building
time, model load excluded). Ctrl+C stops the build and still writes the partial tree, marked
``"incomplete": true``.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time

from explorer.commands.common import add_model_arguments, add_prompt_arguments, check_input_early, open_session, progress
from explorer.errors import InputError

NAME = "tree"
HELP = "build a token tree with the dynamic-threshold rule and write it as JSON"


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_prompt_arguments(p)
    g = p.add_argument_group("tree")
    g.add_argument("--min-branch-threshold", type=float, default=0.1, metavar="P",
                   help="branch on tokens above this probability while the queue is empty (default 0.1)")
    g.add_argument("--max-branch-threshold", type=float, default=0.5, metavar="P",
                   help="branch threshold once the queue reaches --soft-queue-limit (default 0.5)")
    g.add_argument("--soft-queue-limit", type=int, default=30, metavar="N",
                   help="queue length at which the threshold reaches its maximum (default 30)")
    g.add_argument("--candidate-threshold", type=float, default=0.01, metavar="P",
                   help="record up to 10 alternatives above this probability per node (default 0.01)")
    g.add_argument("--max-depth", type=int, default=1000, metavar="N", help="longest path in tokens (default 1000)")
    g.add_argument("--max-completed-paths", type=int, default=5, metavar="N",
                   help="stop after this many paths reach end-of-sequence (default 5)")
    g.add_argument("--eos-ids", metavar="IDS", help="comma-separated end-of-sequence ids (default: the model's)")
    g.add_argument("--chat", action="store_true", help="wrap the prompt in the model's chat template")
    g.add_argument("--max-memory", type=float, default=None, metavar="MB",
                   help="memory budget for the tree's cache (default: half the free memory)")
    g.add_argument("--out", required=True, metavar="FILE", help="where to write the tree JSON (- for standard output)")
    g.add_argument("--html", metavar="FILE", help="also write the tree as a self-contained, collapsible HTML page")
    add_model_arguments(p)


def parse_eos_ids(text: str | None) -> tuple[int, ...] | None:
    if text is None:
        return None
    parts = [t.strip() for t in text.split(",") if t.strip()]
    if not parts or not all(t.isdigit() for t in parts):
        raise InputError(f"--eos-ids must be comma-separated token ids such as 2,0; found {text!r}.")
    return tuple(int(t) for t in parts)


def _params(args: argparse.Namespace):
    from explorer.engine.tree import TreeParams

    params = TreeParams(args.min_branch_threshold, args.max_branch_threshold, args.soft_queue_limit,
                        args.candidate_threshold, args.max_depth, args.max_completed_paths)
    params.validate()
    return params


def run(args: argparse.Namespace) -> int:
    from explorer.commands.prompt_args import prompt_from_args, prompt_text_from_args
    from explorer.io.exports import check_writable, write_text

    params = _params(args)
    eos_ids = parse_eos_ids(args.eos_ids)
    if args.max_memory is not None and not args.max_memory > 0:
        raise InputError(f"--max-memory must be a positive number of megabytes, found {args.max_memory}.")
    out = check_writable(args.out)
    html_out = check_writable(args.html) if args.html else None
    check_input_early(args)
    prompt_text_from_args(args)  # an empty or missing prompt fails before the model loads

    from explorer.engine.tree import build_tree, tree_to_json

    session = open_session(args)
    wrapper = session.wrapper
    if eos_ids is not None and max(eos_ids) >= wrapper.vocab_size:
        raise InputError(f"--eos-ids holds {max(eos_ids)}, past the vocabulary of {wrapper.vocab_size} tokens.")
    text, ids = prompt_from_args(args, session, chat=args.chat)

    interrupted = {"flag": False}

    def on_sigint(_signum, _frame):
        if interrupted["flag"]:
            raise KeyboardInterrupt  # a second Ctrl+C gives up at once
        interrupted["flag"] = True
        progress("Stopping: writing the tree built so far (Ctrl+C again to abort)…")

    last = [0.0]

    def on_progress(p) -> None:
        now = time.monotonic()
        if now - last[0] >= 0.5:
            last[0] = now
            progress(f"tree: {p.nodes} nodes, depth {p.depth}, queue {p.queue}, "
                     f"{p.completed_paths}/{params.max_completed_paths} paths, {p.forward_passes} passes, {p.seconds:.1f} s")

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        if "full_logits" in wrapper.capabilities:
            result = build_tree(wrapper, ids, params, prompt_text=text, eos_ids=eos_ids, on_progress=on_progress,
                                should_stop=lambda: interrupted["flag"],
                                max_memory_bytes=None if args.max_memory is None else int(args.max_memory * 2**20))
        else:  # a served model: one request per node, a level in parallel
            from explorer.engine.remote.tree import build_tree_remote

            result = build_tree_remote(wrapper, ids, params, prompt_text=text, eos_ids=eos_ids,
                                       on_progress=on_progress, should_stop=lambda: interrupted["flag"])
    finally:
        signal.signal(signal.SIGINT, previous)

    write_text(out, tree_to_json(result, model=wrapper.name))
    if html_out is not None:
        from explorer.io.tree_html import render_tree_html

        write_text(html_out, render_tree_html(result.to_json_dict(wrapper.name)))
        progress(f"Wrote {html_out}.")
    if result.incomplete:
        progress(f"note: {result.message} (written with \"incomplete\": true)")
    progress(f"Wrote {'standard output' if out == '-' else out} ({result.nodes} nodes).")

    # With --out - the tree JSON owns standard output; the summary goes to stderr instead.
    summary = sys.stderr if args.out == "-" else sys.stdout
    paths = result.ranked_paths()
    print(f"Finished paths ranked by cumulative probability: {len(paths)} "
          f"({result.completed_paths} at end-of-sequence); explored mass {result.explored_mass():.6f}", file=summary)
    for i, path in enumerate(paths, 1):
        shown = path.text[:500] + ("..." if len(path.text) > 500 else "")
        shown = shown.replace("\n", "\\n")
        print(f"{i}. {path.cumulative_prob * 100:.4f}%  depth {path.depth}  {path.reason}  {shown}", file=summary)
    print(json.dumps(result.stats()), file=summary)
    summary.flush()
    return 130 if result.stop_reason == "cancelled" else 0
