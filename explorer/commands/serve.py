"""`serve`: the app in a web browser, through textual-serve (classrooms, remote machines).

A small web server (aiohttp, from textual-serve) answers on ``--host``/``--port``; every
browser tab that opens the page starts its own copy of the app (``python -m explorer`` with
the flags given here), so each tab loads the model once and has its own session. Localhost
by default: anyone who can reach the port can run the app, so open it wider on purpose only.
Never imports Textual or Rich itself (textual-serve does, in the server).
"""

from __future__ import annotations

import argparse
import shlex
import sys

from explorer.errors import InputError

NAME = "serve"
HELP = "run the app in a web browser (textual-serve); each browser tab gets its own session"

# TUI flags passed through to every app the server starts (name, takes a value).
_PASSED = (("input", True), ("config", True), ("model", True), ("device", True), ("bf16", False),
           ("layer_prob", False), ("cross_layer", False), ("seed", True), ("resume", False))


def add_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("server")
    g.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1, this machine only; 0.0.0.0 = every interface)")
    g.add_argument("--port", type=int, default=8000, help="TCP port (default 8000)")
    g.add_argument("--public-url", metavar="URL",
                   help="the address browsers use to reach the server, when it differs from http://HOST:PORT")
    a = p.add_argument_group("app (as for the app itself)")
    a.add_argument("--input", "-i", metavar="FILE", help="text file (or saved .json prompt) to use as the first prompt")
    a.add_argument("--config", metavar="FILE", help="configuration file")
    a.add_argument("--model", metavar="NAME", help='"bundled", a hub repo id, a local directory or a .gguf file')
    a.add_argument("--device", metavar="DEV", help="auto, cpu, cuda, cuda:N, mps, multi")
    a.add_argument("--bf16", action="store_true", help="load the model in bfloat16")
    a.add_argument("--layer_prob", "--layer-prob", action="store_true", help="enable the layer views (key p)")
    a.add_argument("--cross_layer", "--cross-layer", action="store_true", help="enable cross-layer transcoder analysis")
    a.add_argument("--seed", type=int, default=None, help="random seed for sampling")
    a.add_argument("--resume", action="store_true", help="bring back every prompt of the last session")


def app_command(args: argparse.Namespace) -> str:
    """The shell command textual-serve runs for each browser tab (the app with the passed-through flags)."""
    from pathlib import Path

    argv = [sys.executable, "-m", "explorer"]
    for name, takes_value in _PASSED:
        value = getattr(args, name)
        if takes_value and value is not None:
            # Paths are made absolute: the app runs in the server's working directory, but be sure.
            text = str(Path(value).resolve()) if name in ("input", "config") else str(value)
            argv += [f"--{name}", text]
        elif not takes_value and value:
            argv.append(f"--{name}")
    return shlex.join(argv)


def _check_port_free(host: str, port: int) -> None:
    """Refuse a taken port before any event loop starts (aiohttp would fail inside its own loop)."""
    import socket

    try:
        with socket.create_server((host, port)):  # SO_REUSEADDR, as the server itself binds
            pass
    except OSError as exc:
        raise InputError(f"Cannot listen on {host}:{port}: {exc.strerror or exc}.") from exc


def run(args: argparse.Namespace) -> int:
    if not 1 <= args.port <= 65535:
        raise InputError(f"--port must be between 1 and 65535, found {args.port}.")
    if not args.host.strip():
        raise InputError("--host is empty; use 127.0.0.1 (this machine) or 0.0.0.0 (every interface).")
    # Bad files or config fail here, in one sentence, not later inside every browser tab.
    from explorer.config import load_config

    load_config(args.config)
    if args.input:
        from explorer.io.prompts import read_prompt_file

        read_prompt_file(args.input)

    _check_port_free(args.host, args.port)
    from textual_serve.server import Server

    server = Server(app_command(args), host=args.host, port=args.port, title="Token Explorer",
                    public_url=args.public_url)
    try:
        server.serve()
    except OSError as exc:  # the port is taken, or the address is not this machine's
        raise InputError(f"Cannot listen on {args.host}:{args.port}: {exc.strerror or exc}.") from exc
    return 0
