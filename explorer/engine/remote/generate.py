"""Generation through a server: one request per token, the same ``Generation`` as the local loop.

Greedy takes the top-1 of the server's raw distribution; ``sample`` lets the server draw
from the plain softmax (T = 1, no truncation) with the seed, so a seed replays a run on
the same server. Forced (guide) tokens are scored exactly (``forced`` requests). Each request
sends the whole sequence as ids; the server's prompt cache makes it one new token of work.
Never imports Textual or Rich.
"""

from __future__ import annotations

from typing import Callable

from explorer.engine.generate import TOP_STORED, Generation, TokenStep
from explorer.engine.remote.engine import RemoteEngine
from explorer.errors import InputError


def generate_remote(
    engine: RemoteEngine,
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
    """Same arguments and result as ``explorer.engine.generate.generate``; the server runs the model."""
    if not prompt_ids:
        raise InputError("The prompt is empty; give some text to start from.")
    if max_new_tokens < 0:
        raise InputError(f"The number of new tokens must be 0 or more, found {max_new_tokens}.")
    eos = set(engine.eos_ids if eos_ids is None else eos_ids)
    stop = should_stop or (lambda: False)
    k = min(TOP_STORED, engine.top_k)
    ids = [int(t) for t in prompt_ids]
    result = Generation(list(ids))
    if len(ids) + len(forced_ids) >= engine.context_length:
        raise InputError(f"The prompt and guide are {len(ids) + len(forced_ids)} tokens; "
                         f"the served model's context is {engine.context_length}.")

    def emit(step: TokenStep) -> None:
        result.steps.append(step)
        if on_token is not None:
            on_token(step)

    with engine.lock:
        for token_id in forced_ids:
            dist = engine.dialect.distribution(ids, k, forced=int(token_id))
            emit(TokenStep(int(token_id), dist.chosen_logprob, dist.ids, dist.logprobs, True))
            ids.append(int(token_id))
        for i in range(max_new_tokens):
            if stop():
                result.stop_reason = "cancelled"
                return result
            if sample:
                # A distinct seed per position: the same seed replays the same run.
                dist = engine.dialect.distribution(ids, k, sample_seed=(int(seed) * 1_000_003 + i) % 2**31)
                token_id, logp = dist.chosen_id, dist.chosen_logprob
            else:
                dist = engine.dialect.distribution(ids, k)
                token_id, logp = dist.ids[0], dist.logprobs[0]
            emit(TokenStep(int(token_id), float(logp), dist.ids, dist.logprobs, False))
            ids.append(int(token_id))
            if token_id in eos:
                result.stop_reason = "eos"
                return result
            if len(ids) >= engine.context_length:
                result.stop_reason = "context"
                return result
    return result
