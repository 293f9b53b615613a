"""Token Explorer entry point: `uv run main.py [flags]` opens the app; `uv run main.py COMMAND ...` runs a command."""

import sys

from explorer.cli import main

if __name__ == "__main__":
    sys.exit(main())
