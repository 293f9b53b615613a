"""Command line: the TUI (no subcommand) and the headless subcommands.

Every failure we can explain ends with one sentence on stderr and exit code 2; no traceback.
Heavy imports (torch, transformers) happen only after the arguments are checked, and the
TUI is shown before the model loads.
"""

from __future__ import annotations

import argparse
import sys

from explorer.errors import ExplorerError


class _Parser(argparse.ArgumentParser):
    """argparse that ends a bad command line with one sentence and exit 2 (not a usage dump)."""

    def error(self, message: str):  # type: ignore[override]
        print(f"error: {message} (see {self.prog} --help)", file=sys.stderr)
        raise SystemExit(2)


def tui_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="main.py", description=(
        "Token Explorer: step a language model one token at a time. "
        "Subcommands: " + ", ".join(_command_names()) + " (main.py COMMAND --help)."))
    p.add_argument("--input", "-i", metavar="FILE", help="text file (or saved .json prompt) to use as the first prompt")
    p.add_argument("--config", metavar="FILE", help="configuration file (default: config.toml)")
    p.add_argument("--model", metavar="NAME", help='"bundled", a hub repo id, a local directory, a .gguf file or openai+http://HOST:PORT/v1 (a server)')
    p.add_argument("--device", metavar="DEV", help="auto (default: CUDA > MPS > CPU), cpu, cuda, cuda:N, mps, multi")
    p.add_argument("--bf16", action="store_true", help="load the model in bfloat16")
    p.add_argument("--served-model", metavar="NAME", help="with --model openai+http://HOST:PORT/v1: the model name on the server")
    p.add_argument("--tokenizer", metavar="NAME", help='tokenizer of a served model: "bundled", a .gguf, a directory or a hub id')
    p.add_argument("--layer_prob", "--layer-prob", action="store_true", help="enable layer probability / correlation views (key p)")
    p.add_argument("--cross_layer", "--cross-layer", action="store_true", help="enable cross-layer transcoder analysis")
    p.add_argument("--seed", type=int, default=None, help="random seed for sampling (default: time-based, shown in the status bar)")
    p.add_argument("--resume", action="store_true", help="bring back every prompt of the last session")
    return p


def _command_modules():
    from explorer.commands import COMMANDS

    return COMMANDS


def _command_names() -> list[str]:
    return [m.NAME for m in _command_modules()]


def _run_command(name: str, argv: list[str]) -> int:
    module = next(m for m in _command_modules() if m.NAME == name)
    p = _Parser(prog=f"main.py {name}", description=module.HELP)
    module.add_arguments(p)
    args = p.parse_args(argv)
    return module.run(args)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv and argv[0] in _command_names():
            return _run_command(argv[0], argv[1:])
        if argv and not argv[0].startswith("-"):
            raise ExplorerError(f'Unknown command "{argv[0]}"; commands: {", ".join(_command_names())}.')
        from explorer.launch import run_tui

        return run_tui(tui_parser().parse_args(argv))
    except ExplorerError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
