"""Which configuration file is in effect, and where each value in it came from.

Without ``--config``, the first of these that exists is read:

1. ``config.toml`` in the working directory;
2. ``config.toml`` in the user config directory (platformdirs' ``user_config_dir``,
   e.g. ``~/.config/token-explorer/``; ``TOKEN_EXPLORER_CONFIG_DIR`` moves it);
3. the shipped default (``config.toml`` beside ``main.py`` in a checkout, or the copy
   installed inside the package), which works offline.

One file is read, never a merge of several: a key the file does not set takes the built-in
default of ``explorer.config``. ``explain`` lists every value with its origin (``config
--show``). Stdlib + platformdirs only.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from explorer.config import Config, load_config

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

APP_NAME = "token-explorer"
_PACKAGE_DIR = Path(__file__).resolve().parent
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


@dataclass(frozen=True)
class Setting:
    section: str
    key: str
    value: object
    origin: str
    """The file that set it, or "built-in default"."""


def explain(explicit: str | Path | None = None) -> tuple[Config, Path, str, list[Setting]]:
    """Load the config in effect and say where every value came from.

    Returns:
        (config, file, why that file, one Setting per key of [model], [prompt], [display], and
        per [[sae]] entry).
    """
    path, why = find_config(explicit)
    cfg = load_config(path)
    raw = tomllib.loads(path.read_text(encoding="utf-8"))
    settings: list[Setting] = []
    for section in ("model", "prompt", "display"):
        written = raw.get(section, {})
        part = getattr(cfg, section)
        for f in dataclasses.fields(part):
            origin = str(path) if f.name in written else "built-in default"
            settings.append(Setting(section, f.name, getattr(part, f.name), origin))
    for i, entry in enumerate(cfg.sae):
        written = raw["sae"][i]
        for f in dataclasses.fields(entry):
            value = getattr(entry, f.name)
            if f.name in written or value is not None:
                origin = str(path) if f.name in written else "built-in default"
                settings.append(Setting(f"sae.{i + 1}", f.name, value, origin))
    return cfg, path, why, settings
