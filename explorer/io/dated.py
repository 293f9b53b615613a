"""Files named by date that never replace an earlier one (reports, tree pages, screenshots). Stdlib only."""

from __future__ import annotations

import time
from pathlib import Path

from explorer.io.atomic import create_new_text


def write_new_dated(directory: Path, prefix: str, suffix: str, text: str) -> Path:
    """Write ``text`` to ``PREFIX-YYYYmmdd-HHMMSS[-N]SUFFIX`` in ``directory`` atomically.

    The first free name is taken (``-1``, ``-2``... within one second), and the file is
    created with a hard link, so an earlier file is never overwritten, even by a race.
    """
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for k in range(1000):
        path = Path(directory) / (f"{prefix}-{stamp}" + (f"-{k}" if k else "") + suffix)
        try:
            return create_new_text(path, text)
        except FileExistsError:
            continue
    raise FileExistsError(f"No free {prefix} file name in {directory}.")
