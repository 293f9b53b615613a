"""`report`: one self-contained HTML file with a prompt coloured by the chosen modes.

Opens offline (inline CSS and JavaScript, nothing fetched). Every token has a tooltip with
its probability, rank, top alternatives and each mode's number; the cursor token's
per-layer series are inline SVG plots; the decoding-lab flags add the next-token table
under those settings; the provenance names the model, the SHA-256 of its weights, dtype,
device, seed, versions and date. ``--out -`` writes the page to standard output.
"""

from __future__ import annotations

import argparse
import sys

from explorer.commands.common import (add_model_arguments, add_prompt_arguments, check_input_early,
                                      config_from_args, open_session, progress, prompt_ids_from_args)
from explorer.commands.decoding_args import add_decoding_arguments, check_decoding_early, decoding_requested
from explorer.errors import InputError

NAME = "report"
HELP = "write a self-contained HTML report of a prompt coloured by one or more modes"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from explorer.analyses.registry import analysis_names

    add_prompt_arguments(p)
    g = p.add_argument_group("report")
    g.add_argument("--mode", action="append", required=True, metavar="NAME",
                   help="a mode to colour the prompt by (repeatable, shown in this order): " + ", ".join(analysis_names()))
    g.add_argument("--option", action="append", default=[], metavar="MODE.KEY=VALUE",
                   help="a mode option, e.g. attention.method=raw or residual.layer=12 (repeatable)")
    g.add_argument("--position", type=int, default=None, metavar="P",
                   help="the cursor token, whose per-layer plots are shown (default: the last; negative from the end)")
    g.add_argument("--no-hash", action="store_true", help="skip the SHA-256 of the weights (saves a few seconds on the bundled model)")
    g.add_argument("--out", required=True, metavar="FILE", help="the HTML file to write, or - for standard output")
    add_decoding_arguments(p)
    add_model_arguments(p)


def _value(text: str):
    """An option value: an integer, true/false, or the text itself."""
    low = text.strip().lower()
    if low in ("true", "false"):
        return low == "true"
    try:
        return int(text)
    except ValueError:
        return text.strip()


def parse_options(items: list[str], modes: list[str]) -> dict[str, dict]:
    """``MODE.KEY=VALUE`` flags as ``{mode: {key: value}}``, checked against each mode's declared options."""
    from explorer.analyses.base import mode_params
    from explorer.analyses.registry import get_analysis

    options: dict[str, dict] = {}
    for item in items:
        head, sep, raw = item.partition("=")
        mode, dot, key = head.partition(".")
        if not sep or not dot or not key or not raw.strip():
            raise InputError(f"--option must look like MODE.KEY=VALUE (e.g. attention.method=raw), found {item!r}.")
        if mode not in modes:
            raise InputError(f"--option {item!r} names the mode {mode!r}, which is not one of the --mode flags.")
        specs = {s.key: s for s in mode_params(get_analysis(mode))}
        if key not in specs:
            known = ", ".join(specs) or "none"
            raise InputError(f"The mode {mode} has no option {key!r}; its options: {known}.")
        value = _value(raw)
        if specs[key].choices and value not in specs[key].choices:
            raise InputError(f"{mode}.{key} must be one of {', '.join(specs[key].choices)}, found {raw!r}.")
        options.setdefault(mode, {})[key] = value
    return options


def run(args: argparse.Namespace) -> int:
    from explorer.analyses.registry import get_analysis
    from explorer.io.exports import check_writable

    modes = list(dict.fromkeys(args.mode))
    for name in modes:
        get_analysis(name)  # an unknown mode fails before the model loads
    options = parse_options(args.option, modes)
    use_lab = decoding_requested(args)
    if use_lab:
        check_decoding_early(args)
    to_stdout = args.out == "-"
    out = None if to_stdout else check_writable(args.out)
    check_input_early(args)

    cfg = config_from_args(args)
    session = open_session(args, cfg)
    session.replace_ids(prompt_ids_from_args(args, session))
    settings, regex = None, None
    if use_lab:
        from explorer.commands.decoding_args import regex_from_args, settings_from_args

        settings = settings_from_args(args, session.wrapper)
        settings.check_vocab(session.wrapper.vocab_size)
        regex = regex_from_args(args)

    from explorer.analyses.report_data import build_report
    from explorer.io.html_report import render_report

    progress(f"computing {', '.join(modes)}…")
    data = build_report(session, modes, cursor=args.position, params=options, decoding=settings, regex=regex,
                        hash_weights=not args.no_hash)
    for block in data["modes"]:
        if block.get("unavailable"):
            progress(f"note: {block['name']} is not available: {block['unavailable']}")
    html = render_report(data)
    if to_stdout:
        sys.stdout.write(html)
        sys.stdout.flush()
        return 0
    from explorer.io.exports import write_text

    write_text(out, html)
    progress(f"Wrote {out} ({len(data['tokens'])} tokens, {len(modes)} modes, {len(html) // 1024} KB).")
    return 0
