"""Capture what the expensive modes need from one forward pass over a whole token list.

Each function holds ``wrapper.lock`` for its model work, runs one full forward pass (no
KV cache shared with the app's Trace) and hands out float32 CPU tensors with the batch
dimension dropped. Never imports Textual or Rich.

Residual-stream convention (TransformerLens names, see SCIENCE.md "TL hook -> HF"):
    resid[0]      = input of block 0 (the embeddings as the blocks see them; Gemma's ×√d included)
    resid[l + 1]  = output of block l (``blocks.l.hook_resid_post``), for l = 0 .. L-1
So ``resid`` has L + 1 entries and ``resid[L]`` is the last block's output BEFORE the
final norm. We read it with forward hooks on the blocks rather than from
``output_hidden_states``: in transformers 5 ``hidden_states[-1]`` is replaced by the
post-final-norm ``last_hidden_state``, and a lens on it would apply the norm twice.

Sub-layer outputs (hooks on the real modules found by explorer.engine.layers, per block l):
    attn_out[l]   Llama/Qwen/Mistral: output of ``self_attn`` (o_proj);
                  Gemma 2/3: output of ``post_attention_layernorm`` (sandwich norm).
    resid_mid[l]  input of the pre-MLP norm (``post_attention_layernorm`` in Llama,
                  ``pre_feedforward_layernorm`` in Gemma 2).
    mlp_out[l]    Llama: output of ``mlp``; Gemma 2: output of ``post_feedforward_layernorm``.
so that ``resid_mid = resid_pre + attn_out`` and ``resid_post = resid_mid + mlp_out``
(``ResidualCapture.identity_error`` measures how exactly that holds).

Attention weights need ``attn_implementation="eager"`` (sdpa/flash never materialise
them); ``eager_attention`` switches to it only for the capture and restores the previous
implementation afterwards.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch

from explorer.engine.layers import decoder_layers, is_sandwich, locate
from explorer.engine.cancel import check
from explorer.errors import AnalysisUnavailable


# ---------------------------------------------------------------- model parts
@dataclass(frozen=True)
class ModelParts:
    """The modules a capture hooks, found once per call."""

    layers: list
    final_norm: torch.nn.Module
    lm_head: torch.nn.Module
    embed: torch.nn.Module
    softcap: float | None
    sandwich: bool
    """True for Gemma 2/3 style blocks (post-attention and post-MLP norms on the sub-layer outputs)."""


def model_parts(wrapper) -> ModelParts:
    """Locate blocks, final norm, unembedding and embedding of a decoder-only HF model.

    Raises:
        AnalysisUnavailable: the architecture does not expose ``model.layers`` / ``model.norm``.
    """
    model = wrapper.model
    base = getattr(model, "model", None)
    norm = getattr(base, "norm", None)
    try:
        layers = decoder_layers(model)
    except AnalysisUnavailable:
        layers = None
    if layers is None or norm is None or model.get_output_embeddings() is None:
        raise AnalysisUnavailable(
            f"{type(model).__name__} does not expose its blocks and final norm the way Llama/Gemma "
            "models do, so its residual stream cannot be read."
        )
    sandwich = is_sandwich(layers[0])
    return ModelParts(
        layers=list(layers), final_norm=norm, lm_head=model.get_output_embeddings(),
        embed=model.get_input_embeddings(), softcap=getattr(wrapper.config, "final_logit_softcapping", None),
        sandwich=sandwich,
    )


def _tensor_out(output) -> torch.Tensor:
    """A module's main output tensor (blocks and attention return tuples in some versions)."""
    return output[0] if isinstance(output, (tuple, list)) else output


@contextlib.contextmanager
def _hooks(handles: list):
    try:
        yield
    finally:
        for h in handles:
            h.remove()


@contextlib.contextmanager
def eager_attention(wrapper):
    """Switch the model to eager attention for the duration of the block, then restore it.

    Callers hold ``wrapper.lock`` so no other forward pass sees the switched model.

    Raises:
        AnalysisUnavailable: the model cannot run eager attention.
    """
    model = wrapper.model
    previous = getattr(model.config, "_attn_implementation", None)
    switched = False
    if previous != "eager":
        if not hasattr(model, "set_attn_implementation"):
            raise AnalysisUnavailable("This model cannot switch to eager attention, so it cannot return attention weights.")
        try:
            model.set_attn_implementation("eager")
        except Exception as exc:  # transformers raises ValueError/ImportError variants
            raise AnalysisUnavailable(f"This model cannot run eager attention ({exc}), so no attention weights.") from exc
        switched = True
    try:
        yield
    finally:
        if switched:
            model.set_attn_implementation(previous)


def _input_ids(wrapper, ids) -> torch.Tensor:
    if len(ids) == 0:
        raise AnalysisUnavailable("The prompt is empty.")
    return torch.tensor([list(ids)], dtype=torch.long, device=wrapper.device)  # [1, n]


