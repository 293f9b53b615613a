"""App-level messages posted from worker threads (post_message is thread-safe)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from textual.message import Message


@dataclass
class SessionLoaded(Message):
    """The model is loaded and the session built."""

    session: Any


@dataclass
class LoadProgressed(Message):
    text: str


@dataclass
class StepComputed(Message):
    """A StepView for the prompt snapshot (uid, ids) it was computed from."""

    view: Any
    snapshot: tuple
    inputs: dict = field(default_factory=dict)
    """The step inputs of the same snapshot (extensions.step_inputs), e.g. the comparison view."""


@dataclass
class ModeComputed(Message):
    """A ModeResult (or an error sentence) for the key it was computed for."""

    key: tuple
    result: Any
    error: str | None = None
