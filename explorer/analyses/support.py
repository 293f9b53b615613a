"""Helpers the model-reading modes share: cached captures, parameter parsing, small maths.

Layer numbering used by every mode (and stated in their legends):
    residual layers  0 .. L   0 = embeddings, l = output of block l-1 (L = after the last block, before the final norm)
    blocks           0 .. L-1 attention weights and sub-layer outputs belong to a block
Negative numbers count from the end, as in Python. Never imports Textual or Rich.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from explorer.analyses.base import AnalysisContext
from explorer.analyses.lens import actual_token_probs
from explorer.engine.capture import (AttentionCapture, ResidualCapture, capture_attentions,
                                     capture_residuals)
from explorer.engine.recorder import recorder_for
from explorer.errors import InputError

LN2 = math.log(2.0)


def residuals(ctx: AnalysisContext, *, sublayers: bool = False,
              logit_positions: tuple[int, ...] | None = None) -> ResidualCapture:
    """The residual capture of the prompt, shared through ``ctx.cache`` when there is one."""
    ids = tuple(ctx.view.ids)
    positions = tuple(logit_positions) if logit_positions is not None else (len(ids) - 1,)
    recorder = recorder_for(ctx.wrapper, ids)
    if recorder is not None:  # what the app's trace recorded while stepping (no forward pass)
        recorded = recorder.residual_capture(sublayers=sublayers, logit_positions=positions)
        if recorded is not None:
            return recorded
    key = ("resid", ctx.wrapper.name, ids, sublayers, positions)

    def build() -> ResidualCapture:
        return capture_residuals(ctx.wrapper, ids, sublayers=sublayers, logit_positions=positions,
                                 should_stop=ctx.should_stop)

    return ctx.cache.capture(key, build) if ctx.cache is not None else build()


def attentions(ctx: AnalysisContext, query: int, *, heads: bool = False) -> AttentionCapture:
    """Attention weights of the prompt, from the trace's records when there are some.

    ``heads=True`` asks for the per-head rows of ``query`` too (recomputed from the records
    and the KV cache). Without records: the eager capture pass, shared through ``ctx.cache``.
    """
    ids = tuple(ctx.view.ids)
    recorder = recorder_for(ctx.wrapper, ids)
    recorded = recorder.attention_capture(query, heads=heads) if recorder is not None else None
    if recorded is not None:
        return recorded
    key = ("attn", ctx.wrapper.name, ids, int(query))

    def build() -> AttentionCapture:
        return capture_attentions(ctx.wrapper, ids, query=query, should_stop=ctx.should_stop)

    return ctx.cache.capture(key, build) if ctx.cache is not None else build()


def token_lens_probs(ctx: AnalysisContext, cap: ResidualCapture, layers: list[int]) -> torch.Tensor:
    """Lens probability of each actual token at ``layers``: ``[len(layers), n]`` float64, NaN at token 0.

    Read from the trace's lens grid when the prompt is recorded (each entry computed once per
    session), else computed from ``cap`` (``lens.actual_token_probs``).
    """
    recorder = recorder_for(ctx.wrapper, cap.ids)
    found = recorder.lens_probs(layers) if recorder is not None else None
    return found if found is not None else actual_token_probs(ctx.wrapper, cap, layers)


def block_layers(wrapper, _config=None, _result=None) -> list[int]:
    """Option values of a block index: 0 .. L-1."""
    return list(range(wrapper.n_layers))


def residual_layers(wrapper, _config=None, _result=None) -> list[int]:
    """Option values of a residual layer: 0 (embeddings) .. L."""
    return list(range(wrapper.n_layers + 1))


def heads_or_mean(wrapper, _config=None, _result=None) -> list[int | None]:
    """Option values of an attention head: None (mean over heads), then 0 .. H-1."""
    return [None] + list(range(int(getattr(wrapper.config, "num_attention_heads", 1))))


def int_param(ctx: AnalysisContext, key: str, default: int, count: int, what: str) -> int:
    """An index option in ``0 .. count-1`` (negative counts from the end). Raises InputError."""
    value: Any = ctx.params.get(key)
    if value is None:
        value = default
    try:
        value = int(value)
    except (TypeError, ValueError):
        raise InputError(f"{key} must be a whole number, found {value!r}.") from None
    if not -count <= value < count:
        raise InputError(f"{key} {value} is out of range: this model has {what} 0..{count - 1}.")
    return value % count


def choice_param(ctx: AnalysisContext, key: str, default: str, choices: dict[str, str]) -> str:
    """A named option; ``choices`` maps every accepted spelling to its canonical name."""
    value = ctx.params.get(key)
    if value is None:
        return default
    canon = choices.get(str(value).lower())
    if canon is None:
        names = ", ".join(sorted(set(choices.values())))
        raise InputError(f'{key} "{value}" is not known; choose one of: {names}.')
    return canon


def cosine(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Cosine similarity along the last axis, in float64 so that cos(x, x) is 1 to ~1e-12."""
    a64, b64 = a.double(), b.double()
    denom = a64.norm(dim=-1) * b64.norm(dim=-1)
    return (a64 * b64).sum(-1) / denom.clamp_min(1e-30)


