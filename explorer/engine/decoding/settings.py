"""Decoding settings and the plain-number results of the decoding lab. Stdlib only.

The UI holds a ``DecodingSettings`` on its own thread and edits it with keys before any
model is loaded, so this module must not import torch (``pipeline.py`` does the work).
``TUNABLES`` declares each numeric setting once: the command flags and the lab's rows and
steps are made from it.
Never imports Textual or Rich.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Mapping

from explorer.errors import InputError

MAX_TEMPERATURE = 100.0
MAX_PENALTY = 100.0
MAX_ABS_BIAS = 1000.0

#: Stage names in pipeline order (the UI can show them in this order).
STAGE_ORDER = ("sequence_bias", "repetition_penalty", "ban", "regex",
               "temperature", "top_k", "top_p", "min_p", "typical_p", "epsilon", "eta", "fallback")



@dataclass(frozen=True)
class Tunable:
    """One numeric decoding setting, declared once: the ``next``/``beam``/``logprobs`` flag and the
    lab's row and steps are all made from this (the valid range is checked by DecodingSettings)."""

    name: str
    """The DecodingSettings field."""
    kind: type
    """int or float: how a flag value is parsed."""
    label: str
    short: str
    """At most 12 characters, for the lab panel."""
    metavar: str
    help: str
    """The flag's help: what it does, its range, its neutral value."""
    ladder: tuple[float, ...] = ()
    """The values the lab's - and = walk through. Each end holds one value just outside the valid
    range, so stepping past the end is refused by the settings' own validation (with the range)."""
    factor: float = 0.0
    """Multiplicative step instead of a ladder (temperature)."""
    smallest: float = 0.0
    """With ``factor``: the smallest value a step goes to."""

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")


_FIFTHS = tuple(round(0.05 * i, 2) for i in range(0, 22))  # 0, 0.05, ..., 1.05 (ends are out of range)
_CUTOFFS = (-0.0001, 0.0, 0.0001, 0.0003, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 0.9, 1.0)

#: The numeric settings in the lab's order (the processors' order in generate()).
TUNABLES: tuple[Tunable, ...] = (
    Tunable("temperature", float, "temperature", "temperature", "T", "divide logits by T, T in (0, 100] (default 1 = off)",
            factor=1.25, smallest=0.01),
    Tunable("top_k", int, "top-k", "top-k", "K", "keep the K most likely tokens (0 = off)",
            (-1, 0, 1, 2, 3, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000)),
    Tunable("top_p", float, "top-p", "top-p", "P", "nucleus mass in (0, 1] (1 = off)", _FIFTHS),
    Tunable("min_p", float, "min-p", "min-p", "P", "drop p < P·max p, P in [0, 1] (0 = off)",
            (-0.01, 0.0, 0.01, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 0.7, 1.0, 1.05)),
    Tunable("typical_p", float, "typical-p", "typical-p", "P", "typical-sampling mass in (0, 1] (1 = off)", _FIFTHS),
    Tunable("repetition_penalty", float, "repetition penalty", "rep-penalty", "θ",
            "penalty for tokens already in the context, in (0, 100] (1 = off)",
            (0.0, 0.5, 0.7, 0.8, 0.9, 1.0, 1.1, 1.2, 1.3, 1.5, 1.7, 2.0, 3.0, 5.0, 10.0, 100.0, 101.0)),
    Tunable("epsilon", float, "epsilon", "epsilon", "E", "epsilon sampling cutoff in [0, 1) (0 = off)", _CUTOFFS),
    Tunable("eta", float, "eta", "eta", "E", "eta sampling parameter in [0, 1) (0 = off)", _CUTOFFS),
)

def _as_seq(value) -> tuple[int, ...]:
    """One token id or a token-id sequence -> a tuple of ints."""
    if isinstance(value, bool) or isinstance(value, (str, bytes)):
        raise InputError(f"A banned or biased token must be a token id or a list of ids, found {value!r}.")
    try:
        seq = (int(value),) if isinstance(value, int) else tuple(int(v) for v in value)
    except (TypeError, ValueError):
        raise InputError(f"A banned or biased token must be a token id or a list of ids, found {value!r}.") from None
    if not seq:
        raise InputError("A banned or biased token sequence is empty.")
    if any(t < 0 for t in seq):
        raise InputError(f"Token ids are never negative, found {list(seq)}.")
    return seq


