"""Activation patching between a clean and a corrupted prompt (SCIENCE.md 5.11).

A cell ``(L, p)`` of the grid is the metric of the corrupted run after the site of block L
at position p is replaced by the clean run's activation there. Sites:
    resid  ``blocks.L.hook_resid_pre`` (the input of block L)
    attn   ``blocks.L.hook_attn_out``
    mlp    ``blocks.L.hook_mlp_out``
Metric at the last position: ``logit_diff = z[target] − z[contrast]`` or ``logprob = log p(target)``.
The clean run's metric is the ceiling, the corrupted run's the floor.

Prompts of different lengths are aligned from the end: corrupted position p takes the clean
activation at ``p + (n_clean − n_corrupt)``; positions without a counterpart are left out.

:func:`exact_patching` batches all positions of one layer into one forward pass, reports
progress per layer and stops when ``should_stop()`` says so (cells not reached stay None).
:func:`attribution_patching` is the first-order approximation
``Δm ≈ (a_clean − a_corr)·∂m/∂a |corr`` from one forward and one backward pass of the
corrupted prompt (Nanda 2023; Syed et al. 2023): an approximation, known to fail where the
metric saturates and at early residual sites. Never imports Textual or Rich.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import torch

from explorer.engine.layers import decoder_layers, first_tensor, input_tensor, locate, replace_input, replace_output
from explorer.errors import InputError

SITES = {"resid": "hook_resid_pre", "attn": "hook_attn_out", "mlp": "hook_mlp_out"}
ROWS_PER_PASS = 32  # patched copies of the corrupted prompt per forward pass


@dataclass
class PatchResult:
    metric: str
    """"logit_diff" or "logprob"."""
    clean: float
    corrupt: float
    site: str
    method: str
    layers: list[int]
    positions: list[int]
    """Corrupted-prompt positions (columns)."""
    tokens: list[str]
    grid: list[list[float | None]]
    """grid[layer][column]; None where an exact sweep was stopped before reaching the cell."""
    aligned: str = "same length"
    seconds: float = 0.0
    complete: bool = True
    extra: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return {"metric": self.metric, "clean": self.clean, "corrupt": self.corrupt, "site": self.site,
                "hook": f"blocks.L.{SITES[self.site]}", "method": self.method, "layers": self.layers,
                "positions": self.positions, "tokens": self.tokens, "grid": self.grid, "aligned": self.aligned,
                "complete": self.complete, "seconds": round(self.seconds, 4), **self.extra}


@dataclass(frozen=True)
class PatchSetup:
    clean_ids: tuple[int, ...]
    corrupt_ids: tuple[int, ...]
    target: int
    contrast: int | None
    site: str

    @property
    def shift(self) -> int:
        """clean position = corrupted position + shift (alignment from the end)."""
        return len(self.clean_ids) - len(self.corrupt_ids)

    @property
    def positions(self) -> list[int]:
        return [p for p in range(len(self.corrupt_ids)) if 0 <= p + self.shift < len(self.clean_ids)]

    def metric_name(self) -> str:
        return "logprob" if self.contrast is None else "logit_diff"


def make_setup(wrapper, clean_ids, corrupt_ids, target: int, contrast: int | None, site: str) -> PatchSetup:
    """Check the inputs of a patching run; raise InputError (one sentence) when they do not fit."""
    if site not in SITES:
        raise InputError(f'Unknown patching site "{site}"; use one of {", ".join(SITES)}.')
    if not clean_ids or not corrupt_ids:
        raise InputError("Both the clean and the corrupted prompt need at least one token.")
    for name, t in (("target", target), ("contrast", contrast)):
        if t is not None and not 0 <= int(t) < wrapper.vocab_size:
            raise InputError(f"The {name} token id {t} is outside the vocabulary.")
    if contrast is not None and int(contrast) == int(target):
        raise InputError("The target and the contrast are the same token, so their logit difference is always 0.")
    return PatchSetup(tuple(int(i) for i in clean_ids), tuple(int(i) for i in corrupt_ids), int(target),
                      None if contrast is None else int(contrast), site)


def metric_of(logits: torch.Tensor, setup: PatchSetup) -> torch.Tensor:
    """The metric from last-position logits ``[B, V]`` -> ``[B]`` (float32)."""
    z = logits.float()
    if setup.contrast is None:
        return torch.log_softmax(z, dim=-1)[:, setup.target]
    return z[:, setup.target] - z[:, setup.contrast]


def _last_logits(wrapper, input_ids: torch.Tensor) -> torch.Tensor:
    try:
        out = wrapper.model(input_ids=input_ids, use_cache=False, logits_to_keep=1)
    except TypeError:  # an architecture without logits_to_keep
        out = wrapper.model(input_ids=input_ids, use_cache=False)
    return out.logits[:, -1]  # [B, V]


def site_activations(wrapper, ids, site: str) -> torch.Tensor:
    """The site's activation at every layer, ``[L, n, d]`` in the model's dtype (exact copies)."""
    return _site_activations_and_logits(wrapper, ids, site)[0]


@torch.no_grad()
def _site_activations_and_logits(wrapper, ids, site: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(activations ``[L, n, d]``, last-position logits ``[1, V]``) from one forward pass."""
    layers = decoder_layers(wrapper.model)
    store: list[torch.Tensor | None] = [None] * len(layers)
    handles = []
    for L in range(len(layers)):
        where = locate(wrapper.model, L, SITES[site])
        if where.side == "output":
            handles.append(where.module.register_forward_hook(
                lambda _m, _a, out, _L=L: store.__setitem__(_L, first_tensor(out)[0].detach().clone())))
        else:
            handles.append(where.module.register_forward_pre_hook(
                lambda _m, args, kwargs, _L=L: store.__setitem__(_L, input_tensor(args, kwargs)[0].detach().clone()),
                with_kwargs=True))
    try:
        with wrapper.lock:
            last = _last_logits(wrapper, torch.tensor([list(ids)], dtype=torch.long, device=wrapper.device))
    finally:
        for h in handles:
            h.remove()
    return torch.stack(store), last  # [L, n, d], [1, V]


