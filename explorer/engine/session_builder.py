"""The one place a Session is built: for the app (in its loading worker) and for every command.

``build_session`` loads the model the config names, wraps it, and fills the first prompt
from (in order) a saved session (``--resume``), a prompt file (``--input``), or the config's
example prompt. ``prompt_file_ids`` is the one rule for a saved ``.json`` prompt: its exact
token ids when it was made with this model, otherwise its text re-tokenized. Never imports
Textual or Rich; torch is imported only when a session is built.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from explorer.config import Config

if TYPE_CHECKING:
    from explorer.engine.session import Session
    from explorer.io.prompts import PromptFile


def prompt_file_ids(session: "Session", prompt_file: "PromptFile") -> list[int]:
    """Token ids of a prompt file: exact ids if they come from this model and fit its vocabulary, else its text."""
    wrapper = session.wrapper
    ids = prompt_file.token_ids
    if ids and prompt_file.model == wrapper.name and max(ids) < wrapper.vocab_size:
        return list(ids)
    return session.ids_from_text(prompt_file.text)


def remote_options(cfg: Config) -> dict:
    """The [model] settings of a served model, as open_remote_engine's keyword arguments."""
    m = cfg.model
    return {"served_model": m.served_model or None, "api_key_env": m.api_key_env,
            "tokenizer": m.tokenizer or None, "timeout": m.timeout}


def open_engine(cfg: Config, progress: Callable[[str], None]):
    """The model the config names: a connected server client (openai+http://...) or a loaded local model."""
    from explorer.engine.remote import is_remote_source

    if is_remote_source(cfg.model.name):
        from explorer.engine.remote.open import open_remote_engine

        return open_remote_engine(cfg.model.name, **remote_options(cfg), progress=progress)
    from explorer.engine.loading import load_model
    from explorer.engine.model import ModelWrapper

    loaded = load_model(cfg.model.name, device=cfg.model.device, bf16=cfg.model.bf16,
                        trust_remote_code=cfg.model.trust_remote_code, progress=progress)
    return ModelWrapper.from_loaded(loaded)


def build_session(cfg: Config, *, progress: Callable[[str], None], prompt_file: "PromptFile | None" = None,
                  saved=None, seed: int = 0, engine=None) -> "Session":
    """Load the configured model and return a Session with its first prompt(s) in place.

    Args:
        cfg: the configuration (model name, device, dtype, prompt limits).
        progress: called with one-line progress messages (stderr for commands, the loading screen for the app).
        prompt_file: a prompt read with ``io.prompts.read_prompt_file`` (``--input``), or None.
        saved: a saved session from ``io.session_store.load_saved_session`` (``--resume``), or None;
            it wins over ``prompt_file``.
        seed: the sampling seed.
        engine: an engine already opened (the app connects to a server before its screen opens);
            None = open the one the config names.

    Returns:
        The Session; notes for the user (re-tokenized prompts, prompts cut) are in ``session.notes``.
    """
    from explorer.engine.session import PromptEntry, Session

    wrapper = engine if engine is not None else open_engine(cfg, progress)
    if saved is not None:
        return _restore(Session(wrapper, cfg, prompts=[[0]], seed=seed, mode=saved.mode), saved)
    session = Session(wrapper, cfg, prompts=[[0]], seed=seed)
    if prompt_file is not None:
        ids = prompt_file_ids(session, prompt_file)
    else:
        ids = session.ids_from_text(cfg.prompt.example_prompt)
    session.prompts = [PromptEntry(ids, list(ids))]
    session.index = 0
    return session


def _restore(session: "Session", saved) -> "Session":
    """Put a saved session's prompts back: exact ids for the same model, re-tokenized text otherwise."""
    from explorer.engine.session import PromptEntry

    wrapper, limit = session.wrapper, session.config.prompt.max_prompts
    same_model = saved.model == wrapper.name
    entries = []
    for sp in saved.prompts[:limit]:
        if same_model and max(sp.ids) < wrapper.vocab_size:
            entries.append(PromptEntry(sp.ids, sp.original_ids, sp.cursor))
        else:
            ids = session.ids_from_text(sp.text)
            entries.append(PromptEntry(ids, list(ids)))
    if not same_model:
        session.notes.append(f"The saved session was made with {saved.model}; its prompts were re-tokenized from text.")
    if len(saved.prompts) > limit:
        session.notes.append(f"Only the first {limit} saved prompts fit max_prompts.")
    session.prompts = entries
    session.index = min(max(0, saved.index), len(entries) - 1)
    session.saved_view = saved.view or {}  # the app restores its view state (cursor mode options, layer view) from it
    return session
