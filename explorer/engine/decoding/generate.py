"""The one generation loop, and what is built on it: log-prob generation, lab generation, the JSONL record.

``decode_loop`` runs the prompt once and then one one-token forward pass per new token against
a KV cache (never the whole sequence again), choosing each token with the decoding pipeline
(``pipeline.process_logits`` + ``SeededSampler``). On it: ``generate`` (greedy, or sampled at
T = 1 from a seed, with forced guide tokens: seeds/001, "prompt, blank line, guide", scored
like any other token and marked ``forced``) and ``generate_tokens`` (the decoding lab's
settings and regex constraint, with raw and processed probabilities).

``logprob_record`` turns steps into the notebook's line:
``{"prompt", "response", "data": [{"token", "logprob", "prob" (percent), "other_tokens":
[{"token", "logprob", "prob"}]}]}``. ``trace_steps`` reads the same steps out of a Trace (the
app's export of the current prompt) without a forward pass. Never imports Textual or Rich.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Sequence

import torch

from explorer.engine.decoding.pipeline import ProcessedStep, SeededSampler, process_logits
from explorer.engine.decoding.settings import DecodingSettings
from explorer.engine.model import ModelWrapper
from explorer.errors import InputError
from explorer.schema import LOGPROBS_SCHEMA_VERSION

if TYPE_CHECKING:
    from explorer.engine.trace import Trace

TOP_STORED = 20  # alternatives kept per step (the Trace keeps the same number)


@dataclass(frozen=True)
class TokenStep:
    """One token and the distribution it came from."""

    token_id: int
    logprob: float
    """log p(token | everything before it), natural log."""
    top_ids: tuple[int, ...]
    """The most probable tokens of that distribution, most probable first."""
    top_logprobs: tuple[float, ...]
    forced: bool = False
    """True for a guide token that was fed, not chosen."""


@dataclass
class Generation:
    prompt_ids: list[int]
    steps: list[TokenStep] = field(default_factory=list)
    stop_reason: str = "length"
    """"length" (max_new_tokens), "eos", "context" or "cancelled"."""

    @property
    def new_ids(self) -> list[int]:
        """Every token after the prompt: forced ones, then generated ones."""
        return [s.token_id for s in self.steps]

    @property
    def generated_ids(self) -> list[int]:
        return [s.token_id for s in self.steps if not s.forced]


def _step(row: torch.Tensor, token_id: int, forced: bool) -> TokenStep:
    logp = torch.log_softmax(row.float(), dim=-1)  # [vocab]
    top = torch.topk(logp, min(TOP_STORED, logp.shape[-1]))
    return TokenStep(int(token_id), float(logp[token_id]), tuple(top.indices.tolist()),
                     tuple(top.values.tolist()), forced)


# ---------------------------------------------------------------------------- the one loop
@dataclass(frozen=True)
class LoopStep:
    """One token the loop fed (forced) or chose, and the distribution it came from."""

    token_id: int
    row: torch.Tensor
    """The raw next-token logits ``[vocab]`` that predicted this token."""
    processed: ProcessedStep | None
    """The distribution it was chosen from (settings, constraint applied); None for a forced token."""


def decode_loop(wrapper: ModelWrapper, prompt_ids: Sequence[int], n: int, settings: DecodingSettings,
                sampler: SeededSampler, *, forced_ids: Sequence[int] = (), trace: "Trace | None" = None,
                eos_ids: Sequence[int] | None = None, constraint=None,
                should_stop: Callable[[], bool] | None = None,
                on_step: Callable[[LoopStep], None] | None = None) -> tuple[list[LoopStep], str]:
    """The generation loop every generator uses: greedy, sampled, lab settings, regex, guided.

    The prompt runs once (or a synced ``trace`` is cloned); then each token costs one one-token
    forward pass against the KV cache. A token is chosen by ``process_logits`` under
    ``settings`` (transformers' own processors) and ``sampler`` (argmax when greedy), so every
    caller gets the same choice for the same settings and seed.

    Args:
        wrapper: the model; its lock is held for each forward pass (and while cloning ``trace``).
        prompt_ids: at least one token.
        n: how many tokens to choose after the forced ones (>= 0).
        settings: the decoding settings (``DecodingSettings(do_sample=False)`` is plain greedy).
        sampler: the seeded sampler, advanced by the draws made.
        forced_ids: tokens fed first, in order (guided generation), returned with ``processed=None``.
        trace: a Trace already synced to ``prompt_ids`` to continue from (cloned, never changed).
        eos_ids: choosing one of these ends the loop; None = the model's, () = never.
        constraint: a ``constraint.ConstraintTracker`` limiting each choice to what the regex allows;
            the loop ends when its match is finished.
        should_stop: polled before each choice; True ends with "cancelled".
        on_step: called with every step as it is made (progress).

    Returns:
        (steps, stop reason): "length" (n chosen), "eos", "constraint", "context" (the sequence
        fills the model's context) or "cancelled".
    """
    from explorer.engine.trace import Trace

    eos = set(wrapper.eos_ids if eos_ids is None else eos_ids)
    prompt = [int(t) for t in prompt_ids]
    limit = wrapper.context_length
    steps: list[LoopStep] = []
    if trace is not None and list(trace.ids) == prompt:
        with wrapper.lock:  # another worker may be extending the original
            work = trace.clone()
    else:
        work = Trace(wrapper)
        work.extend(prompt)

    def emit(step: LoopStep) -> None:
        steps.append(step)
        if on_step is not None:
            on_step(step)

    for token_id in forced_ids:
        emit(LoopStep(int(token_id), work.last_row(), None))
        work.extend([int(token_id)])

    for i in range(int(n)):
        if should_stop is not None and should_stop():
            return steps, "cancelled"
        allowed = None
        if constraint is not None:
            state = constraint.step(work.ids[len(prompt):])
            if state.finished:
                return steps, "constraint"
            allowed = state.allowed_ids()
        row = work.last_row()  # [vocab]
        processed = process_logits(row, work.ids, settings, eos_ids=wrapper.eos_ids, allowed_ids=allowed)
        token_id = sampler.draw(processed)
        emit(LoopStep(token_id, row, processed))
        if token_id in eos:
            return steps, "eos"
        if constraint is not None and constraint.step(work.ids[len(prompt):] + [token_id]).finished:
            return steps, "constraint"  # the match is complete: no forward pass for a token we will not use
        if len(work.ids) + 1 >= limit:
            return steps, "context"  # the sequence now fills the context: nothing more can be predicted
        if i + 1 < int(n):  # the last token needs no forward pass
            work.extend([token_id])
    return steps, "length"


# ---------------------------------------------------------------------------- log-prob generation
@torch.inference_mode()
def generate(
    wrapper: ModelWrapper,
    prompt_ids: list[int],
    max_new_tokens: int,
    *,
    sample: bool = False,
    seed: int = 0,
    forced_ids: list[int] | tuple[int, ...] = (),
    eos_ids: tuple[int, ...] | None = None,
    should_stop: Callable[[], bool] | None = None,
    on_token: Callable[[TokenStep], None] | None = None,
) -> Generation:
    """Generate after ``prompt_ids`` (and after ``forced_ids``, fed first), scoring every token.

    Args:
        wrapper: the model; its lock is held for each forward pass.
        prompt_ids: at least one token.
        max_new_tokens: how many tokens to choose after the forced ones (>= 0).
        sample: draw from the distribution (T = 1) instead of taking the argmax.
        seed: the sampling generator's seed (same seed, same tokens).
        forced_ids: guide tokens, fed in order and recorded with ``forced=True``.
        eos_ids: generation stops after choosing one of these; default: the model's.
        should_stop: polled before each pass; True ends with ``stop_reason="cancelled"``.
        on_token: called with every step as it is made (progress).

    Returns:
        Generation with one TokenStep per forced and generated token.
    """
    if not prompt_ids:
        raise InputError("The prompt is empty; give some text to start from.")
    if max_new_tokens < 0:
        raise InputError(f"The number of new tokens must be 0 or more, found {max_new_tokens}.")
    limit = wrapper.context_length
    if len(prompt_ids) + len(forced_ids) >= limit:
        raise InputError(f"The prompt and guide are {len(prompt_ids) + len(forced_ids)} tokens; "
                         f"the model's context is {limit}.")
    result = Generation(list(prompt_ids))

    def record(step: LoopStep) -> None:
        token = _step(step.row, step.token_id, step.processed is None)
        result.steps.append(token)
        if on_token is not None:
            on_token(token)

    # T = 1 and no processors: the plain softmax (sampled) or its argmax (greedy).
    _, result.stop_reason = decode_loop(wrapper, prompt_ids, max_new_tokens, DecodingSettings(do_sample=sample),
                                        SeededSampler(seed), forced_ids=forced_ids, eos_ids=eos_ids,
                                        should_stop=should_stop, on_step=record)
    return result


# ---------------------------------------------------------------------------- lab generation
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
    """"length" (N tokens), "eos", "constraint" (the regex match finished), "context" (context full) or "cancelled"."""

    @property
    def new_ids(self) -> list[int]:
        return [t.id for t in self.tokens]


@torch.inference_mode()
def generate_tokens(wrapper: ModelWrapper, prompt_ids: Sequence[int], settings: DecodingSettings, n: int,
                    sampler: SeededSampler, *, trace: "Trace | None" = None, stop_at_eos: bool = True,
                    constraint=None, should_stop: Callable[[], bool] | None = None,
                    on_token: Callable[[int, int], None] | None = None) -> GenerationResult:
    """Generate up to ``n`` tokens with the lab's ``settings`` (the decoding lab's `G` and `next --generate`).

    Args:
        wrapper: the model.
        prompt_ids: the prompt.
        settings: the decoding settings.
        n: how many tokens at most (1..4096).
        sampler: the seeded sampler (advanced by the draws made).
        trace: a Trace already synced to ``prompt_ids`` to continue from (cloned, not changed).
        stop_at_eos: stop after an end-of-sequence token, like generate().
        constraint: a ``constraint.ConstraintTracker`` limiting each step, or None.
        should_stop: polled between tokens (a cancelled UI worker returns True).
        on_token: called with (index, token id) after each token (progress).

    Returns:
        GenerationResult with the new tokens, their raw and processed probabilities, and why it stopped.
    """
    if not 1 <= int(n) <= 4096:
        raise InputError(f"The number of tokens to generate must be between 1 and 4096, found {n}.")
    prompt = [int(t) for t in prompt_ids]
    if not prompt:
        raise InputError("A prompt must hold at least one token.")
    out: list[GeneratedToken] = []

    def record(step: LoopStep) -> None:
        p = step.processed
        out.append(GeneratedToken(step.token_id, float(p.raw_probs[step.token_id]), float(p.probs[step.token_id]),
                                  p.survivors))
        if on_token is not None:
            on_token(len(out) - 1, step.token_id)

    _, stopped = decode_loop(wrapper, prompt, int(n), settings, sampler, trace=trace,
                             eos_ids=None if stop_at_eos else (), constraint=constraint,
                             should_stop=should_stop, on_step=record)
    return GenerationResult(tuple(prompt), tuple(out), stopped)


def logprob_record(wrapper: ModelWrapper, prompt: str, steps: list[TokenStep], *, top: int = 5,
                   guide: str | None = None, extra: dict | None = None) -> dict:
    """The notebook's JSONL record for ``steps`` (``prob`` in percent, natural-log ``logprob``).

    Args:
        wrapper: for decoding token ids.
        prompt: the ``prompt`` field (the user's text).
        steps: forced and generated tokens, in order.
        top: how many alternatives per token (``other_tokens``), at most TOP_STORED.
        guide: the forced prefix, if any; the record then says ``"guided": true``.
        extra: more fields to add (model name, seed...).
    """
    if not 1 <= top <= TOP_STORED:
        raise InputError(f"--top must be between 1 and {TOP_STORED}, found {top}.")

    def item(token_id: int, logprob: float) -> dict:
        return {"token": wrapper.decode([token_id]), "logprob": logprob, "prob": 100.0 * math.exp(logprob)}

    data = []
    for s in steps:
        entry = item(s.token_id, s.logprob)
        entry["other_tokens"] = [item(i, lp) for i, lp in zip(s.top_ids[:top], s.top_logprobs[:top])]
        if s.forced:
            entry["forced"] = True
        data.append(entry)
    response = wrapper.tokenizer.decode([s.token_id for s in steps], skip_special_tokens=True)
    record = {"schema_version": LOGPROBS_SCHEMA_VERSION, "prompt": prompt, "response": response, "data": data}
    if guide is not None:
        record["guided"] = True
        record["guide"] = guide
    if extra:
        record.update(extra)
    return record


def trace_steps(trace, start: int) -> list[TokenStep]:
    """Steps for tokens ``start..end`` of a Trace, from what it already stores (no forward pass).

    The Trace keeps the top-20 ids and logits and the logsumexp per position, so the
    log-probabilities are exact; ``start`` must be at least 1 (nothing predicts token 0).
    """
    if start < 1:
        raise InputError("The first token has no distribution to export; start at token 1 or later.")
    steps = []
    for i in range(start, len(trace.ids)):
        lse = trace.logsumexp[i - 1]
        steps.append(TokenStep(
            int(trace.ids[i]), float(trace.actual_logit[i] - lse),
            tuple(int(t) for t in trace.top_ids[i - 1].tolist()),
            tuple(float(v) - lse for v in trace.top_logits[i - 1].tolist()),
        ))
    return steps