def _patch_hook(wrapper, layer: int, site: str, rows_positions: list[list[tuple[int, torch.Tensor]]]):
    """A hook at the site of ``layer`` writing, in batch row b, each (position, vector) of rows_positions[b]."""
    where = locate(wrapper.model, layer, SITES[site])

    def patch(x: torch.Tensor) -> torch.Tensor:
        new = x.clone()
        for b, pairs in enumerate(rows_positions):
            for pos, vec in pairs:
                new[b, pos] = vec.to(new.dtype)
        return new

    if where.side == "output":
        return where.module.register_forward_hook(
            lambda _m, _a, out: replace_output(out, patch(first_tensor(out))))
    return where.module.register_forward_pre_hook(
        lambda _m, args, kwargs: replace_input(args, kwargs, patch(input_tensor(args, kwargs))), with_kwargs=True)


@torch.no_grad()
def patched_logits(wrapper, setup: PatchSetup, layer: int, positions: list[int],
                   clean_acts: torch.Tensor | None = None) -> torch.Tensor:
    """Full logits ``[n_corrupt, V]`` of the corrupted prompt with the site of ``layer`` patched at ``positions``."""
    acts = clean_acts if clean_acts is not None else site_activations(wrapper, setup.clean_ids, setup.site)
    pairs = [(p, acts[layer, p + setup.shift]) for p in positions]
    handle = _patch_hook(wrapper, layer, setup.site, [pairs])
    try:
        with wrapper.lock:
            ids = torch.tensor([list(setup.corrupt_ids)], dtype=torch.long, device=wrapper.device)
            return wrapper.model(input_ids=ids, use_cache=False).logits[0].float().cpu()
    finally:
        handle.remove()


def _corrupt_metric(wrapper, setup: PatchSetup) -> float:
    with wrapper.lock, torch.no_grad():
        corrupt = _last_logits(wrapper, torch.tensor([list(setup.corrupt_ids)], device=wrapper.device))
    return float(metric_of(corrupt, setup)[0])


def _result(wrapper, setup: PatchSetup, method: str, grid, clean: float, corrupt: float, t0: float,
            complete: bool = True) -> PatchResult:
    n_layers = len(decoder_layers(wrapper.model))
    return PatchResult(
        metric=setup.metric_name(), clean=clean, corrupt=corrupt, site=setup.site, method=method,
        layers=list(range(n_layers)), positions=setup.positions,
        tokens=[wrapper.token_text(setup.corrupt_ids[p]).text for p in setup.positions], grid=grid,
        aligned="same length" if setup.shift == 0 else "from the end", seconds=time.perf_counter() - t0,
        complete=complete,
    )