# ------------------------------------------------------------------ residuals
@dataclass(frozen=True)
class ResidualCapture:
    """The residual stream of one token list (float32, CPU, no batch dim).

    Shapes (n = tokens, L = blocks, d = d_model, V = vocab):
        resid       [L + 1, n, d]  pre-norm residual (see the module docstring for the indexing)
        attn_out    [L, n, d] or None   attention sub-layer output added to the residual
        mlp_out     [L, n, d] or None   MLP sub-layer output added to the residual
        resid_mid   [L, n, d] or None   residual between the two sub-layers
        logits      [len(logit_positions), V]  the model's own output logits at those positions
    """

    ids: tuple[int, ...]
    resid: torch.Tensor
    attn_out: torch.Tensor | None
    mlp_out: torch.Tensor | None
    resid_mid: torch.Tensor | None
    logit_positions: tuple[int, ...]
    logits: torch.Tensor

    @property
    def n_layers(self) -> int:
        return self.resid.shape[0] - 1

    def model_logits(self, pos: int) -> torch.Tensor:
        """The model's logits ``[V]`` at ``pos`` (must be one of ``logit_positions``)."""
        return self.logits[self.logit_positions.index(pos)]

    def identity_error(self) -> float:
        """Largest relative violation of resid_mid = resid_pre + attn_out and resid_post = resid_mid + mlp_out."""
        if self.attn_out is None:
            return 0.0
        pre, post = self.resid[:-1], self.resid[1:]  # [L, n, d] each
        scale = post.abs().max().clamp_min(1e-12)
        e1 = (self.resid_mid - (pre + self.attn_out)).abs().max()
        e2 = (post - (self.resid_mid + self.mlp_out)).abs().max()
        return float(torch.maximum(e1, e2) / scale)


@torch.inference_mode()
def capture_residuals(wrapper, ids, *, sublayers: bool = False,
                      logit_positions: tuple[int, ...] | None = None, should_stop=None) -> ResidualCapture:
    """One forward pass over ``ids`` recording the residual stream (and optionally the sub-layers).

    Args:
        wrapper: the ModelWrapper.
        ids: the full token list.
        sublayers: also record attention output, MLP output and resid_mid per block.
        logit_positions: positions whose model output logits are kept (default: the last).
        should_stop: polled before each block; True raises engine.cancel.Cancelled.

    Returns:
        ResidualCapture with the shapes listed on the class.
    """
    parts = model_parts(wrapper)
    n = len(ids)
    positions = tuple(logit_positions) if logit_positions is not None else (n - 1,)
    if any(not 0 <= p < n for p in positions):
        raise AnalysisUnavailable(f"Position out of range for a {n}-token prompt.")
    L = len(parts.layers)
    resid: list[torch.Tensor | None] = [None] * (L + 1)
    attn_out: list[torch.Tensor | None] = [None] * L
    mlp_out: list[torch.Tensor | None] = [None] * L
    mid: list[torch.Tensor | None] = [None] * L
    handles = []

    def keep(store, i):
        def hook(_module, _inputs, output):
            store[i] = _tensor_out(output)[0].detach().float().cpu()  # [n, d]
        return hook

    def keep_input(store, i):
        def hook(_module, inputs):
            store[i] = inputs[0][0].detach().float().cpu()  # [n, d]
        return hook

    handles.append(parts.layers[0].register_forward_pre_hook(
        lambda _m, args, kwargs: resid.__setitem__(0, (args[0] if args else kwargs["hidden_states"])[0].detach().float().cpu()),
        with_kwargs=True))
    for i, layer in enumerate(parts.layers):
        handles.append(layer.register_forward_hook(keep(resid, i + 1)))
        if should_stop is not None:  # the user may have left this prompt: stop between blocks
            handles.append(layer.register_forward_pre_hook(lambda _m, _a: check(should_stop)))
        if sublayers:
            # The one layer locator knows where each sub-layer output lives (Gemma's sandwich norms).
            try:
                for site, store in (("hook_attn_out", attn_out), ("hook_resid_mid", mid), ("hook_mlp_out", mlp_out)):
                    where = locate(wrapper.model, i, site)
                    if where.side == "output":
                        handles.append(where.module.register_forward_hook(keep(store, i)))
                    else:
                        handles.append(where.module.register_forward_pre_hook(keep_input(store, i)))
            except AnalysisUnavailable:
                for h in handles:
                    h.remove()
                raise
    with wrapper.lock, _hooks(handles):
        out = wrapper.model(input_ids=_input_ids(wrapper, ids), use_cache=False)
        logits = out.logits[0, list(positions)].detach().float().cpu()  # [len(positions), V]
    if any(r is None for r in resid):
        raise AnalysisUnavailable("The model's blocks did not report their outputs to the hooks.")
    stack = torch.stack  # [L(+1), n, d]
    return ResidualCapture(
        ids=tuple(int(t) for t in ids), resid=stack(resid),
        attn_out=stack(attn_out) if sublayers else None,
        mlp_out=stack(mlp_out) if sublayers else None,
        resid_mid=stack(mid) if sublayers else None,
        logit_positions=positions, logits=logits,
    )


