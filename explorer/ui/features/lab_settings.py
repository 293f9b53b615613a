"""The decoding lab's editable settings: their order, labels, and the steps keys move them by.

Pure functions over ``DecodingSettings`` (no Textual, no torch), so they are cheap to test
and to call on the UI thread. A step that leaves a setting's valid range is not clamped
silently: the new value goes through ``DecodingSettings``' own validation, whose InputError
names the valid range, and the UI shows that sentence.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from explorer.engine.decoding.settings import DecodingSettings
from explorer.errors import InputError


@dataclass(frozen=True)
class SettingSpec:
    name: str
    """The DecodingSettings field."""
    label: str
    short: str
    """At most 12 characters, for the lab panel."""
    ladder: tuple[float, ...] = ()
    """The values - and = walk through. Each end holds one value just outside the valid range,
    so stepping past the end is refused by the settings' own validation (with the range)."""
    factor: float = 0.0
    """Multiplicative step instead of a ladder (temperature)."""
    smallest: float = 0.0
    """With ``factor``: the smallest value a step goes to."""


_FIFTHS = tuple(round(0.05 * i, 2) for i in range(0, 22))  # 0, 0.05, ..., 1.05 (ends are out of range)
_CUTOFFS = (-0.0001, 0.0, 0.0001, 0.0003, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 0.9, 1.0)

SETTINGS: tuple[SettingSpec, ...] = (
    SettingSpec("temperature", "temperature", "temperature", factor=1.25, smallest=0.01),
    SettingSpec("top_k", "top-k", "top-k", (-1, 0, 1, 2, 3, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000,
                                   20000, 50000)),
    SettingSpec("top_p", "top-p", "top-p", _FIFTHS),
    SettingSpec("min_p", "min-p", "min-p", (-0.01, 0.0, 0.01, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 0.7, 1.0, 1.05)),
    SettingSpec("typical_p", "typical-p", "typical-p", _FIFTHS),
    SettingSpec("repetition_penalty", "repetition penalty", "rep-penalty",
                (0.0, 0.5, 0.7, 0.8, 0.9, 1.0, 1.1, 1.2, 1.3, 1.5, 1.7, 2.0, 3.0, 5.0, 10.0, 100.0, 101.0)),
    SettingSpec("epsilon", "epsilon", "epsilon", _CUTOFFS),
    SettingSpec("eta", "eta", "eta", _CUTOFFS),
)

DEFAULTS = DecodingSettings()


def value_of(settings: DecodingSettings, index: int) -> float:
    return getattr(settings, SETTINGS[index].name)


def is_off(settings: DecodingSettings, index: int) -> bool:
    """True when the setting has its neutral default (the stage is not in the pipeline)."""
    name = SETTINGS[index].name
    return getattr(settings, name) == getattr(DEFAULTS, name)


def format_value(settings: DecodingSettings, index: int) -> str:
    value = value_of(settings, index)
    text = f"{value:g}"
    return f"{text} (off)" if is_off(settings, index) else text


def _round(value: float) -> float:
    """Three significant digits, so repeated ×1.25 steps stay readable (1.25, 1.56, 1.95)."""
    return float(f"{value:.3g}")


def stepped(settings: DecodingSettings, index: int, direction: int) -> DecodingSettings:
    """``settings`` with setting ``index`` moved one step up (direction +1) or down (-1).

    Raises:
        InputError: the step would leave the valid range (the sentence names the range), or the
            setting is already at the last step in that direction.
    """
    spec = SETTINGS[index]
    current = getattr(settings, spec.name)
    if spec.factor:
        new = _round(current * spec.factor if direction > 0 else current / spec.factor)
        if new < spec.smallest:
            raise InputError(f"{spec.label} is at its smallest step ({current:g}); for greedy decoding press g.")
    else:
        ladder = spec.ladder
        if direction > 0:
            bigger = [v for v in ladder if v > current]
            if not bigger:
                raise InputError(f"{spec.label} is at its largest step ({current:g}).")
            new = bigger[0]
        else:
            smaller = [v for v in ladder if v < current]
            if not smaller:
                raise InputError(f"{spec.label} is at its smallest step ({current:g}).")
            new = smaller[-1]
        if spec.name == "top_k":
            new = int(new)
    return replace(settings, **{spec.name: new})  # DecodingSettings validates (InputError with the range)


def reset(settings: DecodingSettings, index: int) -> DecodingSettings:
    name = SETTINGS[index].name
    return replace(settings, **{name: getattr(DEFAULTS, name)})


def single_bias(settings: DecodingSettings, token_id: int) -> float:
    """The bias on the single token ``token_id`` (0 when it has none)."""
    for seq, value in settings.biases:
        if seq == (token_id,):
            return value
    return 0.0


def is_banned(settings: DecodingSettings, token_id: int) -> bool:
    return (token_id,) in settings.bans
