"""Feature activations of a whole prompt at one layer: what the features mode and `sae features` show.

One forward pass (stopped after the SAE's layer) captures the SAE input and target; the SAE
encodes every token; the result keeps, per token, the active features sorted by activation
(at most ``MAX_STORED`` of them; L0 is always exact), ``‖y − ŷ‖²`` and the prompt's FVU
denominator, so the cursor can move and a feature can be selected without model work.

FVU of token t = ``‖y_t − ŷ_t‖² / mean_s ‖y_s − ȳ‖²``, the mean and the variance taken over
the prompt's ordinary tokens: not the first, and not "massive activation" tokens with a norm
over 10x the median (attention sinks, whose norm dwarfs the rest; see ``base.ordinary_rows``).
The prompt FVU is ``Σ_t ‖y_t − ŷ_t‖² / Σ_t ‖y_t − ȳ‖²`` over the same ordinary tokens. A
sink token still gets its own FVU against that denominator (usually far above 1): the truth. Never imports Textual or Rich.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from explorer.engine.cancel import StopCheck
from explorer.engine.sae.base import Sae, l0, ordinary_rows, squared_error, variance_denominator
from explorer.engine.sae.formats.clt import CrossLayerTranscoder
from explorer.engine.sae.hooks import capture

MAX_STORED = 1024  # active features kept per token (L0 is counted exactly regardless)


@dataclass
class SparseRows:
    """Per-token sparse feature activations: token t's features are ``indices[offsets[t]:offsets[t+1]]``."""

    offsets: np.ndarray  # [n + 1] int64
    indices: np.ndarray  # [nnz] int64, strongest first within a token
    values: np.ndarray  # [nnz] float32
    truncated: bool = False

    @classmethod
    def from_dense(cls, f: torch.Tensor, cap: int = MAX_STORED) -> "SparseRows":
        f = f.detach().float().cpu()  # [n, d_sae]
        offsets, idx_parts, val_parts, truncated = [0], [], [], False
        for row in f:
            nz = torch.nonzero(row).flatten()
            vals = row[nz]
            order = torch.argsort(vals.abs(), descending=True)
            if len(order) > cap:
                order, truncated = order[:cap], True
            idx_parts.append(nz[order].numpy())
            val_parts.append(vals[order].numpy())
            offsets.append(offsets[-1] + len(order))
        cat = (lambda parts, dt: np.concatenate(parts).astype(dt) if parts else np.zeros(0, dt))
        return cls(np.asarray(offsets, np.int64), cat(idx_parts, np.int64), cat(val_parts, np.float32), truncated)

    @property
    def n_tokens(self) -> int:
        return len(self.offsets) - 1

    def row(self, t: int) -> tuple[np.ndarray, np.ndarray]:
        a, b = self.offsets[t], self.offsets[t + 1]
        return self.indices[a:b], self.values[a:b]

    def dense_row(self, t: int, d: int) -> torch.Tensor:
        out = torch.zeros(d)
        idx, val = self.row(t)
        out[torch.from_numpy(idx)] = torch.from_numpy(val)
        return out

    def column(self, feature: int) -> np.ndarray:
        """One feature's activation at every token ``[n]`` (0 where inactive)."""
        out = np.zeros(self.n_tokens, np.float32)
        hits = np.nonzero(self.indices == int(feature))[0]
        if len(hits):
            tokens = np.searchsorted(self.offsets, hits, side="right") - 1
            out[tokens] = self.values[hits]
        return out


@dataclass
class PromptFeatures:
    """An SAE's reading of one prompt at one layer (plain arrays; cheap to cache and to query)."""

    layer: int
    hook_in: str
    hook_out: str
    d_sae: int
    rows: SparseRows
    l0: np.ndarray  # [n] int64
    sq_err: np.ndarray  # [n] float32: ‖y_t − ŷ_t‖²
    variance: float | None
    """Mean ‖y − ȳ‖² over the prompt's tokens after the first; None when undefined (< 2 such tokens)."""
    prompt_fvu: float | None
    sources: dict[int, SparseRows] = field(default_factory=dict)
    """CLTs only: the features of every layer ≤ ``layer`` (for cross-layer contributions)."""
    notes: tuple[str, ...] = ()

    @property
    def n_tokens(self) -> int:
        return len(self.l0)

    def top(self, t: int, k: int = 10) -> list[tuple[int, float]]:
        """The ``k`` strongest active features of token t: [(index, activation)]."""
        idx, val = self.rows.row(t)
        return [(int(i), float(v)) for i, v in zip(idx[:k], val[:k])]

    def fvu(self, t: int) -> float | None:
        return None if self.variance is None else float(self.sq_err[t]) / self.variance

    def feature_values(self, feature: int) -> np.ndarray:
        return self.rows.column(feature)


