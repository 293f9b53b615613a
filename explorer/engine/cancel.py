"""Cooperative cancellation for long engine computations.

The app abandons work the user has left (another mode, cursor position or prompt) and Esc
stops what runs. Python threads cannot be killed, so long computations take a
``should_stop: Callable[[], bool]`` and call ``check(should_stop)`` at safe points (between
integrated-gradient batches, between layers); a True raises Cancelled, which unwinds the
computation and releases the model lock. Never imports Textual or Rich.
"""

from __future__ import annotations

from typing import Callable

StopCheck = Callable[[], bool]


class Cancelled(Exception):
    """The caller asked a computation to stop; its partial result is thrown away."""


def never() -> bool:
    return False


def check(should_stop: StopCheck | None) -> None:
    """Raise Cancelled when ``should_stop`` says so (None never stops)."""
    if should_stop is not None and should_stop():
        raise Cancelled()