@dataclass(frozen=True)
class DecodingSettings:
    """Decoding settings; the defaults change nothing (plain sampling at T = 1).

    ``bans`` accepts token ids or id sequences; ``biases`` a mapping {id or id sequence: bias}
    or (sequence, bias) pairs. Both are normalised to tuples so the settings stay hashable.
    Out-of-range values raise InputError naming the valid range.
    """

    temperature: float = 1.0
    """Divide the logits by T; T in (0, 100]; 1 = off."""
    top_k: int = 0
    """Keep the k most likely tokens; 0 = off (note: generate() itself defaults to 50)."""
    top_p: float = 1.0
    """Nucleus: keep the smallest set holding mass >= p; p in (0, 1]; 1 = off."""
    min_p: float = 0.0
    """Drop tokens below min_p · (top probability), after temperature; [0, 1]; 0 = off."""
    typical_p: float = 1.0
    """Locally typical sampling mass; (0, 1]; 1 = off."""
    repetition_penalty: float = 1.0
    """Keskar et al.: logits of tokens in the context divided (>0) or multiplied (<0) by θ; (0, 100]; 1 = off."""
    epsilon: float = 0.0
    """Epsilon sampling: drop p < ε; [0, 1); 0 = off."""
    eta: float = 0.0
    """Eta sampling: drop p < min(η, √η·e^{-H}); [0, 1); 0 = off."""
    bans: tuple[tuple[int, ...], ...] = ()
    """Token sequences that may never be completed (NoBadWordsLogitsProcessor)."""
    biases: tuple[tuple[tuple[int, ...], float], ...] = ()
    """Additive logit biases for a token or for the last token of a sequence (SequenceBiasLogitsProcessor)."""
    do_sample: bool = True
    """Sample (warpers apply) or pick the argmax of the processed logits (warpers do not apply)."""

    def __post_init__(self) -> None:
        bans = self.bans
        if isinstance(bans, (int, str)) or bans is None:
            bans = () if bans is None else (bans,)
        norm_bans = tuple(dict.fromkeys(_as_seq(b) for b in bans))
        biases = self.biases
        if isinstance(biases, Mapping):
            biases = tuple(biases.items())
        merged: dict[tuple[int, ...], float] = {}
        for pair in biases or ():
            try:
                key, value = pair
            except (TypeError, ValueError):
                raise InputError(f"A bias must be a (token, value) pair, found {pair!r}.") from None
            merged[_as_seq(key)] = float(value)
        object.__setattr__(self, "bans", norm_bans)
        object.__setattr__(self, "biases", tuple(merged.items()))
        self.validate()

    def validate(self) -> None:
        """Raise InputError with the valid range for the first out-of-range value."""

        def bad(name: str, rng: str, value) -> InputError:
            return InputError(f"{name} must be {rng}, found {value}.")

        t = self.temperature
        if not (isinstance(t, (int, float)) and math.isfinite(t) and 0 < t <= MAX_TEMPERATURE):
            raise bad("temperature", f"greater than 0 and at most {MAX_TEMPERATURE:g} (1 = off; for greedy turn sampling off)", t)
        if isinstance(self.top_k, bool) or not isinstance(self.top_k, int) or self.top_k < 0:
            raise bad("top-k", "a whole number of at least 0 (0 = off)", self.top_k)
        for name, value in (("top-p", self.top_p), ("typical-p", self.typical_p)):
            if not (math.isfinite(value) and 0 < value <= 1):
                raise bad(name, "in (0, 1] (1 = off)", value)
        if not (math.isfinite(self.min_p) and 0 <= self.min_p <= 1):
            raise bad("min-p", "in [0, 1] (0 = off)", self.min_p)
        for name, value in (("epsilon", self.epsilon), ("eta", self.eta)):
            if not (math.isfinite(value) and 0 <= value < 1):
                raise bad(name, "in [0, 1) (0 = off)", value)
        rp = self.repetition_penalty
        if not (math.isfinite(rp) and 0 < rp <= MAX_PENALTY):
            raise bad("repetition penalty", f"greater than 0 and at most {MAX_PENALTY:g} (1 = off)", rp)
        for seq, value in self.biases:
            if not (math.isfinite(value) and abs(value) <= MAX_ABS_BIAS):
                raise bad(f"the bias of token {list(seq)}", f"a finite number in [-{MAX_ABS_BIAS:g}, {MAX_ABS_BIAS:g}] "
                          "(to forbid a token, ban it)", value)

    # ------------------------------------------------------------ editing
    def with_ban(self, token) -> "DecodingSettings":
        """A copy that also bans ``token`` (an id or an id sequence)."""
        return replace(self, bans=self.bans + (_as_seq(token),))

    def without_ban(self, token) -> "DecodingSettings":
        seq = _as_seq(token)
        return replace(self, bans=tuple(b for b in self.bans if b != seq))

    def with_bias(self, token, value: float) -> "DecodingSettings":
        """A copy with ``token``'s bias set to ``value`` (0 removes it)."""
        seq = _as_seq(token)
        rest = tuple((s, v) for s, v in self.biases if s != seq)
        return replace(self, biases=rest if value == 0 else rest + ((seq, float(value)),))

    def is_neutral(self) -> bool:
        """True when the pipeline changes nothing (processed = raw)."""
        return self == DecodingSettings(do_sample=self.do_sample)

    def check_vocab(self, vocab_size: int) -> None:
        """Refuse banned or biased ids outside the vocabulary (before transformers would raise)."""
        for seq in list(self.bans) + [s for s, _ in self.biases]:
            for t in seq:
                if t >= vocab_size:
                    raise InputError(f"Token id {t} is outside the vocabulary (0..{vocab_size - 1}).")

    def generate_kwargs(self) -> dict:
        """Keyword arguments that make ``model.generate`` build this same pipeline.

        top_k is always passed, because generate() applies top_k = 50 when it is left out.
        """
        kw: dict = {"do_sample": self.do_sample, "temperature": float(self.temperature), "top_k": self.top_k,
                    "top_p": float(self.top_p), "typical_p": float(self.typical_p),
                    "repetition_penalty": float(self.repetition_penalty),
                    "epsilon_cutoff": float(self.epsilon), "eta_cutoff": float(self.eta)}
        if self.min_p > 0:
            kw["min_p"] = float(self.min_p)
        if self.bans:
            kw["bad_words_ids"] = [list(b) for b in self.bans]
        if self.biases:
            kw["sequence_bias"] = [[list(s), float(v)] for s, v in self.biases]
        return kw

    def describe(self) -> str:
        """One line for a status bar, listing only the stages that are on."""
        parts = []
        if not self.do_sample:
            parts.append("greedy")
        for name, value, off in (("T", self.temperature, 1.0), ("top-k", self.top_k, 0), ("top-p", self.top_p, 1.0),
                                 ("min-p", self.min_p, 0.0), ("typical-p", self.typical_p, 1.0),
                                 ("rep", self.repetition_penalty, 1.0), ("ε", self.epsilon, 0.0), ("η", self.eta, 0.0)):
            if value != off:
                parts.append(f"{name}={value:g}")
        if self.bans:
            parts.append(f"{len(self.bans)} banned")
        if self.biases:
            parts.append(f"{len(self.biases)} biased")
        return ", ".join(parts) or "sampling, no changes"


