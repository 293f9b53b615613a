"""Start the app: check every flag, file and config before the screen opens, then hand the
slow part (importing torch, loading the model) to the app's loading worker.

Everything that can be refused is refused here with one sentence and exit code 2.
"""

from __future__ import annotations

import argparse
import time

from explorer.commands.common import config_from_args
from explorer.errors import ExplorerError


def run_tui(args: argparse.Namespace) -> int:
    if args.resume == "list":
        from explorer.io.session_store import format_session_list, list_sessions

        print(format_session_list(list_sessions()))
        return 0
    cfg = config_from_args(args)

    prompt_file = None
    if args.input:
        from explorer.io.prompts import read_prompt_file

        prompt_file = read_prompt_file(args.input)
    saved, notices = None, []
    if args.resume:
        from explorer.io.session_store import resume

        saved, notices = resume(args.resume)  # a damaged file: set aside, a fresh session, a note
    seed = args.seed if args.seed is not None else (saved.seed if saved else int(time.time()) % 2**31)
    remote_engine = _open_remote(cfg)  # a served model is checked (and connected) before the screen opens
    if remote_engine is None:
        _precheck_model(cfg.model.name)
    from explorer.commands.compare_args import compare_request_from_args

    compare = compare_request_from_args(args)
    if compare is not None and compare.model is not None:
        _precheck_model(compare.model)

    def loader(progress):
        from explorer.engine.session_builder import build_session

        session = build_session(cfg, progress=progress, prompt_file=prompt_file, saved=saved, seed=seed,
                                engine=remote_engine)
        if compare is not None:
            attach_comparison(session, compare, progress=progress)
        progress("Computing the first step…")
        return session

    from explorer.ui.app import ExplorerApp

    app = ExplorerApp(loader=loader, layer_prob=args.layer_prob, cross_layer=args.cross_layer, notices=notices)
    app.run()
    return app.return_code or 0


def _open_remote(cfg):
    """The RemoteEngine of ``--model openai+http://...`` (every check done), or None for a local model."""
    from explorer.engine.remote import is_remote_source

    if not is_remote_source(cfg.model.name):
        return None
    import sys

    from explorer.engine.session_builder import remote_options
    from explorer.engine.remote.open import open_remote_engine

    return open_remote_engine(cfg.model.name, **remote_options(cfg),
                              progress=lambda m: print(m, file=sys.stderr, flush=True))


def _precheck_model(name: str) -> None:
    """Refuse a model name that cannot load before opening the screen (cheap checks only)."""
    from explorer.engine.loading import resolve_source

    source = resolve_source(name)
    if source.kind == "hub":
        from explorer.engine.loading import hub_offline

        if hub_offline():
            try:
                from huggingface_hub import try_to_load_from_cache

                cached = try_to_load_from_cache(source.ref, "config.json")
            except Exception:
                cached = None
            if not isinstance(cached, str):
                from explorer.engine.loading import _offline_message
                from explorer.errors import ModelLoadError

                raise ModelLoadError(_offline_message(source.ref))


def attach_comparison(session, request, *, progress) -> None:
    """Open model B beside the session's model (runs in the loading worker).

    A failure (B cannot load, memory runs out, vocabularies differ, a prompt past B's shorter
    context) becomes a note the app shows at start; model A is loaded and keeps working alone.
    """
    from explorer.engine.compare import open_comparison

    try:
        open_comparison(session, request, progress)
    except ExplorerError as exc:
        session.notes.append(f"No comparison: {exc.message}")
