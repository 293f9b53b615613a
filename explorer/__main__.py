"""`python -m explorer [flags]`: the same entry point as `main.py` and `token-explorer` (textual-serve runs this)."""

import sys

from explorer.cli import main

if __name__ == "__main__":
    sys.exit(main())
