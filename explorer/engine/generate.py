"""Generation with per-token log-probabilities, guided generation, and the seed's JSONL record.

``generate`` runs the prompt once and then one one-token forward pass per new token against
its own KV cache (never the whole sequence again). Greedy picks the argmax; sampling draws
from the softmax at T = 1 with a seeded ``torch.Generator``, so a seed replays a run. Forced
tokens (guided generation: seeds/001, "prompt, blank line, guide") are fed first and scored
like any other token, marked ``forced``.

``logprob_record`` turns steps into the notebook's line:
``{"prompt", "response", "data": [{"token", "logprob", "prob" (percent), "other_tokens":
[{"token", "logprob", "prob"}]}]}``. ``trace_steps`` reads the same steps out of a Trace (the
app's export of the current prompt) without a forward pass. Never imports Textual or Rich.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import torch

from explorer.engine.model import ModelWrapper
from explorer.errors import InputError

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
    eos = set(wrapper.eos_ids if eos_ids is None else eos_ids)
    stop = should_stop or (lambda: False)
    generator = torch.Generator().manual_seed(int(seed)) if sample else None
    result = Generation(list(prompt_ids))
    limit = wrapper.context_length
    if len(prompt_ids) + len(forced_ids) >= limit:
        raise InputError(f"The prompt and guide are {len(prompt_ids) + len(forced_ids)} tokens; "
                         f"the model's context is {limit}.")

    cache = wrapper.new_cache()
    row = None
    for start in range(0, len(prompt_ids), wrapper.chunk_size):
        row = wrapper.forward(list(prompt_ids[start:start + wrapper.chunk_size]), cache)[-1]  # [vocab]
    length = len(prompt_ids)

    def emit(step: TokenStep) -> None:
        result.steps.append(step)
        if on_token is not None:
            on_token(step)

    for token_id in forced_ids:
        emit(_step(row, int(token_id), True))
        row = wrapper.forward([int(token_id)], cache)[-1]
        length += 1

    for i in range(max_new_tokens):
        if stop():
            result.stop_reason = "cancelled"
            return result
        if generator is not None:
            probs = torch.softmax(row.float(), dim=-1)  # [vocab]
            token_id = int(torch.multinomial(probs, 1, generator=generator))
        else:
            token_id = int(torch.argmax(row))
        emit(_step(row, token_id, False))
        length += 1
        if token_id in eos:
            result.stop_reason = "eos"
            return result
        if length >= limit:
            result.stop_reason = "context"
            return result
        if i + 1 < max_new_tokens:
            row = wrapper.forward([token_id], cache)[-1]
    return result


def guided_ids(wrapper: ModelWrapper, prompt: str, guide: str, *, chat: bool = False) -> tuple[list[int], list[int]]:
    """(context ids, forced guide ids), each tokenized separately; see ``explorer.engine.guided``."""
    from explorer.engine.guided import guided_input

    got = guided_input(wrapper, prompt, guide, chat=chat)
    return got.context, got.forced


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
    record = {"prompt": prompt, "response": response, "data": data}
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