def exact_patching(wrapper, setup: PatchSetup, *, on_progress: Callable[[int, int], None] | None = None,
                   should_stop: Callable[[], bool] | None = None) -> PatchResult:
    """Patch every (layer, position) exactly, one batched forward pass per layer (and row chunk).

    Args:
        on_progress: called with (cells done, cells in all) after each pass.
        should_stop: polled before each pass; True ends the sweep with the cells done so far.
    """
    t0 = time.perf_counter()
    acts, clean_logits = _site_activations_and_logits(wrapper, setup.clean_ids, setup.site)  # [L, n_clean, d]
    clean, corrupt = float(metric_of(clean_logits, setup)[0]), _corrupt_metric(wrapper, setup)
    positions = setup.positions
    n_layers = acts.shape[0]
    grid: list[list[float | None]] = [[None] * len(positions) for _ in range(n_layers)]
    total, done = n_layers * len(positions), 0
    for L in range(n_layers):
        for start in range(0, len(positions), ROWS_PER_PASS):
            if should_stop is not None and should_stop():
                return _result(wrapper, setup, "exact", grid, clean, corrupt, t0, complete=False)
            cols = list(range(start, min(start + ROWS_PER_PASS, len(positions))))
            rows = [[(positions[c], acts[L, positions[c] + setup.shift])] for c in cols]
            handle = _patch_hook(wrapper, L, setup.site, rows)
            try:
                with wrapper.lock, torch.no_grad():
                    ids = torch.tensor([list(setup.corrupt_ids)] * len(cols), dtype=torch.long, device=wrapper.device)
                    values = metric_of(_last_logits(wrapper, ids), setup).tolist()  # [len(cols)]
            finally:
                handle.remove()
            for c, v in zip(cols, values):
                grid[L][c] = float(v)
            done += len(cols)
            if on_progress is not None:
                on_progress(done, total)
    return _result(wrapper, setup, "exact", grid, clean, corrupt, t0)


def exact_cell(wrapper, setup: PatchSetup, layer: int, position: int) -> float:
    """The exact metric of one cell (the "patch this cell exactly" action next to attribution)."""
    if position not in setup.positions:
        raise InputError(f"Position {position} has no counterpart in the clean prompt.")
    logits = patched_logits(wrapper, setup, layer, [position])
    return float(metric_of(logits[-1:], setup)[0])


def attribution_patching(wrapper, setup: PatchSetup) -> PatchResult:
    """``(a_clean − a_corr)·∂m/∂a`` at every (layer, position): one forward + one backward pass (corrupted)."""
    t0 = time.perf_counter()
    clean_acts, clean_logits = _site_activations_and_logits(wrapper, setup.clean_ids, setup.site)
    clean_acts = clean_acts.float()  # [L, n_clean, d]
    clean = float(metric_of(clean_logits, setup)[0])
    model = wrapper.model
    layers = decoder_layers(model)
    seen: list[torch.Tensor | None] = [None] * len(layers)
    handles = []
    for L in range(len(layers)):
        where = locate(model, L, SITES[setup.site])
        if where.side == "output":
            handles.append(where.module.register_forward_hook(
                lambda _m, _a, out, _L=L: seen.__setitem__(_L, first_tensor(out))))
        else:
            handles.append(where.module.register_forward_pre_hook(
                lambda _m, args, kwargs, _L=L: seen.__setitem__(_L, input_tensor(args, kwargs)), with_kwargs=True))
    try:
        with wrapper.lock, torch.inference_mode(False), torch.enable_grad():
            ids = torch.tensor([list(setup.corrupt_ids)], dtype=torch.long, device=wrapper.device)
            # Embeddings as a leaf that needs a gradient, so every site downstream is in the graph.
            embeds = model.get_input_embeddings()(ids).detach().requires_grad_(True)  # [1, n, d]
            try:
                out = model(inputs_embeds=embeds, use_cache=False, logits_to_keep=1)
            except TypeError:
                out = model(inputs_embeds=embeds, use_cache=False)
            m = metric_of(out.logits[:, -1], setup)[0]
            grads = torch.autograd.grad(m, seen)  # each [1, n, d]
            corrupt = float(m.detach())  # the unpatched corrupted metric, from the same forward pass
    finally:
        for h in handles:
            h.remove()
    positions = setup.positions
    grid: list[list[float | None]] = []
    for L in range(len(layers)):
        a_corr = seen[L][0].detach().float()  # [n, d]
        g = grads[L][0].detach().float()  # [n, d]
        row = []
        for p in positions:
            row.append(float(((clean_acts[L, p + setup.shift].to(g.device) - a_corr[p]) * g[p]).sum()) + corrupt)
        grid.append(row)
    res = _result(wrapper, setup, "attribution", grid, clean, corrupt, t0)
    res.extra["approximation"] = "first order: corrupt + (a_clean - a_corr)·dm/da at the corrupted run"
    return res
