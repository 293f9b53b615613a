"""The decoding lab's editable settings: their order, labels, and the steps keys move them by.

Pure functions over ``DecodingSettings`` (no Textual, no torch), so they are cheap to test
and to call on the UI thread. A step that leaves a setting's valid range is not clamped
silently: the new value goes through ``DecodingSettings``' own validation, whose InputError
names the valid range, and the UI shows that sentence.
"""

from __future__ import annotations

from dataclasses import replace

from explorer.engine.decoding.settings import TUNABLES, DecodingSettings
from explorer.errors import InputError


#: The lab's rows, in order: the one declaration the command flags are made from too.
SETTINGS = TUNABLES

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
