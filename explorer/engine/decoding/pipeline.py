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
(same seed + same draws = same tokens); the generation loop that uses them is in
``generate``. The settings and the plain result
types live in ``decoding_settings`` (no torch) and are re-exported here. Never imports
Textual or Rich.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Iterable, Sequence

import torch

from explorer.engine.decoding.settings import (STAGE_ORDER, DecodingSettings, LabRow, LabView,  # noqa: F401
                                               StageSummary)
from explorer.errors import InputError

if TYPE_CHECKING:
    from explorer.engine.model import ModelWrapper
    from explorer.engine.trace import Trace

# ---------------------------------------------------------------------------- pipeline
@dataclass(frozen=True)
class Stage:
    """One transformers processor in the pipeline, under the name the lab shows."""

    name: str
    processor: object  # a transformers LogitsProcessor
    rule: Callable[[torch.Tensor], torch.Tensor] | None = None
    """For a stage whose rule can want to drop every token (epsilon): scores -> tokens the rule keeps."""


def _epsilon_rule(eps: float):
    return lambda scores: scores.softmax(-1) >= eps


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
            # No floor check: the eta cutoff is below max p (√η < 1 and e^-H <= max p), so eta never empties the table.
            stages.append(Stage("eta", lp.EtaLogitsWarper(epsilon=float(settings.eta), min_tokens_to_keep=1)))
    return stages


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
    alive_before = torch.isfinite(scores[0])  # [vocab] bool
    for index, stage in enumerate(stages):
        before = scores
        with torch.inference_mode():
            after = stage.processor(ctx, before.clone())
        alive_after = after[0] > -math.inf  # processors only ever write -inf
        newly = alive_before & ~alive_after
        removed.masked_fill_(newly, index)
        n_removed = int(newly.sum())
        # Mass of the kept tokens under the distribution entering the stage (1 when nothing went).
        mass_kept = float((before.softmax(-1)[0] * alive_after).sum()) if n_removed else 1.0
        floor = False
        if stage.rule is not None:
            wanted = stage.rule(before)[0] & alive_before
            floor = not bool(wanted.any())
            if floor:
                notes.append(f"{stage.name} would remove every token; like transformers "
                             "(min_tokens_to_keep = 1) it keeps the most likely token (and any tied with it).")
        summaries.append(StageSummary(
            name=stage.name, processor=type(stage.processor).__name__,
            survivors=int(alive_after.sum()), removed=n_removed,
            mass_kept=mass_kept, raw_mass_kept=float((raw_probs * alive_after).sum()),
            kept_by_floor=floor))
        scores = after
        alive_before = alive_after
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
    if order == "raw":
        ids = torch.topk(key, k).indices.tolist()
    else:
        # Removed tokens all have processed probability 0: a plain topk would list them in arbitrary
        # order, so the survivors come first (by processed p) and the removed rows follow by raw p.
        alive = step.probs > 0
        n_alive = min(k, int(alive.sum()))
        ids = torch.topk(step.probs, n_alive).indices.tolist() if n_alive else []
        if k > n_alive:
            removed = step.raw_logits.masked_fill(alive, float("-inf"))
            ids += torch.topk(removed, k - n_alive).indices.tolist()
    extra = [int(t) for t in include if int(t) not in set(ids) and 0 <= int(t) < key.shape[-1]]
    rows = []
    for tid in ids + extra:
        rank = int((step.raw_logits > step.raw_logits[tid]).sum()) + 1  # ties share a rank
        rows.append(LabRow(rank=rank, id=tid, text=render(tid),
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


def sample_next(wrapper: "ModelWrapper", trace: "Trace", settings: DecodingSettings, sampler: SeededSampler, *,
                allowed_ids: Sequence[int] | None = None) -> tuple[int, ProcessedStep]:
    """Sample one next token for a synced trace (no forward pass). Returns (token id, the step)."""
    step = process_logits(trace.last_row(), trace.ids, settings, eos_ids=wrapper.eos_ids, allowed_ids=allowed_ids)
    return sampler.draw(step), step
