"""Command line: the TUI (no subcommand) and the headless subcommands.

Every failure we can explain ends with one sentence on stderr and exit code 2; no traceback.
Heavy imports (torch, transformers) happen only after the arguments are checked, and the
TUI is shown before the model loads.
"""

from __future__ import annotations

import argparse
import os
import sys

from explorer.errors import ExplorerError, InputError


def _prog() -> str:
    """How the user called us: `main.py` from a checkout, `token-explorer` when installed."""
    import os

    name = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    return "main.py" if name in ("", "main.py", "-c", "pytest", "__main__.py") else name


def version_text() -> str:
    """The explorer's version and those of torch and transformers (read from metadata: nothing heavy is imported)."""
    from importlib.metadata import PackageNotFoundError, version

    from explorer import __version__

    def of(pkg: str) -> str:
        try:
            return version(pkg)
        except PackageNotFoundError:
            return "not installed"

    return f"token-explorer {__version__} (torch {of('torch')}, transformers {of('transformers')})"


class _Parser(argparse.ArgumentParser):
    """argparse that ends a bad command line with one sentence and exit 2 (not a usage dump)."""

    def error(self, message: str):  # type: ignore[override]
        print(f"error: {message} (see {self.prog} --help)", file=sys.stderr)
        raise SystemExit(2)


def tui_parser() -> argparse.ArgumentParser:
    p = _Parser(prog=_prog(), description=(
        "Token Explorer: step a language model one token at a time. "
        "Subcommands: " + ", ".join(_command_names()) + " (main.py COMMAND --help)."))
    p.add_argument("--input", "-i", metavar="FILE", help="text file (or saved .json prompt) to use as the first prompt")
    p.add_argument("--layer_prob", "--layer-prob", action="store_true", help="enable layer probability / correlation views (key p)")
    p.add_argument("--cross_layer", "--cross-layer", action="store_true", help="enable cross-layer transcoder analysis")
    p.add_argument("--resume", nargs="?", const="newest", default=None, metavar="NAME|list",
                   help="bring back a saved session: the newest (no value), a named one, or `list` to list them")
    from explorer.commands.common import add_model_arguments

    add_model_arguments(p)  # the same model flags as every command
    p.add_argument("--version", action="version", version=version_text(),
                   help="print the version of the explorer, torch and transformers, and exit")
    from explorer.commands.compare_args import add_compare_arguments

    add_compare_arguments(p)
    return p


MAX_SEED = 2**63 - 1
"""torch.Generator.manual_seed and numpy take a 64-bit seed; a larger one is an overflow error."""


def check_parsed_args(args: argparse.Namespace) -> None:
    """Checks every command shares: text flags must be UTF-8, --seed must fit 64 bits.

    A lone surrogate (bytes of argv that are not UTF-8) would fail deep in the tokenizer, and
    a 20-digit seed in torch; both get one sentence here instead. File paths may hold such
    bytes legitimately, so they are not checked.
    """
    from explorer.inputs import check_text

    for dest, value in vars(args).items():
        if dest in PATH_FLAGS:
            continue
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, str):
                check_text(item, "--" + dest.replace("_", "-"))
    seed = getattr(args, "seed", None)
    if isinstance(seed, int) and not 0 <= seed <= MAX_SEED:
        raise InputError(f"--seed must be between 0 and {MAX_SEED}, found {seed}.")


PATH_FLAGS = {"input", "config", "out", "model", "corpus", "sae", "labels", "regex_file"}


def _command_modules():
    from explorer.commands import COMMANDS

    return COMMANDS


def _command_names() -> list[str]:
    return [m.NAME for m in _command_modules()]


def _run_command(name: str, argv: list[str]) -> int:
    module = next(m for m in _command_modules() if m.NAME == name)
    p = _Parser(prog=f"{_prog()} {name}", description=module.HELP)
    module.add_arguments(p)
    args = p.parse_args(argv)
    check_parsed_args(args)
    return module.run(args)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv and argv[0] in _command_names():
            return _run_command(argv[0], argv[1:])
        if argv and not argv[0].startswith("-"):
            raise ExplorerError(f'Unknown command "{argv[0]}"; commands: {", ".join(_command_names())}.')
        from explorer.launch import run_tui

        args = tui_parser().parse_args(argv)
        check_parsed_args(args)
        return run_tui(args)
    except ExplorerError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (`… | head`): not an error of ours. Point stdout at /dev/null so
        # the interpreter's final flush does not raise again and print a traceback.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, what a shell reports for a process killed by a closed pipe
