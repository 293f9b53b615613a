"""Headless subcommands (same engine as the app). One module per command, listed in COMMANDS.

Each module has NAME, HELP, ``add_arguments(parser)`` and ``run(args) -> int``.
"""

from explorer.commands import analyze, beam, cache, compare, config_show, logprobs, next_token, report, sae, serve, tree

COMMANDS = [next_token, analyze, tree, logprobs, beam, sae, compare, report, serve, config_show, cache]
