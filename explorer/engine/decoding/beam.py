"""Beam search that records every step, agreeing with transformers 5's ``generate(num_beams=...)``.

The algorithm is the one ``GenerationMixin._beam_search`` runs (greedy beams, no sampling),
written out step by step so the beam view can show it:

* each step scores every running beam's next token with log-softmax and adds the beam's
  cumulative log-probability; the best ``K = max(2, 1 + n_eos) · num_beams`` continuations
  over all beams are kept (only beam 0 is live at the first step);
* a continuation that ends in EOS, or reaches ``max_new_tokens``, finishes — but only if it
  is among the best ``num_beams`` of the K; its score is ``Σ log p / generated_len^length_penalty``
  (SCIENCE.md 5.9) and it enters the pool of the best ``num_beams`` finished hypotheses;
* the best ``num_beams`` unfinished continuations run on; the rest are dropped;
* the search stops when no running beam can beat the pool (``early_stopping`` as in
  transformers: False = its heuristic on the current length, True = as soon as the pool holds
  ``num_beams`` hypotheses, "never" = the canonical bound), or when every continuation finishes.

We run the prompt once and repeat its KV cache across beams (generate runs it once per beam;
the logits agree to float rounding), and reorder the cache rows as beams are picked. The
winner is the best finished hypothesis: ``generate(...).sequences[0]`` and
``sequences_scores[0]``. Never imports Textual or Rich.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Sequence

import torch

from explorer.errors import InputError

if TYPE_CHECKING:
    from explorer.engine.model import ModelWrapper
    from explorer.engine.trace import Trace

_NEG = -1.0e9  # the "impossible" score transformers uses (float32, so -1e9 + x rounds to -1e9 for small x)


@dataclass(frozen=True)
class BeamState:
    """One hypothesis: the generated tokens after the prompt and their log-probabilities."""

    tokens: tuple[int, ...]
    token_logprobs: tuple[float, ...]
    """log p of each generated token given everything before it (T = 1)."""
    cum_logprob: float
    score: float
    """cum_logprob / len(tokens) ** length_penalty."""
    parent: int | None = None
    """Index of the running beam it extends (in the previous step's ``running``)."""
    status: str = "running"
    """"running", "finished" (EOS or length), "dropped" (a candidate not kept)."""
    ended_with_eos: bool = False


@dataclass(frozen=True)
class BeamStep:
    """What happened at one step."""

    index: int
    """1 = the first generated token."""
    candidates: tuple[BeamState, ...]
    """The K best continuations of this step, best first, each with the status it got."""
    running: tuple[BeamState, ...]
    """The beams that run on after this step (num_beams of them, best first)."""
    finished_now: tuple[BeamState, ...]
    """Hypotheses that entered the finished pool at this step."""
    dropped: tuple[BeamState, ...]
    """Candidates that neither run on nor entered the pool (incl. finished ones not among the best)."""


@dataclass(frozen=True)
class BeamResult:
    prompt_ids: tuple[int, ...]
    num_beams: int
    length_penalty: float
    max_new_tokens: int
    early_stopping: bool | str
    steps: tuple[BeamStep, ...]
    finished: tuple[BeamState, ...]
    """The pool of best finished hypotheses, best first (the winner is finished[0])."""
    stopped: str
    """Why the search ended: "all beams done", "no better beam possible", "max_new_tokens"."""

    @property
    def winner(self) -> BeamState:
        return self.finished[0]

    @property
    def winner_ids(self) -> list[int]:
        """Prompt + winning continuation (what generate() returns as sequences[0])."""
        return list(self.prompt_ids) + list(self.winner.tokens)


def _check(num_beams: int, length_penalty: float, max_new_tokens: int, early_stopping) -> None:
    import math

    if isinstance(num_beams, bool) or not isinstance(num_beams, int) or not 1 <= num_beams <= 64:
        raise InputError(f"num_beams must be a whole number from 1 to 64, found {num_beams}.")
    if not (isinstance(length_penalty, (int, float)) and math.isfinite(length_penalty) and -10 <= length_penalty <= 10):
        raise InputError(f"length_penalty must be a number in [-10, 10], found {length_penalty}.")
    if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int) or not 1 <= max_new_tokens <= 1024:
        raise InputError(f"max_new_tokens must be a whole number from 1 to 1024, found {max_new_tokens}.")
    if early_stopping not in (True, False, "never"):
        raise InputError(f'early_stopping must be true, false or "never", found {early_stopping!r}.')