def token_label(ctx: AnalysisContext, index: int) -> str:
    """A token's visible text for details lines."""
    return repr(ctx.wrapper.token_text(int(ctx.view.ids[index])).text)


def finite_list(t: torch.Tensor) -> list[float]:
    return [float(x) for x in t.tolist()]


def ranked(ctx: AnalysisContext, scores: dict[int, float], top: int = 10) -> tuple[list[dict], list[str]]:
    """Tokens sorted by score, as JSON rows and as details lines."""
    order = sorted(scores, key=lambda i: -scores[i])
    rows = [{"index": i, "id": int(ctx.view.ids[i]), "text": ctx.wrapper.token_text(int(ctx.view.ids[i])).text,
             "score": scores[i]} for i in order]
    lines = [f"{r + 1:>2}. #{i + 1:<4} {token_label(ctx, i):<16} {scores[i]:.4g}" for r, i in enumerate(order[:top])]
    return rows, lines


STATES = {"pre_norm": "pre_norm", "pre": "pre_norm", "post_norm": "post_norm", "post": "post_norm"}
STATE_HELP = ("pre_norm: the residual before the final norm (default); post_norm: after it, as transformers' "
              "hidden_states[-1] / last_hidden_state")


@torch.inference_mode()
def final_normed(ctx: AnalysisContext, resid: torch.Tensor) -> torch.Tensor:
    """The model's final norm applied to residual vectors ``[..., d]`` (statistics per vector), float32 CPU."""
    from explorer.engine.capture import model_parts

    param = next(ctx.wrapper.model.parameters())
    with ctx.wrapper.lock:
        return model_parts(ctx.wrapper).final_norm(resid.to(device=param.device, dtype=param.dtype)).float().cpu()


def sink_excluded_hi(values, t: int) -> tuple[float, str]:
    """The top of a colour scale that leaves out token 1 (position 0), with a legend note.

    The first token is an attention sink (SmolLM2 adds no BOS, so its first real token plays
    that part; with a BOS it is the BOS): it takes most of the attention, so a scale that
    includes it paints every other token white. Position 0 is still coloured (clamped to the
    top colour) and its number stays exact; only the scale ignores it. Needs t ≥ 1.
    """
    rest = [v for j, v in enumerate(values) if j >= 1 and v is not None]
    if t < 1 or not rest or max(rest) <= 0:
        return 0.0, ""
    sink = values[0]
    note = (f" Colour scale without token 1, the attention sink ({sink:.3g}; drawn at the top colour)."
            if sink is not None else "")
    return max(rest), note


def clamped_colors(values, hi: float) -> tuple[float | None, ...] | None:
    """What is coloured when the scale leaves the sink out: every value clamped to ``hi`` (the numbers stay exact)."""
    if not any(v is not None and v > hi for v in values):
        return None
    return tuple(None if v is None else min(v, hi) for v in values)
