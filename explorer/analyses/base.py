"""The contract every mode implements, and the result it returns.

A mode turns the current prompt into one number per token (or None where it has no
number), a colour scale with a legend that says what the colour means, optional per-layer
series for plots, and the self-check figures of SCIENCE.md under ``checks``.
Cheap modes read the StepView only; expensive ones may run the model through
``ctx.wrapper`` (under its lock) and are computed lazily in a worker.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Protocol, runtime_checkable

if TYPE_CHECKING:
    from explorer.config import Config
    from explorer.engine.model import ModelWrapper
    from explorer.engine.view import StepView

CAPABILITIES = frozenset({"full_logits", "hidden_states", "attention", "gradients", "interventions"})
"""What an engine can give a mode. A mode lists what it needs in ``requires``; an engine that
lacks some says so with a ``capabilities`` attribute (the local engine has them all)."""


def _never_stop() -> bool:
    return False


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
    config: "Config | None" = None
    """The session's configuration (the SAE mode reads its [[sae]] entries); None = defaults."""
    flags: frozenset[str] = frozenset()
    """Command-line switches that are on (e.g. "cross_layer"), for modes that change with them."""
    should_stop: Callable[[], bool] = _never_stop
    """Polled by long computations at safe points; when True they raise engine.cancel.Cancelled."""


@dataclass(frozen=True)
class ParamSpec:
    """One option a mode accepts in ``AnalysisContext.params`` (for the UI and ``analyze --help``)."""

    key: str
    help: str
    choices: tuple[str, ...] = ()
    """Allowed values for a choice option; empty for integers."""
    default: Any = None
    keys: tuple[str, ...] = ()
    """The app keys that change it: one key cycles ``choices``; two keys (down, up) step through
    ``options``. Empty: set only from the command line."""
    options: Callable[[Any, "Config | None", "ModeResult | None"], list] | None = None
    """For stepped options, the values in order, given (wrapper, config, last result); None may be
    one of them (e.g. "mean over heads")."""
    sets: tuple[tuple[str, Any], ...] = ()
    """Other options set when this one is stepped (raw attention for a layer or head choice)."""
    resets: tuple[str, ...] = ()
    """Options dropped when this one changes (feature numbers belong to one SAE layer)."""
    wrap: bool = False
    """Stepping past either end wraps around (heads, features) instead of stopping (layers)."""


@dataclass(frozen=True)
class Heatmap:
    """A rows × columns grid of numbers drawn as coloured cells (None = no value)."""

    rows: str
    columns: str
    values: list[list[float | None]]


@dataclass(frozen=True)
class Scatter:
    """Labelled 2-D points, one per token."""

    title: str
    points: list[list[float]]


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
    heatmap: Heatmap | None = None
    scatter: Scatter | None = None
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
    requires: frozenset[str]
    """Engine capabilities (names from CAPABILITIES) the mode needs."""

    def compute(self, ctx: AnalysisContext) -> ModeResult: ...


# Optional attributes a mode may declare (read through the helpers below, so a mode that has
# nothing to say about them declares nothing):
#   params: tuple[ParamSpec, ...]     its options, with their keys
#   needs_flag: str                   reached with key p, only with that command-line flag on
#   value_in_cursor_line: bool        False when the cursor line already shows the value (p, H, E)
#   busy_text: str                    what the panel says while it computes


def mode_params(analysis: Analysis) -> tuple[ParamSpec, ...]:
    """The options a mode accepts (modes without any declare none)."""
    return tuple(getattr(analysis, "params", ()))


def param_for_key(analysis: Analysis, key: str) -> tuple[ParamSpec, int] | None:
    """The option a key changes in this mode and the key's direction (−1, +1; +1 for a cycle)."""
    for spec in mode_params(analysis):
        if key in spec.keys:
            return spec, (-1 if len(spec.keys) == 2 and spec.keys[0] == key else +1)
    return None


def missing_capabilities(analysis: Analysis, engine: Any) -> list[str]:
    """Capabilities the mode needs that ``engine`` lacks (engines without the attribute have all)."""
    have = getattr(engine, "capabilities", CAPABILITIES)
    return sorted(set(getattr(analysis, "requires", frozenset())) - set(have))
