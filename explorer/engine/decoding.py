"""The decoding lab: settings, transformers' own logits pipeline stage by stage, seeded sampling.

``process_logits`` re-scores one next-token logits row under ``DecodingSettings`` with the
very ``LogitsProcessor`` classes ``generate()`` would build for those settings, in the order
of transformers 5's ``GenerationMixin._get_logits_processor`` (SCIENCE.md 5.9):

    sequence bias → repetition penalty → bad words (bans) → regex constraint (prefix-allowed)
    → [sampling only] temperature → top-k → top-p → min-p → typical-p → epsilon → eta

It records, for every token a stage sets to -inf, the name of that stage, and per stage the
probability mass kept and the number of survivors. No forward pass: the UI calls it on the
row it already has, so a settings change re-scores the step at once (a few ms at 49k tokens).

``SeededSampler`` draws from the processed distribution with its own ``torch.Generator``
(same seed + same draws = same tokens); ``generate_tokens`` steps N tokens with a Trace (one
one-token forward pass per token against the KV cache). Never imports Textual or Rich.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Callable, Iterable, Mapping, Sequence

import torch

from explorer.errors import InputError

if TYPE_CHECKING:
    from explorer.engine.model import ModelWrapper
    from explorer.engine.trace import Trace

MAX_TEMPERATURE = 100.0
MAX_PENALTY = 100.0
MAX_ABS_BIAS = 1000.0

#: Stage names in pipeline order (the UI can show them in this order).
STAGE_ORDER = ("sequence_bias", "repetition_penalty", "ban", "regex",
               "temperature", "top_k", "top_p", "min_p", "typical_p", "epsilon", "eta", "fallback")


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


# ---------------------------------------------------------------------------- pipeline
@dataclass(frozen=True)
class Stage:
    """One transformers processor in the pipeline, under the name the lab shows."""

    name: str
    processor: object  # a transformers LogitsProcessor
    rule: Callable[[torch.Tensor], torch.Tensor] | None = None
    """For the stages that can want to drop every token (epsilon, eta): scores -> tokens its rule keeps."""


def _epsilon_rule(eps: float):
    return lambda scores: scores.softmax(-1) >= eps


def _eta_rule(eta: float):
    def keep(scores: torch.Tensor) -> torch.Tensor:
        # The cutoff EtaLogitsWarper uses: min(η, √η · exp(-H)).
        probs = scores.softmax(-1)
        entropy = torch.distributions.Categorical(logits=scores).entropy()
        cut = torch.minimum(torch.tensor(eta), math.sqrt(eta) * torch.exp(-entropy))[..., None]
        return probs >= cut
    return keep


def build_stages(settings: DecodingSettings, *, eos_ids: Sequence[int] = (),
                 allowed_ids: Sequence[int] | None = None) -> list[Stage]:
    """The processors generate() would build for ``settings`` (batch 1, no beams), in its order.

    Args:
        settings: the decoding settings.
        eos_ids: the model's end-of-sequence ids (NoBadWordsLogitsProcessor never bans them,
            as in generate()).
        allowed_ids: tokens a regex constraint allows next, or None (no constraint). Applied with
            transformers' PrefixConstrainedLogitsProcessor, where generate() puts
            ``prefix_allowed_tokens_fn``.

    Returns:
        Stages in application order.
    """
    from transformers.generation import logits_process as lp

    stages: list[Stage] = []
    if settings.biases:
        stages.append(Stage("sequence_bias", lp.SequenceBiasLogitsProcessor(
            [[list(s), float(v)] for s, v in settings.biases])))
    if settings.repetition_penalty != 1.0:
        stages.append(Stage("repetition_penalty", lp.RepetitionPenaltyLogitsProcessor(float(settings.repetition_penalty))))
    bans = [list(b) for b in settings.bans if not (len(b) == 1 and b[0] in set(eos_ids))]
    if bans:
        stages.append(Stage("ban", lp.NoBadWordsLogitsProcessor(bans, list(eos_ids) or None)))
    if allowed_ids is not None:
        allowed = [int(t) for t in allowed_ids]
        if not allowed:
            raise InputError("The regex constraint allows no token here.")
        stages.append(Stage("regex", lp.PrefixConstrainedLogitsProcessor(lambda _b, _ids: allowed, num_beams=1)))
    if settings.do_sample:
        # min_tokens_to_keep = 1 without beams, as in generate().
        if settings.temperature != 1.0:
            stages.append(Stage("temperature", lp.TemperatureLogitsWarper(float(settings.temperature))))
        if settings.top_k != 0:
            stages.append(Stage("top_k", lp.TopKLogitsWarper(top_k=int(settings.top_k), min_tokens_to_keep=1)))
        if settings.top_p < 1.0:
            stages.append(Stage("top_p", lp.TopPLogitsWarper(top_p=float(settings.top_p), min_tokens_to_keep=1)))
        if settings.min_p > 0:
            stages.append(Stage("min_p", lp.MinPLogitsWarper(min_p=float(settings.min_p), min_tokens_to_keep=1)))
        if settings.typical_p < 1.0:
            stages.append(Stage("typical_p", lp.TypicalLogitsWarper(mass=float(settings.typical_p), min_tokens_to_keep=1)))
        if 0.0 < settings.epsilon < 1.0:
            stages.append(Stage("epsilon", lp.EpsilonLogitsWarper(epsilon=float(settings.epsilon), min_tokens_to_keep=1),
                                rule=_epsilon_rule(float(settings.epsilon))))
        if 0.0 < settings.eta < 1.0:
            stages.append(Stage("eta", lp.EtaLogitsWarper(epsilon=float(settings.eta), min_tokens_to_keep=1),
                                rule=_eta_rule(float(settings.eta))))
    return stages


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


@dataclass
class ProcessedStep:
    """The raw and processed next-token distribution and who removed what.

    Tensors are ``[vocab]`` float32 on the CPU.
    """

    settings: DecodingSettings
    raw_logits: torch.Tensor
    raw_probs: torch.Tensor
    scores: torch.Tensor
    """Processed logits: what generate(output_scores=True) returns for this step."""
    probs: torch.Tensor
    """softmax(scores): the distribution a sample is drawn from."""
    removed_stage: torch.Tensor
    """int16 ``[vocab]``: index into ``stages`` of the stage that removed the token, -1 if it survived."""
    stages: tuple[StageSummary, ...]
    notes: tuple[str, ...] = field(default_factory=tuple)

    def removed_by(self, token_id: int) -> str | None:
        i = int(self.removed_stage[token_id])
        return None if i < 0 else self.stages[i].name

    @property
    def survivors(self) -> int:
        return int(torch.isfinite(self.scores).sum())

    def greedy_token(self) -> int:
        return int(torch.argmax(self.scores))


def process_logits(logits: torch.Tensor, context_ids: Sequence[int], settings: DecodingSettings, *,
                   eos_ids: Sequence[int] = (), allowed_ids: Sequence[int] | None = None) -> ProcessedStep:
    """Apply transformers' processors for ``settings`` to one logits row, recording each stage.

    Args:
        logits: next-token logits ``[vocab]`` (any float dtype; computed in float32 like generate()).
        context_ids: every token before the next one (prompt and generated); the repetition
            penalty and multi-token bans/biases read it, as generate() reads ``input_ids``.
        settings: the decoding settings.
        eos_ids: end-of-sequence ids (never banned, as in generate()).
        allowed_ids: tokens a regex constraint allows, or None.

    Returns:
        A ProcessedStep. If the bans and the constraint together leave no token, the raw argmax
        is kept (stage "fallback") and a note says so; transformers would fail there.
    """
    raw = logits.detach().float().cpu().reshape(1, -1)  # [1, vocab]
    vocab = raw.shape[-1]
    settings.check_vocab(vocab)
    ctx = torch.tensor([list(context_ids)], dtype=torch.long)  # [1, n]
    raw_probs = raw.softmax(-1)[0]  # [vocab]
    notes: list[str] = []
    eos_banned = [b[0] for b in settings.bans if len(b) == 1 and b[0] in set(eos_ids)]
    if eos_banned:
        notes.append("transformers never bans the end-of-sequence token (NoBadWordsLogitsProcessor skips it); "
                     "give it a negative bias instead.")
    stages = build_stages(settings, eos_ids=eos_ids, allowed_ids=allowed_ids)
    if not settings.do_sample:
        notes.append("Greedy: the sampling stages (temperature, top-k, top-p, ...) do not apply; "
                     "the next token is the argmax of the processed logits.")
    removed = torch.full((vocab,), -1, dtype=torch.int16)
    summaries: list[StageSummary] = []
    scores = raw.clone()
    for index, stage in enumerate(stages):
        before = scores
        alive_before = torch.isfinite(before[0])
        with torch.inference_mode():
            after = stage.processor(ctx, before.clone())
        alive_after = torch.isfinite(after[0])
        newly = alive_before & ~alive_after
        removed[newly] = index
        p_in = before.softmax(-1)[0]
        floor = False
        if stage.rule is not None:
            wanted = stage.rule(before)[0] & alive_before
            floor = not bool(wanted.any())
            if floor:
                notes.append(f"{stage.name} would remove every token; like transformers "
                             "(min_tokens_to_keep = 1) it keeps the most likely token (and any tied with it).")
        summaries.append(StageSummary(
            name=stage.name, processor=type(stage.processor).__name__,
            survivors=int(alive_after.sum()), removed=int(newly.sum()),
            mass_kept=float(p_in[alive_after].sum()), raw_mass_kept=float(raw_probs[alive_after].sum()),
            kept_by_floor=floor))
        scores = after
        if not bool(alive_after.any()):
            # Only bans + a constraint can do this; transformers would sample from NaNs. Keep the raw argmax.
            best = int(torch.argmax(raw[0]))
            scores = torch.full_like(raw, -math.inf)
            scores[0, best] = raw[0, best]
            removed[best] = -1
            summaries.append(StageSummary("fallback", "none", 1, 0, 1.0, float(raw_probs[best]), True))
            notes.append(f"{stage.name} removed every token; the most likely raw token is kept so "
                         "something can be chosen.")
            break
    probs = scores.softmax(-1)[0]
    return ProcessedStep(settings=settings, raw_logits=raw[0], raw_probs=raw_probs, scores=scores[0], probs=probs,
                         removed_stage=removed, stages=tuple(summaries), notes=tuple(notes))


# ---------------------------------------------------------------------------- lab rows for the UI
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
    rows: tuple[LabRow, ...]
    stages: tuple[StageSummary, ...]
    survivors: int
    vocab_size: int
    notes: tuple[str, ...]
    settings: DecodingSettings


def lab_rows(step: ProcessedStep, render: Callable[[int], object], top_n: int, *,
             order: str = "raw", include: Iterable[int] = ()) -> tuple[LabRow, ...]:
    """The ``top_n`` tokens by raw (or processed) probability, plus ``include`` ids, as rows.

    Args:
        step: a ProcessedStep.
        render: token id -> TokenText (``wrapper.token_text``).
        top_n: rows to list.
        order: "raw" ranks by raw probability, "processed" by processed probability.
        include: ids to add even when outside the top (banned/biased tokens, so they stay visible).
    """
    key = step.raw_logits if order == "raw" else step.probs
    k = min(top_n, key.shape[-1])
    ids = torch.topk(key, k).indices.tolist()
    extra = [int(t) for t in include if int(t) not in set(ids) and 0 <= int(t) < key.shape[-1]]
    raw_rank = torch.argsort(torch.argsort(step.raw_logits, descending=True))  # [vocab] 0-based rank
    rows = []
    for tid in ids + extra:
        rows.append(LabRow(rank=int(raw_rank[tid]) + 1, id=tid, text=render(tid),
                           raw_prob=float(step.raw_probs[tid]), processed_prob=float(step.probs[tid]),
                           raw_logit=float(step.raw_logits[tid]), processed_logit=float(step.scores[tid]),
                           removed_by=step.removed_by(tid)))
    return tuple(rows)


def lab_view(wrapper: "ModelWrapper", trace: "Trace", settings: DecodingSettings, top_n: int, *,
             allowed_ids: Sequence[int] | None = None, order: str = "raw") -> LabView:
    """Re-score the last step of a synced trace under ``settings`` (no forward pass).

    Args:
        wrapper: the model (for EOS ids and token texts).
        trace: a Trace synced to the prompt (``session.trace_for(*session.snapshot())``).
        settings: the decoding settings.
        top_n: table rows.
        allowed_ids: a regex constraint's allowed tokens, or None.
        order: "raw" or "processed" ranking of the rows.
    """
    step = process_logits(trace.last_row(), trace.ids, settings, eos_ids=wrapper.eos_ids, allowed_ids=allowed_ids)
    marked = [s[-1] for s in settings.bans] + [s[-1] for s, _ in settings.biases]
    rows = lab_rows(step, wrapper.token_text, top_n, order=order, include=marked)
    return LabView(rows=rows, stages=step.stages, survivors=step.survivors, vocab_size=int(step.scores.shape[-1]),
                   notes=step.notes, settings=settings)


# ---------------------------------------------------------------------------- sampling
class SeededSampler:
    """Draws tokens with its own torch.Generator, so a session replays from its seed.

    The same seed and the same sequence of draws give the same tokens. ``draws`` counts
    them (the status bar can show "seed 42, draw 7"); ``get_state``/``set_state`` save and
    restore the exact position in the stream.
    """

    def __init__(self, seed: int) -> None:
        self.seed = int(seed)
        self.draws = 0
        self.generator = torch.Generator(device="cpu")
        self.generator.manual_seed(self.seed)

    def reset(self) -> None:
        self.__init__(self.seed)

    def get_state(self) -> tuple[int, torch.Tensor]:
        return self.draws, self.generator.get_state()

    def set_state(self, state: tuple[int, torch.Tensor]) -> None:
        self.draws, gen_state = state
        self.generator.set_state(gen_state)

    def draw(self, step: ProcessedStep) -> int:
        """The next token: a multinomial draw from ``step.probs`` (argmax when greedy, no draw used)."""
        if not step.settings.do_sample:
            return step.greedy_token()
        token = int(torch.multinomial(step.probs.reshape(1, -1), num_samples=1, generator=self.generator)[0, 0])
        self.draws += 1
        return token


@dataclass(frozen=True)
class GeneratedToken:
    id: int
    raw_prob: float
    processed_prob: float
    survivors: int


@dataclass(frozen=True)
class GenerationResult:
    prompt_ids: tuple[int, ...]
    tokens: tuple[GeneratedToken, ...]
    stopped: str
    """"length" (N tokens), "eos", "constraint" (the regex match finished) or "context" (context full)."""

    @property
    def new_ids(self) -> list[int]:
        return [t.id for t in self.tokens]


def sample_next(wrapper: "ModelWrapper", trace: "Trace", settings: DecodingSettings, sampler: SeededSampler, *,
                allowed_ids: Sequence[int] | None = None) -> tuple[int, ProcessedStep]:
    """Sample one next token for a synced trace (no forward pass). Returns (token id, the step)."""
    step = process_logits(trace.last_row(), trace.ids, settings, eos_ids=wrapper.eos_ids, allowed_ids=allowed_ids)
    return sampler.draw(step), step


@torch.inference_mode()
def generate_tokens(wrapper: "ModelWrapper", prompt_ids: Sequence[int], settings: DecodingSettings, n: int,
                    sampler: SeededSampler, *, trace: "Trace | None" = None, stop_at_eos: bool = True,
                    constraint=None, should_stop: Callable[[], bool] | None = None,
                    on_token: Callable[[int, int], None] | None = None) -> GenerationResult:
    """Generate up to ``n`` tokens with ``settings``: one one-token forward pass per token (KV cache).

    Args:
        wrapper: the model.
        prompt_ids: the prompt.
        settings: the decoding settings.
        n: how many tokens at most (1..4096).
        sampler: the seeded sampler (advanced by the draws made).
        trace: a Trace already synced to ``prompt_ids`` to continue from (it is cloned, not changed);
            None runs the prompt once.
        stop_at_eos: stop after an end-of-sequence token, like generate().
        constraint: a ``constraint.ConstraintTracker`` limiting each step, or None. Generation stops
            when its match is finished.
        should_stop: polled between tokens (a cancelled UI worker returns True).
        on_token: called with (index, token id) after each token (progress).

    Returns:
        GenerationResult with the new tokens and why it stopped.
    """
    from explorer.engine.trace import Trace

    if not 1 <= int(n) <= 4096:
        raise InputError(f"The number of tokens to generate must be between 1 and 4096, found {n}.")
    prompt = [int(t) for t in prompt_ids]
    if not prompt:
        raise InputError("A prompt must hold at least one token.")
    out: list[GeneratedToken] = []
    stopped = "length"
    with wrapper.lock:
        if trace is not None and list(trace.ids) == prompt:
            work = trace.clone()
        else:
            work = Trace(wrapper)
            work.extend(prompt)
        for i in range(int(n)):
            if should_stop is not None and should_stop():
                stopped = "cancelled"
                break
            allowed = None
            if constraint is not None:
                state = constraint.step(work.ids[len(prompt):])
                if state.finished:
                    stopped = "constraint"
                    break
                allowed = state.allowed_ids()
            token, step = sample_next(wrapper, work, settings, sampler, allowed_ids=allowed)
            out.append(GeneratedToken(token, float(step.raw_probs[token]), float(step.probs[token]), step.survivors))
            if on_token is not None:
                on_token(i, token)
            if stop_at_eos and token in wrapper.eos_ids:
                stopped = "eos"
                break
            if constraint is not None and constraint.step(work.ids[len(prompt):] + [token]).finished:
                stopped = "constraint"  # the match is complete: no forward pass for a token we will not use
                break
            if len(work.ids) + 1 > wrapper.context_length:
                stopped = "context"
                break
            if i + 1 < int(n):  # the last token needs no forward pass
                work.extend([token])
    return GenerationResult(tuple(prompt), tuple(out), stopped)
