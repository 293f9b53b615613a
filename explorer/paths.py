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


# --------------------------------------------------------------------------- which config file
_PACKAGE_DIR = Path(__file__).resolve().parent  # explorer/
CHECKOUT_CONFIG = _PACKAGE_DIR.parent / "config.toml"
"""The repository's config.toml (a source checkout: main.py beside it)."""
INSTALLED_CONFIG = _PACKAGE_DIR / "shipped" / "config.toml"
"""The copy a wheel installs inside the package (with the shipped SAE under shipped/saes/)."""


def user_config_dir() -> Path:
    override = os.environ.get("TOKEN_EXPLORER_CONFIG_DIR")
    return Path(override) if override else Path(platformdirs.user_config_dir(APP_NAME))


def shipped_config() -> Path:
    """The default configuration that ships with the explorer (checkout first, then the installed copy)."""
    if CHECKOUT_CONFIG.is_file() and (CHECKOUT_CONFIG.parent / "main.py").is_file():
        return CHECKOUT_CONFIG
    return INSTALLED_CONFIG


def candidates() -> list[tuple[Path, str]]:
    """The files looked at without --config, in order, each with how the user would name it."""
    return [(Path.cwd() / "config.toml", "config.toml in the working directory"),
            (user_config_dir() / "config.toml", "the user config file"),
            (shipped_config(), "the shipped default")]


def find_config(explicit: str | Path | None = None) -> tuple[Path, str]:
    """The config file in effect and why: ``--config`` if given, else the first candidate that exists."""
    if explicit is not None:
        return Path(explicit), "--config"
    for path, why in candidates():
        if path.is_file():
            return path, why
    return shipped_config(), "the shipped default"