@dataclass(frozen=True)
class StageSummary:
    """What one stage did to the distribution."""

    name: str
    """Lab name: "temperature", "top_k", "ban", ... (see STAGE_ORDER)."""
    processor: str
    """The transformers class that did it."""
    survivors: int
    """Tokens with a finite score after this stage."""
    removed: int
    """Tokens this stage set to -inf."""
    mass_kept: float
    """Probability mass, under the distribution entering this stage, of the tokens it kept."""
    raw_mass_kept: float
    """Raw probability (softmax of the model's logits) of all tokens still alive after this stage."""
    kept_by_floor: bool = False
    """The stage's own rule would have removed every token; min_tokens_to_keep = 1 kept the best one."""


@dataclass(frozen=True)
class LabRow:
    """One row of the lab's next-token table (plain numbers)."""

    rank: int
    """Rank by raw probability (1 = most likely)."""
    id: int
    text: object  # TokenText
    raw_prob: float
    processed_prob: float
    raw_logit: float
    processed_logit: float
    """-inf for a removed token."""
    removed_by: str | None


@dataclass(frozen=True)
class LabView:
    """The lab panel's data for one step: table rows, per-stage summary, survivors, notes."""

    rows: tuple[LabRow, ...]
    stages: tuple[StageSummary, ...]
    survivors: int
    vocab_size: int
    notes: tuple[str, ...]
    settings: DecodingSettings