def _prompt_fvu(y: torch.Tensor, sq_err: torch.Tensor) -> float | None:
    rows = ordinary_rows(y)
    yy = y[rows].float()
    if yy.shape[0] < 2:
        return None
    denom = float(((yy - yy.mean(0)) ** 2).sum())
    return float(sq_err[rows].sum()) / denom if denom > 0 else None


@torch.no_grad()
def compute_features(wrapper, sae: Sae, ids: list[int] | tuple[int, ...], layer: int,
                     should_stop: StopCheck | None = None) -> PromptFeatures:
    """Run the model on ``ids`` and the SAE on its activations at ``sae.hook_in``.

    Args:
        wrapper: the ModelWrapper (its lock is held for the forward pass).
        sae: the loaded SAE / transcoder, on the model's device.
        ids: the prompt's token ids.
        layer: the configured layer (recorded in the result).
        should_stop: polled between the model's layers; True raises engine.cancel.Cancelled.

    Returns:
        PromptFeatures for every token.
    """
    acts = capture(wrapper, ids, [sae.hook_in, sae.hook_out], should_stop=should_stop)
    x, y = acts[sae.hook_in], acts[sae.hook_out]  # [n, d_in], [n, d_out]
    notes: list[str] = []
    if sae.skip_ambiguous:
        errs = sae.resolve_skip(x, y)
        notes.append(f"skip connection orientation chosen by reconstruction error: {sae.metadata['skip_orientation']} "
                     f"(errors {errs['as_stored']:.3g} vs {errs['transposed']:.3g})")
    f, y_hat = sae.forward(x)
    err = squared_error(y, y_hat.cpu())  # [n]
    return PromptFeatures(
        layer=layer, hook_in=sae.hook_in, hook_out=sae.hook_out, d_sae=sae.d_sae,
        rows=SparseRows.from_dense(f), l0=l0(f).cpu().numpy().astype(np.int64),
        sq_err=err.numpy().astype(np.float32), variance=variance_denominator(y),
        prompt_fvu=_prompt_fvu(y, err), notes=tuple(notes),
    )


@torch.no_grad()
def compute_clt_features(wrapper, clt: CrossLayerTranscoder, ids: list[int] | tuple[int, ...], layer: int,
                         should_stop: StopCheck | None = None) -> PromptFeatures:
    """A CLT at ``layer``: its features there, and the reconstruction of that layer's MLP output
    from the features of every layer ≤ ``layer`` (which is what its FVU measures)."""
    hooks = [clt.hook_in(i) for i in range(layer + 1)] + [clt.hook_out(layer)]
    acts = capture(wrapper, ids, hooks, should_stop=should_stop)
    feats = {i: clt.encode_layer(i, acts[clt.hook_in(i)]) for i in range(layer + 1)}  # each [n, d_tc]
    y = acts[clt.hook_out(layer)]
    y_hat = clt.reconstruct(layer, feats, acts[clt.hook_in(layer)])
    err = squared_error(y, y_hat)
    f = feats[layer]
    return PromptFeatures(
        layer=layer, hook_in=clt.hook_in(layer), hook_out=clt.hook_out(layer), d_sae=clt.d_tc,
        rows=SparseRows.from_dense(f), l0=l0(f).numpy().astype(np.int64), sq_err=err.numpy().astype(np.float32),
        variance=variance_denominator(y), prompt_fvu=_prompt_fvu(y, err),
        sources={i: SparseRows.from_dense(feats[i]) for i in range(layer)},
    )


@dataclass(frozen=True)
class Contribution:
    """What one CLT feature writes into the chosen layer's MLP output at one token."""

    layer: int
    feature: int
    activation: float
    norm: float
    """‖f · W_dec^{layer→target}‖."""
    share: float
    """Projection on the whole reconstruction ŷ, as a share: (c · ŷ) / ‖ŷ‖². All shares + the bias share sum to 1."""


def cross_layer_contributions(clt: CrossLayerTranscoder, pf: PromptFeatures, t: int) -> tuple[list[Contribution], float]:
    """Every active feature of layers ≤ pf.layer writing into pf.layer's MLP output at token t.

    Returns:
        (contributions sorted by |share|, the bias's share b_dec·ŷ/‖ŷ‖²).
    """
    target = pf.layer
    feats = {i: rows.dense_row(t, clt.d_tc) for i, rows in pf.sources.items()}
    feats[target] = pf.rows.dense_row(t, clt.d_tc)
    parts = clt.contributions(target, feats)
    bias = clt.bias(target)
    total = bias.clone()
    for *_, vec in parts:
        total = total + vec
    denom = float(total @ total) or 1.0
    out = [Contribution(i, j, a, float(vec.norm()), float(vec @ total) / denom) for i, j, a, vec in parts]
    out.sort(key=lambda c: -abs(c.share))
    return out, float(bias @ total) / denom
