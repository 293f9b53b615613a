"""Attention from the cursor token to every earlier token: raw weights or attention rollout.

Raw: the eager attention weights of one block, one query head or the mean over all query
heads (GQA: key/value heads are shared, the mean is over query heads). Rollout (Abnar &
Zuidema 2020, SCIENCE.md 5.5): per block average the heads, add the residual
``Â = 0.5·Ā + 0.5·I``, re-normalise the rows, multiply ``R = Â_{L-1} ··· Â_0``; the value of
token j is ``R[cursor, j]``. Both are attention, not importance, and the legend says so.
Tokens after the cursor have no value (a causal model cannot attend to them).
Never imports Textual or Rich.
"""

from __future__ import annotations

import torch

from explorer.analyses.base import AnalysisContext, ModeResult, ParamSpec
from explorer.analyses.support import (LN2, attentions, block_layers, choice_param, heads_or_mean, int_param, ranked,
                                       sink_excluded_hi, clamped_colors)

METHODS = {"rollout": "rollout", "raw": "raw"}


def attention_rollout(mean: torch.Tensor) -> torch.Tensor:
    """Attention rollout of head-averaged weights.

    Args:
        mean: ``[L, n, n]`` head-averaged attention per block (rows = queries).

    Returns:
        ``[n, n]`` rollout ``R = Â_{L-1} ··· Â_0`` (float64), rows summing to 1.
    """
    n = mean.shape[-1]
    eye = torch.eye(n, dtype=torch.float64)
    rollout = eye.clone()  # [n, n]
    for layer in mean.double():  # block 0 first
        a_hat = 0.5 * layer + 0.5 * eye  # [n, n]
        a_hat = a_hat / a_hat.sum(-1, keepdim=True)
        rollout = a_hat @ rollout
    return rollout


def rollout_row(mean: torch.Tensor, t: int) -> torch.Tensor:
    """Row ``t`` of the attention rollout, ``e_tᵀ Â_{L-1} ··· Â_0``, in O(L·n²) instead of O(L·n³).

    Args:
        mean: ``[L, n, n]`` head-averaged attention per block (rows = queries).
        t: the query position.

    Returns:
        ``[n]`` float64, equal to ``attention_rollout(mean)[t]``.
    """
    n = mean.shape[-1]
    row = torch.zeros(n, dtype=torch.float64)  # [n]
    row[t] = 1.0
    for layer in reversed(range(mean.shape[0])):  # the last block multiplies first from the left
        a = mean[layer].double()  # [n, n]
        # r·Â with Â = (0.5·A + 0.5·I) / s (s = its row sums) without building Â: w = r / s,
        # r·Â = 0.5·w·A + 0.5·w — one n × n temporary per block instead of three.
        w = row / (0.5 * a.sum(-1) + 0.5)  # [n]
        row = 0.5 * (w @ a) + 0.5 * w
    return row


def query_row_error(rows: torch.Tensor, t: int) -> tuple[float, float]:
    """(max |row sum - 1|, max mass on keys after ``t``) of the attention rows ``[..., n]`` of query ``t``."""
    w = rows.double()
    future = float(w[..., t + 1 :].abs().max()) if w.shape[-1] > t + 1 else 0.0
    return float((w.sum(-1) - 1.0).abs().max()), future


class AttentionMode:
    name = "attention"
    label = "Attention"
    lazy = True
    requires = frozenset({"attention"})
    params = (
        ParamSpec("method", "rollout (all blocks, residual 0.5·I) or raw (one block)", ("rollout", "raw"), "rollout",
                  keys=("m",)),
        # A layer or head belongs to raw attention, so choosing one switches rollout to raw.
        ParamSpec("layer", "block for raw attention (0-based, negative from the end)", (), -1,
                  keys=("<", ">"), options=block_layers, sets=(("method", "raw"),)),
        ParamSpec("head", "query head for raw attention; none = mean over heads", (), None,
                  keys=("{", "}"), options=heads_or_mean, sets=(("method", "raw"),), wrap=True),
    )

    def compute(self, ctx: AnalysisContext) -> ModeResult:
        t = ctx.cursor
        n = len(ctx.view.ids)
        method = choice_param(ctx, "method", "rollout", METHODS)
        head_view = method == "raw" and ctx.params.get("head") is not None
        cap = attentions(ctx, t, heads=head_view)
        n_blocks, n_heads = cap.mean.shape[0], cap.n_heads
        # Checked on the rows this view reads (the cursor's row of every block), not the whole matrix.
        mean_err, mean_future = query_row_error(cap.mean[:, t], t)
        checks = {"attention_row_sum_error": mean_err, "attention_future_mass": mean_future}
        # Per-block readouts of the cursor's head-averaged row, for the plot.
        rows_mean = cap.mean[:, t, : t + 1].double()  # [L, t+1]
        entropy = -(rows_mean * rows_mean.clamp_min(1e-30).log()).sum(-1) / LN2  # [L] bits
        layers = {"row_entropy_bits": entropy.tolist(), "attention_to_first_token": rows_mean[:, 0].tolist(),
                  "attention_to_self": rows_mean[:, t].tolist()}
        if method == "rollout":
            row = rollout_row(cap.mean, t)  # [n]
            r_err, r_future = query_row_error(row, t)
            checks.update(rollout_row_sum_error=r_err, rollout_future_mass=r_future)
            what = (f"Attention rollout (Abnar & Zuidema 2020): heads averaged, residual 0.5·I, rows "
                    f"re-normalised, all {n_blocks} blocks multiplied")
            setting = {"method": "rollout"}
        else:
            layer = int_param(ctx, "layer", -1, n_blocks, "blocks")
            head_param = ctx.params.get("head")
            if head_param is None:
                row = cap.mean[layer, t]
                what = f"Raw attention weights of block {layer}, mean over {n_heads} query heads"
                setting = {"method": "raw", "layer": layer, "head": None}
            else:
                head = int_param(ctx, "head", 0, n_heads, "query heads")
                row = cap.rows[layer, head]
                h_err = float((cap.rows[layer, head, : t + 1].double().sum() - 1).abs())
                checks["head_row_sum_error"] = h_err
                kv = head // max(1, n_heads // max(1, cap.n_kv_heads))
                what = f"Raw attention weights of block {layer}, query head {head} (key/value head {kv})"
                setting = {"method": "raw", "layer": layer, "head": head}
        values = tuple(float(row[j]) if j <= t else None for j in range(n))
        present = [v for v in values if v is not None]
        hi = max(present) if present and max(present) > 0 else 1.0
        sink_hi, sink_note = sink_excluded_hi(values, t)
        hi = sink_hi or hi
        rank_rows, lines = ranked(ctx, {j: values[j] for j in range(t + 1)})
        legend = (f"{what}, from token {t + 1} to each earlier token: white 0 → purple {hi:.3f} (largest here). "
                  f"This is attention, not importance. Tokens after the cursor: none.{sink_note}")
        return ModeResult(
            values=values, color_values=clamped_colors(values, hi), lo=0.0, hi=hi, colors=("#f7fcf5", "#6a3d9a"), legend=legend, fmt="{:.4f}",
            layers=layers, checks=checks,
            details=(f"{what}.", f"query: token {t + 1}; GQA: {n_heads} query heads share {cap.n_kv_heads} key/value heads.",
                     "Most attended:", *lines),
            extra={"setting": setting, "ranked": rank_rows, "n_blocks": n_blocks, "n_heads": n_heads,
                   "n_kv_heads": cap.n_kv_heads},
        )
