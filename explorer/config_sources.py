"""Which configuration file is in effect, and where each value in it came from.

Without ``--config``, the first of these that exists is read:

1. ``config.toml`` in the working directory;
2. ``config.toml`` in the user config directory (platformdirs' ``user_config_dir``,
   e.g. ``~/.config/token-explorer/``; ``TOKEN_EXPLORER_CONFIG_DIR`` moves it);
3. the shipped default (``config.toml`` beside ``main.py`` in a checkout, or the copy
   installed inside the package), which works offline.

One file is read, never a merge of several: a key the file does not set takes the built-in
default of ``explorer.config``. Which file is read is decided in ``explorer.paths``
(``find_config``); ``explain`` here lists every value with its origin (``config --show``).
"""

from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass
from pathlib import Path

from explorer.config import Config, load_config
from explorer.paths import CHECKOUT_CONFIG, INSTALLED_CONFIG, candidates, find_config, shipped_config, user_config_dir  # noqa: F401 (re-exported)

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

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
