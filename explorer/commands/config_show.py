"""`config --show`: the configuration in effect, and where each value came from.

Without ``--config`` the file is the first of: ``config.toml`` in the working directory,
``config.toml`` in the user config directory, the shipped default (see
``explorer.config_sources``). Loads no model.
"""

from __future__ import annotations

import argparse
import json

from explorer.errors import InputError

NAME = "config"
HELP = "show the configuration in effect and where each value came from (config --show)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--show", action="store_true", help="print every setting with the file (or default) it came from")
    p.add_argument("--config", metavar="FILE", help="configuration file to explain instead of the one found")
    p.add_argument("--json", action="store_true", help="print JSON instead of TOML-like lines")


def _toml(value) -> str:
    if value is None:
        return "(not set)"
    return json.dumps(value, ensure_ascii=False)  # strings, numbers and booleans read as TOML


def run(args: argparse.Namespace) -> int:
    from explorer.config_sources import candidates, explain

    if not args.show:
        raise InputError("Say what to do: `config --show` prints the configuration in effect.")
    cfg, path, why, settings = explain(args.config)
    looked = [{"path": str(p), "what": what, "exists": p.is_file()} for p, what in candidates()]
    if args.json:
        print(json.dumps({"file": str(path), "why": why, "looked_at": looked,
                          "settings": [{"section": s.section, "key": s.key, "value": s.value, "origin": s.origin}
                                       for s in settings]}, ensure_ascii=False))
        return 0
    print(f"# config in effect: {path} ({why})")
    if args.config is None:
        print("# looked at, in order: " + "; ".join(f"{x['what']} {x['path']}" + ("" if x["exists"] else " (absent)")
                                                    for x in looked))
    section = None
    for s in settings:
        if s.section != section:
            section = s.section
            name = f"[[sae]]  # entry {section.split('.')[1]}" if section.startswith("sae.") else f"[{section}]"
            print(f"\n{name}")
        line = f"{s.key} = {_toml(s.value)}"
        print(f"{line:<48} # {s.origin}")
    return 0
