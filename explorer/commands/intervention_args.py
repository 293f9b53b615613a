"""The ``--steer`` / ``--clamp`` / ``--ablate`` syntax of the commands.

The parser and builder live in ``explorer.engine.interventions.build`` because the app's
interventions keys (explorer/ui/features/interventions.py) read the same syntax, and the UI
may not import a command module (tests/test_import_hygiene.py).
"""

from explorer.engine.interventions.build import build_interventions, parse_specs

__all__ = ["build_interventions", "parse_specs"]
