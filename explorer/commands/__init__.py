"""Headless subcommands (same engine as the app). One module per command, listed in COMMANDS.

Each module has NAME, HELP, ``add_arguments(parser)`` and ``run(args) -> int``.
"""

from explorer.commands import next_token, sae

COMMANDS = [next_token, sae]
