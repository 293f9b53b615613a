"""Headless subcommands (same engine as the app). One module per command, listed in COMMANDS.

Each module has NAME, HELP, ``add_arguments(parser)`` and ``run(args) -> int``.
"""

from explorer.commands import (analyze, beam, cache, compare, config_show, intervene, logprobs, next_token, patch,
                               report, sae, serve, steer_vector, tree)

COMMANDS = [next_token, analyze, tree, logprobs, beam, sae, compare, intervene, patch, steer_vector, report, serve,
            config_show, cache]