@torch.inference_mode()
def beam_search(wrapper: "ModelWrapper", prompt_ids: Sequence[int], *, num_beams: int = 4,
                length_penalty: float = 1.0, max_new_tokens: int = 20, early_stopping: bool | str = False,
                trace: "Trace | None" = None, should_stop: Callable[[], bool] | None = None,
                on_step: Callable[[int, int], None] | None = None) -> BeamResult:
    """Run beam search from ``prompt_ids`` and record every step.

    Args:
        wrapper: the model.
        prompt_ids: the prompt token ids.
        num_beams: beams kept (1..64).
        length_penalty: exponent on the generated length in the score; > 0 favours longer hypotheses.
        max_new_tokens: most tokens generated (1..1024).
        early_stopping: False (transformers' default heuristic), True, or "never".
        trace: a Trace synced to ``prompt_ids`` whose KV cache and last row are reused (no
            prompt forward pass); None runs the prompt.
        should_stop: polled between steps; True ends the search early (it then reports the pool so far).
        on_step: progress callback (step, max_new_tokens).

    Returns:
        BeamResult. Agrees with ``model.generate(num_beams=num_beams, do_sample=False,
        length_penalty=..., max_new_tokens=..., early_stopping=...)`` on the winner and its score.
    """
    _check(num_beams, length_penalty, max_new_tokens, early_stopping)
    prompt = [int(t) for t in prompt_ids]
    if not prompt:
        raise InputError("A prompt must hold at least one token.")
    if len(prompt) + max_new_tokens > wrapper.context_length:
        raise InputError(f"The prompt ({len(prompt)} tokens) plus {max_new_tokens} new tokens is past the "
                         f"model's context of {wrapper.context_length}.")
    eos = set(wrapper.eos_ids)
    beams_to_keep = max(2, 1 + len(eos)) * num_beams
    lp = float(length_penalty)
    max_len = len(prompt) + max_new_tokens

    with wrapper.lock:
        model = wrapper.model
        if trace is not None and list(trace.ids) == prompt:
            cache = copy.deepcopy(trace.cache)
            first = trace.last_row().float().reshape(1, -1)  # [1, vocab]
        else:
            cache = wrapper.new_cache()
            first = wrapper.forward(prompt, cache)[-1:].float()  # [1, vocab]
        cache.batch_repeat_interleave(num_beams)
        logits = first.expand(num_beams, -1)  # [beams, vocab]; rows 1.. are masked by their -1e9 scores

        # Running beams: generated tokens, per-token log p, cumulative log p (float32 like generate).
        run_tokens: list[list[int]] = [[] for _ in range(num_beams)]
        run_logps: list[list[float]] = [[] for _ in range(num_beams)]
        run_scores = torch.full((num_beams,), _NEG, dtype=torch.float32)
        run_scores[0] = 0.0
        # Finished pool: num_beams slots of (score, state or None), empty slots hold -1e9.
        pool_scores = torch.full((num_beams,), _NEG, dtype=torch.float32)
        pool_states: list[BeamState | None] = [None] * num_beams
        improvable = True
        steps: list[BeamStep] = []
        stopped = "max_new_tokens"
        cur_len = len(prompt)

        while True:
            logp = torch.log_softmax(logits.float(), dim=-1)  # [beams, vocab]
            vocab = logp.shape[-1]
            acc = (logp + run_scores[:, None]).reshape(-1)  # [beams * vocab]
            top_vals, top_idx = torch.topk(acc, k=min(beams_to_keep, acc.numel()))  # [K]
            src = (top_idx // vocab).tolist()
            tok = (top_idx % vocab).tolist()
            gen_len = cur_len + 1 - len(prompt)
            hits = torch.tensor([(t in eos) or (cur_len + 1 >= max_len) for t in tok])  # [K]

            cands: list[BeamState] = []
            for j, (b, t) in enumerate(zip(src, tok)):
                cum = float(top_vals[j])
                cands.append(BeamState(tuple(run_tokens[b] + [t]), tuple(run_logps[b] + [float(logp[b, t])]), cum,
                                       cum / (gen_len ** lp), parent=b, ended_with_eos=t in eos))

            # Next running beams: the best unfinished continuations.
            next_idx = torch.topk(top_vals + hits.float() * _NEG, k=num_beams).indices.tolist()
            # Finished pool update: only the best num_beams of the K may finish.
            fin_scores = top_vals / (gen_len ** lp)
            pool_full = all(s is not None for s in pool_states)
            penalty = torch.zeros_like(fin_scores)
            if pool_full and early_stopping is True:
                penalty += _NEG
            if not improvable:
                penalty += _NEG
            may_finish = hits.clone()
            may_finish[num_beams:] = False
            penalty += (~may_finish).float() * _NEG
            merged = torch.cat([pool_scores, fin_scores + penalty])  # [beams + K]
            keep = torch.topk(merged, k=num_beams).indices.tolist()
            new_pool_states: list[BeamState | None] = []
            finished_now: list[int] = []
            for m in keep:
                if m < num_beams:
                    new_pool_states.append(pool_states[m])
                    continue
                j = m - num_beams
                if bool(may_finish[j]) and float(merged[m]) > _NEG / 2:
                    c = cands[j]  # its score is the float32 value generate() reports as sequences_scores
                    new_pool_states.append(BeamState(c.tokens, c.token_logprobs, c.cum_logprob, float(merged[m]),
                                                     c.parent, "finished", c.ended_with_eos))
                    finished_now.append(j)
                else:  # a penalised entry only fills an empty slot; it is not a hypothesis
                    new_pool_states.append(None)
            pool_scores = merged[keep]
            pool_states = new_pool_states

            running_set = set(next_idx) if not bool(hits.all()) else set()
            labelled = []
            for j, c in enumerate(cands):
                status = "finished" if j in finished_now else "running" if j in running_set else "dropped"
                labelled.append(BeamState(c.tokens, c.token_logprobs, c.cum_logprob, c.score, c.parent, status,
                                          c.ended_with_eos))
            running = tuple(labelled[j] for j in next_idx if j in running_set)
            steps.append(BeamStep(index=len(steps) + 1, candidates=tuple(labelled), running=running,
                                  finished_now=tuple(labelled[j] for j in finished_now),
                                  dropped=tuple(c for c in labelled if c.status == "dropped")))
            if on_step is not None:
                on_step(len(steps), max_new_tokens)

            # Carry the running beams forward.
            run_scores = (top_vals + hits.float() * _NEG)[next_idx]
            run_tokens = [list(cands[j].tokens) for j in next_idx]
            run_logps = [list(cands[j].token_logprobs) for j in next_idx]
            cur_len += 1

            # Stopping, as transformers decides it.
            if early_stopping == "never" and lp > 0.0:
                best_len = max_len - len(prompt)
            else:
                best_len = cur_len - len(prompt)
            best_running = float(run_scores[0]) / (best_len ** lp)
            all_finished = all(s is not None for s in pool_states)
            worst = float(pool_scores.min()) if all_finished else _NEG
            improvable = improvable and best_running > worst
            if bool(hits.all()):
                stopped = "max_new_tokens" if cur_len >= max_len else "all beams done"
                break
            if not improvable:
                stopped = "no better beam possible"
                break
            if all_finished and early_stopping is True:
                stopped = "all beams done"
                break
            if should_stop is not None and should_stop():
                stopped = "cancelled"
                break

            # One forward pass for all running beams, on their reordered cache rows.
            src_beams = torch.tensor([src[j] for j in next_idx], dtype=torch.long)
            cache.reorder_cache(src_beams)
            last = torch.tensor([[cands[j].tokens[-1]] for j in next_idx], dtype=torch.long,
                                device=wrapper.device)  # [beams, 1]
            out = model(input_ids=last, past_key_values=cache, use_cache=True)
            logits = out.logits[:, -1].float().cpu()  # [beams, vocab]

    finished = [s for s in pool_states if s is not None]
    if not finished:  # cancelled before anything finished: report the running beams as they stand
        finished = list(steps[-1].running) if steps else []
    if not finished:
        raise InputError("Beam search was stopped before its first step.")
    # The pool is already best first (topk order), the order generate() returns its sequences in.
    return BeamResult(prompt_ids=tuple(prompt), num_beams=num_beams, length_penalty=lp,
                      max_new_tokens=max_new_tokens, early_stopping=early_stopping, steps=tuple(steps),
                      finished=tuple(finished), stopped=stopped)
