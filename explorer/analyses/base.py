"""The contract every mode implements, and the result it returns.

A mode turns the current prompt into one number per token (or None where it has no
number), a colour scale with a legend that says what the colour means, optional per-layer
series for plots, and the self-check figures of SCIENCE.md under ``checks``.
Cheap modes read the StepView only; expensive ones may run the model through
``ctx.wrapper`` (under its lock) and are computed lazily in a worker.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from explorer.engine.model import ModelWrapper
    from explorer.engine.view import StepView


@dataclass(frozen=True)
class AnalysisContext:
    view: "StepView"
    wrapper: "ModelWrapper"
    cursor: int
    """Index of the token under the cursor (the last token when the cursor follows the end)."""
    params: dict[str, Any] = field(default_factory=dict)
    """Mode options (layer, method, steps...), also the cache key together with the ids."""
    cache: Any = None
    """A ResultCache (explorer.analyses.cache) whose capture store lazy modes share; None = no reuse."""


@dataclass(frozen=True)
class ParamSpec:
    """One option a mode accepts in ``AnalysisContext.params`` (for the UI and ``analyze --help``)."""

    key: str
    help: str
    choices: tuple[str, ...] = ()
    """Allowed values for a choice option; empty for integers."""
    default: Any = None


@dataclass(frozen=True)
class ModeResult:
    values: tuple[float | None, ...]
    """One number per prompt token; None where the mode has none (e.g. the first token's probability)."""
    lo: float = 0.0
    hi: float = 1.0
    """Colour scale bounds: lo gets colors[0], hi gets colors[1]."""
    colors: tuple[str, str] = ("#d73027", "#4575b4")
    legend: str = ""
    """What the colour means, in a sentence, with the unit."""
    unit: str = ""
    fmt: str = "{:.3f}"
    color_values: tuple[float | None, ...] | None = None
    """What is coloured when it differs from ``values`` (e.g. energy z-scores); None = values."""
    layers: dict[str, list[float | None]] | None = None
    """Per-layer series for plots (name -> one value per layer)."""
    checks: dict[str, float] = field(default_factory=dict)
    """Self-check figures (SCIENCE.md), e.g. lens KL at the last layer."""
    details: tuple[str, ...] = ()
    """Extra lines for the side panel (ranked lists, settings used, warnings)."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Anything else a command should export as JSON (plain Python values only)."""


@runtime_checkable
class Analysis(Protocol):
    name: str
    """Stable name used by `analyze --mode` and the saved session."""
    label: str
    """Shown in the status bar."""
    lazy: bool
    """True when computing needs model work beyond the trace (run in a worker, cached)."""

    def compute(self, ctx: AnalysisContext) -> ModeResult: ...


def mode_params(analysis: Analysis) -> tuple[ParamSpec, ...]:
    """The options a mode accepts (modes without any declare none)."""
    return tuple(getattr(analysis, "params", ()))
