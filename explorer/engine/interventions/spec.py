"""Interventions as data: one frozen dataclass per kind, checked on creation, to and from JSON.

An intervention names a TransformerLens site (SCIENCE.md 5.11), an operation, a strength and
the positions it touches (``start`` and after; 0 = every position). Sessions and exports
store :func:`to_json` of the list, so a saved file reopens with the same numbers: steering
vectors and ablation means are stored inline, SAE clamps store the SAE's path.

Strength, for every kind, is the knob the panel's ``-``/``=`` keys turn, and 0 always means
"no change":
    Steer   ``h ← h + strength·v`` at ``blocks.L.hook_resid_post`` (strength = α).
    Clamp   the feature's new activation is ``a + strength·(a* − a)`` where ``a*`` is the
            clamped value (``value`` or ``scale·a``); 1 = the full clamp.
    Ablate  the component becomes ``x + strength·(r − x)`` with ``r`` = 0 (zero) or the
            reference mean (mean); 1 = the full ablation.
Stdlib only (no torch): the UI and the session file layer read these.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from typing import Union

from explorer.errors import InputError

ABLATE_TARGETS = ("head", "mlp", "neuron")
ABLATE_HOW = ("zero", "mean")


def _finite(name: str, value: float) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a number, found {value!r}.") from None
    if not math.isfinite(v):
        raise InputError(f"{name} must be a finite number, found {value!r}.")
    return v


def _index(name: str, value: int) -> int:
    if isinstance(value, bool) or int(value) != value or int(value) < 0:
        raise InputError(f"{name} must be a whole number ≥ 0, found {value!r}.")
    return int(value)


@dataclass(frozen=True)
class Steer:
    """Add ``strength·vector`` to the residual after block ``layer`` from position ``start`` on."""

    layer: int
    vector: tuple[float, ...]
    """v, of the model's width d_model."""
    strength: float = 1.0
    start: int = 0
    source: str = ""
    """Where v came from (file, ``diff:POS:NEG@last``, ``sae:PATH#F``), for people."""
    enabled: bool = True
    kind: str = field(default="steer", init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "layer", _index("layer", self.layer))
        object.__setattr__(self, "start", _index("from", self.start))
        object.__setattr__(self, "strength", _finite("alpha", self.strength))
        vec = tuple(_finite("a steering vector entry", x) for x in self.vector)
        if not vec:
            raise InputError("A steering vector must hold at least one number.")
        object.__setattr__(self, "vector", vec)

    @property
    def site(self) -> str:
        return f"blocks.{self.layer}.hook_resid_post"

    def describe(self) -> str:
        return f"steer L{self.layer} α={self.strength:g}{f' from {self.start}' if self.start else ''} ({self.source or 'vector'})"


@dataclass(frozen=True)
class Clamp:
    """Set SAE feature ``feature`` to ``value`` (or multiply it by ``scale``), keeping the SAE's error.

    ``h' = h + dec(a') − dec(a)``; for an SAE without input normalisation that is exactly
    ``h + (a'_f − a_f)·W_dec[f]`` (SAELens / Neuronpedia steering convention).
    """

    layer: int
    feature: int
    sae_path: str
    value: float | None = None
    scale: float | None = None
    strength: float = 1.0
    start: int = 0
    sae_format: str | None = None
    enabled: bool = True
    kind: str = field(default="clamp", init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "layer", _index("layer", self.layer))
        object.__setattr__(self, "feature", _index("feature", self.feature))
        object.__setattr__(self, "start", _index("from", self.start))
        object.__setattr__(self, "strength", _finite("strength", self.strength))
        if (self.value is None) == (self.scale is None):
            raise InputError("A clamp needs exactly one of value=V or scale=S.")
        if self.value is not None:
            object.__setattr__(self, "value", _finite("value", self.value))
        if self.scale is not None:
            object.__setattr__(self, "scale", _finite("scale", self.scale))

    def describe(self) -> str:
        how = f"= {self.value:g}" if self.value is not None else f"× {self.scale:g}"
        return f"clamp L{self.layer} feature {self.feature} {how} (strength {self.strength:g})"


@dataclass(frozen=True)
class Ablate:
    """Zero- or mean-ablate one attention head (before o_proj), an MLP's output, or one MLP neuron."""

    target: str
    """"head" (attn.hook_z slice), "mlp" (hook_mlp_out) or "neuron" (mlp.hook_post column)."""
    layer: int
    index: int | None = None
    """The head or neuron; None for "mlp"."""
    how: str = "zero"
    mean: tuple[float, ...] | None = None
    """The reference mean (mean ablation): [d_head], [d_model] or [1]."""
    reference: str = ""
    """The token set the mean was taken over, in words."""
    strength: float = 1.0
    start: int = 0
    enabled: bool = True
    kind: str = field(default="ablate", init=False)

    def __post_init__(self) -> None:
        if self.target not in ABLATE_TARGETS:
            raise InputError(f'Ablation target "{self.target}" is unknown; use head=L.H, mlp=L or neuron=L.N.')
        if self.how not in ABLATE_HOW:
            raise InputError(f'how={self.how} is unknown; use how=zero or how=mean.')
        object.__setattr__(self, "layer", _index("layer", self.layer))
        object.__setattr__(self, "start", _index("from", self.start))
        object.__setattr__(self, "strength", _finite("strength", self.strength))
        if self.target == "mlp":
            object.__setattr__(self, "index", None)
        elif self.index is None:
            raise InputError(f"A {self.target} ablation needs L.{'H' if self.target == 'head' else 'N'}.")
        else:
            object.__setattr__(self, "index", _index(self.target, self.index))
        if self.mean is not None:
            object.__setattr__(self, "mean", tuple(_finite("a mean entry", x) for x in self.mean))

    @property
    def site(self) -> str:
        name = {"head": "attn.hook_z", "mlp": "hook_mlp_out", "neuron": "mlp.hook_post"}[self.target]
        return f"blocks.{self.layer}.{name}"

    def describe(self) -> str:
        what = {"head": f"head {self.layer}.{self.index}", "mlp": f"MLP {self.layer}",
                "neuron": f"neuron {self.layer}.{self.index}"}[self.target]
        return f"{self.how}-ablate {what} (strength {self.strength:g})"


Intervention = Union[Steer, Clamp, Ablate]
KINDS = {"steer": Steer, "clamp": Clamp, "ablate": Ablate}


def with_strength(item: Intervention, strength: float) -> Intervention:
    return replace(item, strength=strength)


def to_json(items) -> list[dict]:
    """Plain JSON values for a list of interventions (vectors and means as lists of floats)."""
    out = []
    for item in items:
        d = asdict(item)
        for key in ("vector", "mean"):
            if d.get(key) is not None:
                d[key] = list(d[key])
        out.append(d)
    return out


def from_json(data) -> list[Intervention]:
    """The inverse of :func:`to_json`.

    Raises:
        InputError: an entry of unknown kind or with bad fields, in one sentence.
    """
    if not isinstance(data, list):
        raise InputError("Interventions must be a JSON list.")
    items: list[Intervention] = []
    for i, d in enumerate(data):
        if not isinstance(d, dict) or d.get("kind") not in KINDS:
            raise InputError(f"Intervention {i + 1} has no known kind (steer, clamp or ablate).")
        fields = {k: v for k, v in d.items() if k != "kind"}
        for key in ("vector", "mean"):
            if isinstance(fields.get(key), list):
                fields[key] = tuple(fields[key])
        try:
            items.append(KINDS[d["kind"]](**fields))
        except TypeError as exc:
            raise InputError(f"Intervention {i + 1} has fields this version does not know ({exc}).") from None
    return items
