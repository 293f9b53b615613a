"""Start the app: check every flag, file and config before the screen opens, then hand the
slow part (importing torch, loading the model) to the app's loading worker.

Everything that can be refused is refused here with one sentence and exit code 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import time

from explorer.config import load_config
from explorer.errors import ExplorerError, InputError


def run_tui(args: argparse.Namespace) -> int:
    cfg = load_config(args.config)
    model_changes = {}
    if args.model:
        model_changes["name"] = args.model
    if args.device:
        model_changes["device"] = args.device
    if args.bf16:
        model_changes["bf16"] = True
    if getattr(args, "served_model", None):
        model_changes["served_model"] = args.served_model
    if getattr(args, "tokenizer", None):
        model_changes["tokenizer"] = args.tokenizer
    if model_changes:
        cfg = cfg.replace(model=dataclasses.replace(cfg.model, **model_changes))

    prompt_file = None
    if args.input:
        from explorer.io.prompts import read_prompt_file

        prompt_file = read_prompt_file(args.input)
    saved = None
    if args.resume:
        from explorer.io.session_store import load_saved_session

        saved = load_saved_session()
    seed = args.seed if args.seed is not None else (saved.seed if saved else int(time.time()) % 2**31)
    remote_engine = _open_remote(cfg)  # a served model is checked (and connected) before the screen opens
    if remote_engine is None:
        _precheck_model(cfg.model.name)

    def loader(progress):
        return build_session(cfg, progress=progress, prompt_file=prompt_file, saved=saved, seed=seed,
                             engine=remote_engine)

    from explorer.ui.app import ExplorerApp

    app = ExplorerApp(loader=loader, layer_prob=args.layer_prob, cross_layer=args.cross_layer)
    app.run()
    return app.return_code or 0


def _open_remote(cfg):
    """The RemoteEngine of ``--model openai+http://...`` (every check done), or None for a local model."""
    from explorer.engine.remote import is_remote_source

    if not is_remote_source(cfg.model.name):
        return None
    import sys

    from explorer.commands.common import remote_options
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


def build_session(cfg, *, progress, prompt_file=None, saved=None, seed: int = 0, engine=None):
    """Load the model (or use ``engine``, a connected server) and build the Session the app opens with
    (runs in the loading worker)."""
    from explorer.engine.session import PromptEntry, Session

    if engine is not None:
        wrapper = engine
    else:
        from explorer.engine.loading import load_model
        from explorer.engine.model import ModelWrapper

        loaded = load_model(cfg.model.name, device=cfg.model.device, bf16=cfg.model.bf16,
                            trust_remote_code=cfg.model.trust_remote_code, progress=progress)
        wrapper = ModelWrapper.from_loaded(loaded)
    progress("Computing the first step…")
    notes: list[str] = []
    if saved is not None:
        session = Session(wrapper, cfg, prompts=[[0]], seed=seed, mode=saved.mode)
        entries = []
        same_model = saved.model == wrapper.name
        for sp in saved.prompts[: cfg.prompt.max_prompts]:
            if same_model and max(sp.ids) < wrapper.vocab_size:
                entries.append(PromptEntry(sp.ids, sp.original_ids, sp.cursor))
            else:
                ids = session.ids_from_text(sp.text)
                entries.append(PromptEntry(ids, list(ids)))
        if not same_model:
            notes.append(f"The saved session was made with {saved.model}; its prompts were re-tokenized from text.")
        if len(saved.prompts) > cfg.prompt.max_prompts:
            notes.append(f"Only the first {cfg.prompt.max_prompts} saved prompts fit max_prompts.")
        session.prompts = entries
        session.index = min(max(0, saved.index), len(entries) - 1)
        session.notes.extend(notes)
        return session
    session = Session(wrapper, cfg, prompts=[[0]], seed=seed)
    if prompt_file is not None:
        if prompt_file.token_ids and prompt_file.model == wrapper.name and max(prompt_file.token_ids) < wrapper.vocab_size:
            ids = list(prompt_file.token_ids)
        else:
            ids = session.ids_from_text(prompt_file.text)
    else:
        ids = session.ids_from_text(cfg.prompt.example_prompt)
    session.prompts = [PromptEntry(ids, list(ids))]
    session.index = 0
    return session
