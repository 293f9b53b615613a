"""What the app and every command share: the model flags and the config they change; prompt input
and stderr progress for the commands. The Session itself is built by ``engine.session_builder``."""

from __future__ import annotations

import argparse
import sys

from explorer.config import Config, load_config
from explorer.errors import InputError


def add_model_arguments(p: argparse.ArgumentParser) -> None:
    """--config, --model, --device, --bf16, --seed: the same flags for the app and every command."""
    g = p.add_argument_group("model")
    g.add_argument("--config", metavar="FILE", help="configuration file (default: config.toml)")
    g.add_argument("--model", metavar="NAME", help='"bundled", a hub repo id, a local directory, a .gguf file or openai+http://HOST:PORT/v1 (a server)')
    g.add_argument("--device", metavar="DEV",
                   help="auto (default: CUDA > MPS > CPU), cpu, cuda, cuda:N, mps, or multi (device_map=auto)")
    g.add_argument("--bf16", action="store_true", help="load the weights in bfloat16")
    add_remote_arguments(g)
    g.add_argument("--seed", type=int, default=None,
                   help="random seed for sampling (the app: time-based by default, shown in the status bar; commands: 0)")


def add_remote_arguments(g) -> None:
    """Flags of a served model (--model openai+http://HOST:PORT/v1)."""
    g.add_argument("--served-model", metavar="NAME", help="model name on the server (default: the only one it serves)")
    g.add_argument("--tokenizer", metavar="NAME", help='tokenizer of a served model: "bundled", a .gguf, a directory or a hub id')


def add_prompt_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_mutually_exclusive_group()
    g.add_argument("--prompt", metavar="TEXT", help="the prompt text")
    g.add_argument("--input", "-i", metavar="FILE", help="read the prompt from a text file (or a saved .json prompt)")


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def config_from_args(args: argparse.Namespace) -> Config:
    """The config file named by --config (or config.toml) with --model, --device and --bf16 applied."""
    cfg = load_config(args.config)
    model = cfg.model
    changes = {}
    if getattr(args, "model", None):
        changes["name"] = args.model
    if getattr(args, "device", None):
        changes["device"] = args.device
    if getattr(args, "bf16", False):
        changes["bf16"] = True
    if getattr(args, "served_model", None):
        changes["served_model"] = args.served_model
    if getattr(args, "tokenizer", None):
        changes["tokenizer"] = args.tokenizer
    if changes:
        import dataclasses

        cfg = cfg.replace(model=dataclasses.replace(model, **changes))
    return cfg


def prompt_file_from_args(args: argparse.Namespace):
    """--input read once and kept on ``args``: a pipe, ``-`` or ``<(...)`` cannot be read twice."""
    from explorer.io.prompts import read_prompt_file

    if getattr(args, "_prompt_file", None) is None:
        args._prompt_file = read_prompt_file(args.input)
    return args._prompt_file


def prompt_ids_from_args(args: argparse.Namespace, session) -> list[int]:
    """Token ids of --prompt / --input (exact ids from a saved .json prompt of the same model)."""
    if getattr(args, "input", None):
        from explorer.engine.session_builder import prompt_file_ids

        return prompt_file_ids(session, prompt_file_from_args(args))
    if getattr(args, "prompt", None) is not None:
        return session.ids_from_text(args.prompt)
    raise InputError("Give a prompt with --prompt TEXT or --input FILE.")


def check_input_early(args: argparse.Namespace) -> None:
    """Fail on a bad --input before spending seconds loading the model."""
    if getattr(args, "input", None):
        prompt_file_from_args(args)
    elif getattr(args, "prompt", None) is not None and not args.prompt.strip():
        raise InputError("The prompt is empty; give some text to start from.")


def open_session(args: argparse.Namespace, cfg: Config | None = None):
    """Load the model named by the flags/config and return a Session (progress on stderr)."""
    from explorer.engine.session_builder import build_session

    seed = args.seed if getattr(args, "seed", None) is not None else 0
    return build_session(cfg or config_from_args(args), progress=progress, seed=seed)


def require_capabilities(engine, needed, what: str) -> None:
    """Refuse, in one sentence, a command the engine cannot run (a served model has no internals)."""
    from explorer.engine.interface import missing_capabilities, unavailable_message

    missing = missing_capabilities(engine, set(needed))
    if missing:
        raise InputError(f"{what}: {unavailable_message(missing)}")