# ------------------------------------------------------------------ attention
@dataclass(frozen=True)
class AttentionCapture:
    """Eager attention weights of one token list (float32, CPU, no batch dim).

    Shapes (n tokens, L blocks, H query heads):
        mean      [L, n, n]   head-averaged weights, row = query, column = key (lower-triangular)
        rows      [L, H, n] or None   per-head weights of the query at ``query`` (zero past it); None when
                  read from a trace's records, which keep heads averaged (see explorer.engine.recorder)
    GQA models already expand key/value heads to the query heads in eager attention, so
    the head axis is the query heads and their mean is the average over all of them.
    """

    ids: tuple[int, ...]
    query: int
    mean: torch.Tensor
    rows: torch.Tensor | None
    n_heads: int
    n_kv_heads: int


@torch.inference_mode()
def capture_attentions(wrapper, ids, query: int | None = None, should_stop=None) -> AttentionCapture:
    """One eager forward pass over ``ids`` recording attention weights.

    Args:
        wrapper: the ModelWrapper.
        ids: the full token list.
        query: the query position whose per-head rows are kept (default: the last).
        should_stop: polled before each layer; True raises engine.cancel.Cancelled.

    Returns:
        AttentionCapture (shapes on the class).

    Raises:
        AnalysisUnavailable: the model gives no attention weights.
    """
    parts = model_parts(wrapper)
    n = len(ids)
    q = n - 1 if query is None else int(query)
    if not 0 <= q < n:
        raise AnalysisUnavailable(f"Position {q} is outside the {n}-token prompt.")
    L = len(parts.layers)
    means: list[torch.Tensor | None] = [None] * L
    rows: list[torch.Tensor | None] = [None] * L

    def keep(i):
        def hook(_module, _inputs, output):
            weights = output[1] if isinstance(output, (tuple, list)) and len(output) > 1 else None
            if weights is None:
                return
            w = weights[0].detach().float()  # [H, n, n]
            means[i] = w.mean(0).cpu()  # [n, n]
            rows[i] = w[:, q, :].cpu()  # [H, n]
        return hook

    attn_modules = [getattr(layer, "self_attn", None) for layer in parts.layers]
    if any(m is None for m in attn_modules):
        raise AnalysisUnavailable("This architecture has no self_attn modules to read attention weights from.")
    handles = [m.register_forward_hook(keep(i)) for i, m in enumerate(attn_modules)]
    if should_stop is not None:  # the user may have left this prompt: stop between layers
        handles += [layer.register_forward_pre_hook(lambda _m, _a: check(should_stop)) for layer in parts.layers]
    with wrapper.lock, _hooks(handles), eager_attention(wrapper):
        wrapper.model(input_ids=_input_ids(wrapper, ids), use_cache=False)
    if any(m is None for m in means):
        raise AnalysisUnavailable("The model's attention implementation did not return attention weights.")
    cfg = wrapper.config
    n_heads = int(rows[0].shape[0])
    return AttentionCapture(
        ids=tuple(int(t) for t in ids), query=q, mean=torch.stack(means), rows=torch.stack(rows),
        n_heads=n_heads, n_kv_heads=int(getattr(cfg, "num_key_value_heads", None) or n_heads),
    )


# ----------------------------------------------------------------------- lens
@torch.inference_mode()
def lens_logits(wrapper, resid: torch.Tensor) -> torch.Tensor:
    """Logit lens: final norm, unembedding and soft-cap applied to residual vectors (SCIENCE.md 5.1).

    The norm statistics are recomputed for every vector (each layer separately). Give it
    pre-norm residuals only (``ResidualCapture.resid``): the norm is applied here, once.

    Args:
        wrapper: the ModelWrapper.
        resid: ``[..., d]`` residual vectors.

    Returns:
        ``[..., V]`` float32 CPU logits.
    """
    parts = model_parts(wrapper)
    param = next(wrapper.model.parameters())
    with wrapper.lock:
        h = resid.to(device=param.device, dtype=param.dtype)
        z = parts.lm_head(parts.final_norm(h))  # [..., V]
        z = z.float()
        if parts.softcap:
            z = parts.softcap * torch.tanh(z / parts.softcap)
        return z.cpu()


# --------------------------------------------------------------- embeddings
@torch.inference_mode()
def input_embeddings(wrapper, ids) -> torch.Tensor:
    """The embeddings the first block receives, ``[n, d]`` float32 CPU (Gemma's ×√d included)."""
    parts = model_parts(wrapper)
    with wrapper.lock:
        e = parts.embed(_input_ids(wrapper, ids))[0]  # [n, d]
    return e.detach().float().cpu()
