"""Where the app keeps user files: saved prompts and sessions (data), converted models (cache).

Both follow the platform's conventions (platformdirs) and can be moved with environment
variables, which the tests use to stay out of the real home directory:
``TOKEN_EXPLORER_DATA_DIR`` and ``TOKEN_EXPLORER_CACHE_DIR``. Stdlib + platformdirs only.
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

APP_NAME = "token-explorer"


def data_dir() -> Path:
    """Directory for files the user keeps: saved prompts, the autosaved session."""
    override = os.environ.get("TOKEN_EXPLORER_DATA_DIR")
    return Path(override) if override else Path(platformdirs.user_data_dir(APP_NAME))


def cache_dir() -> Path:
    """Directory for files that can be rebuilt: converted model weights, feature caches."""
    override = os.environ.get("TOKEN_EXPLORER_CACHE_DIR")
    return Path(override) if override else Path(platformdirs.user_cache_dir(APP_NAME))


def saved_prompts_dir() -> Path:
    return data_dir() / "prompts"


def session_file() -> Path:
    """The single autosave file of earlier versions; still listed and resumable."""
    return data_dir() / "session.json"


def sessions_dir() -> Path:
    """One file per app instance (explorer/io/session_store.py): the session history."""
    return data_dir() / "sessions"
