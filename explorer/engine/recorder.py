"""Recorder: what the research modes read, recorded by the forward pass that appends a token.

A Trace's one-token forward (or a chunk of a long prompt) runs with hooks on the real
modules and keeps, for the new tokens only:
    resid      [L + 1, n, d]  the residual stream (same indexing as ``capture.ResidualCapture``)
    normed     [n, d]         the final norm's output (the model's own logits are lm_head of it)
    sublayers  attn_out, resid_mid, mlp_out  [L, n, d] each
    attention  [L, n, n]      head-averaged attention rows of each query (``recorded.new_query_attention``)
    lens       [L + 1, n]     logit-lens probability of each actual token, filled lazily per layer
Popping crops them with the KV cache; a duplicated prompt copies them.

What is recorded is armed per model: the first time a mode asks for a kind, every trace of
that model records it from then on (a mode switch later in the session finds it recorded).
A trace that was not recording when its tokens went in is filled by one pass over its ids
(the fallback, once), then grows incrementally. All recorders of a model share one byte
budget; past it the least recently used ones are emptied (filled again when asked).
Callers hold ``wrapper.lock``. Never imports Textual or Rich.
"""

from __future__ import annotations

import contextlib
import weakref

import torch

from explorer.engine.capture import (AttentionCapture, ResidualCapture, _tensor_out, lens_logits,
                                     model_parts)
from explorer.engine.recorded import GrowingTensor, new_query_attention, supports_query_attention

RESID, SUBLAYERS, ATTENTION = "resid", "sublayers", "attention"
DEFAULT_BUDGET_BYTES = 768 * 1024 * 1024
"""All recorders of one model together. SmolLM2-135M at 1,000 tokens: residuals 71 MB,
sub-layers 213 MB, attention rows 126 MB (30 blocks × 1,024² float32)."""
LENS_ROWS = 64  # lens rows per unembedding matmul: 64 × 49k vocab × 4 B ≈ 13 MB


class _ModelRecords:
    """Per model: the kinds armed, the live traces (weakly), the shared byte budget."""

    def __init__(self) -> None:
        self.kinds: set[str] = set()
        self.traces: weakref.WeakSet = weakref.WeakSet()
        self.budget = DEFAULT_BUDGET_BYTES
        self.clock = 0


_MODELS: "weakref.WeakKeyDictionary[object, _ModelRecords]" = weakref.WeakKeyDictionary()


def model_records(wrapper) -> _ModelRecords:
    found = _MODELS.get(wrapper)
    if found is None:
        found = _MODELS[wrapper] = _ModelRecords()
    return found


def set_budget(wrapper, nbytes: int) -> None:
    """The byte bound shared by every recorder of ``wrapper`` (config or tests)."""
    model_records(wrapper).budget = int(nbytes)


def recorder_for(wrapper, ids) -> "Recorder | None":
    """The recorder of a live trace holding exactly ``ids``, or None (then the capture pass runs)."""
    target = [int(t) for t in ids]
    for trace in list(model_records(wrapper).traces):
        if trace.recorder.enabled and trace.ids == target:
            return trace.recorder
    return None


class Recorder:
    """The records of one Trace (see the module docstring). Created by the Trace itself."""

    def __init__(self, trace, *, enabled: bool = False) -> None:
        self.enabled = enabled
        """False for work traces (generation, comparison): they never record and are never looked up."""
        self.trace = weakref.proxy(trace)
        self.w = trace.w
        self.shared = model_records(self.w)
        self.shared.traces.add(trace)
        self.buffers: dict[str, dict[str, GrowingTensor]] = {}
        self.lens: GrowingTensor | None = None
        self.used = 0
        self.rebuilds = 0  # full passes run to fill records (tests and the benchmark count them)

    # ------------------------------------------------------------ bookkeeping
    @property
    def nbytes(self) -> int:
        total = sum(b.nbytes for group in self.buffers.values() for b in group.values())
        return total + (self.lens.nbytes if self.lens is not None else 0)

    def _complete(self, kind: str, n: int | None = None) -> bool:
        """True when ``kind`` is recorded for exactly the first ``n`` tokens (default: the whole trace)."""
        n = len(self.trace.ids) if n is None else n
        group = self.buffers.get(kind)
        return group is not None and all(b.n == n for b in group.values())

    def _new_group(self, kind: str) -> dict[str, GrowingTensor]:
        parts = model_parts(self.w)
        L, d = len(parts.layers), int(self.w.config.hidden_size)
        if kind == RESID:
            return {"resid": GrowingTensor((L + 1,), (d,)), "normed": GrowingTensor((), (d,))}
        if kind == SUBLAYERS:
            return {name: GrowingTensor((L,), (d,)) for name in ("attn_out", "resid_mid", "mlp_out")}
        return {"mean": GrowingTensor((L,), square=True)}

    def crop(self, n: int) -> None:
        for group in self.buffers.values():
            for b in group.values():
                b.crop(n)
        if self.lens is not None:
            self.lens.crop(n)

    def clear(self) -> None:
        self.buffers.clear()
        self.lens = None

    def copy_into(self, trace) -> "Recorder":
        """A recorder for ``trace`` (a clone of this one's trace) holding copies of these records."""
        other = Recorder(trace, enabled=self.enabled)
        other.buffers = {k: {name: b.copy() for name, b in g.items()} for k, g in self.buffers.items()}
        other.lens = self.lens.copy() if self.lens is not None else None
        other._enforce_budget()
        return other

    def _touch(self) -> None:
        self.shared.clock += 1
        self.used = self.shared.clock

    def _enforce_budget(self) -> None:
        """Empty the least recently used recorders (this one last) until all fit the budget."""
        others = sorted((t.recorder for t in list(self.shared.traces) if t.recorder is not self),
                        key=lambda r: r.used)
        total = sum(r.nbytes for r in others) + self.nbytes
        for rec in others + [self]:
            if total <= self.shared.budget:
                return
            total -= rec.nbytes
            rec.clear()

    # -------------------------------------------------------------- recording
    @contextlib.contextmanager
    def recording(self, cache, first: int, count: int):
        """Hooks that record the ``count`` tokens the next forward pass runs after ``first`` tokens.

        A kind whose records do not reach ``first`` is dropped (filled by a full pass when a
        mode asks); an empty trace starts every armed kind.
        """
        if not self.enabled:
            yield
            return
        if first == 0:
            self.clear()
            self.buffers = {k: self._new_group(k) for k in sorted(self.shared.kinds)}
        for k in [k for k in self.buffers if not self._complete(k, first)]:
            del self.buffers[k]
        if self.lens is not None and self.lens.n != first:
            self.lens = None
        kinds = sorted(self.buffers)
        if not kinds:
            yield
            return
        handles, staged = self._install(kinds, cache, first)
        try:
            yield
        finally:
            for h in handles:
                h.remove()
        for kind in kinds:
            for name, b in self.buffers[kind].items():
                value = staged[name]
                b.append(value if isinstance(value, torch.Tensor) else torch.stack(value))
        if self.lens is not None:
            self.lens.append(torch.full((self.lens.lead[0], count), float("nan"), dtype=torch.float64))
        self._touch()
        self._enforce_budget()

    def _install(self, kinds: list[str], cache, first: int) -> tuple[list, dict]:
        """Register the hooks of ``kinds``; they fill ``staged`` (name -> per-block list or tensor)."""
        parts = model_parts(self.w)
        L = len(parts.layers)
        staged: dict = {"resid": [None] * (L + 1), "attn_out": [None] * L, "resid_mid": [None] * L,
                        "mlp_out": [None] * L, "mean": [None] * L, "normed": None}
        handles = []

        def keep(name, i):
            def hook(_m, _args, output):
                staged[name][i] = _tensor_out(output)[0].detach().float()  # [c, d]
            return hook

        def keep_input(name, i):
            def hook(_m, args, kwargs):
                staged[name][i] = (args[0] if args else kwargs["hidden_states"])[0].detach().float()  # [c, d]
            return hook

        def keep_normed(_m, _args, output):
            staged["normed"] = _tensor_out(output)[0].detach().float()  # [c, d]

        def keep_attention(i):
            def hook(module, args, kwargs, _output):
                hidden = args[0] if args else kwargs["hidden_states"]
                keys = cache.layers[module.layer_idx].keys  # [1, kv_heads, n, hd], this forward's keys included
                weights = new_query_attention(module, hidden, kwargs["position_embeddings"], keys, first)
                staged["mean"][i] = weights.mean(0)  # [c, n]: mean over query heads
            return hook

        if RESID in kinds:
            handles.append(parts.layers[0].register_forward_pre_hook(keep_input("resid", 0), with_kwargs=True))
            for i, layer in enumerate(parts.layers):
                handles.append(layer.register_forward_hook(keep("resid", i + 1)))
            handles.append(parts.final_norm.register_forward_hook(keep_normed))
        if SUBLAYERS in kinds:
            for i, layer in enumerate(parts.layers):
                if parts.sandwich:
                    attn_site, mid_site, mlp_site = (layer.post_attention_layernorm, layer.pre_feedforward_layernorm,
                                                     layer.post_feedforward_layernorm)
                else:
                    attn_site, mid_site, mlp_site = layer.self_attn, layer.post_attention_layernorm, layer.mlp
                handles.append(attn_site.register_forward_hook(keep("attn_out", i)))
                handles.append(mid_site.register_forward_pre_hook(keep_input("resid_mid", i), with_kwargs=True))
                handles.append(mlp_site.register_forward_hook(keep("mlp_out", i)))
        if ATTENTION in kinds:
            for i, layer in enumerate(parts.layers):
                handles.append(layer.self_attn.register_forward_hook(keep_attention(i), with_kwargs=True))
        return handles, staged

    # --------------------------------------------------------------- reading
    def _ensure(self, kinds: list[str]) -> bool:
        """Arm ``kinds`` and fill them by one pass if they are missing. False: not recordable here."""
        if ATTENTION in kinds and not all(supports_query_attention(l.self_attn) for l in model_parts(self.w).layers
                                          if hasattr(l, "self_attn")):
            return False
        if SUBLAYERS in kinds and not model_parts(self.w).sandwich and not all(
                hasattr(l, a) for l in model_parts(self.w).layers for a in ("self_attn", "mlp", "post_attention_layernorm")):
            return False
        self.shared.kinds.update(kinds)
        missing = [k for k in kinds if not self._complete(k)]
        if missing:
            self._rebuild()
        self._touch()
        return all(self._complete(k) for k in kinds)

    @torch.inference_mode()
    def _rebuild(self) -> None:
        """One pass over the trace's ids (a fresh cache, no lm_head) recording every armed kind."""
        from transformers import DynamicCache

        ids = list(self.trace.ids)
        cache = DynamicCache()
        decoder = self.w.model.get_decoder()  # the blocks and the final norm, without the unembedding
        for start in range(0, len(ids), self.w.chunk_size):
            chunk = ids[start : start + self.w.chunk_size]
            with self.recording(cache, start, len(chunk)):
                decoder(input_ids=torch.tensor([chunk], dtype=torch.long, device=self.w.device),  # [1, c]
                        past_key_values=cache, use_cache=True)
        self.rebuilds += 1

    @torch.inference_mode()
    def residual_capture(self, *, sublayers: bool, logit_positions: tuple[int, ...]) -> ResidualCapture | None:
        """The recorded residual stream as a ``ResidualCapture`` (views, no copy); None if not recordable."""
        with self.w.lock:
            if not self._ensure([RESID, SUBLAYERS] if sublayers else [RESID]):
                return None
            g = self.buffers[RESID]
            sub = self.buffers.get(SUBLAYERS) if sublayers else None
            parts = model_parts(self.w)
            normed = g["normed"].view()[list(logit_positions)]  # [k, d]: the model's own final-norm output
            param = next(self.w.model.parameters())
            logits = parts.lm_head(normed.to(device=param.device, dtype=param.dtype)).float()  # [k, V]
            if parts.softcap:
                logits = parts.softcap * torch.tanh(logits / parts.softcap)
            return ResidualCapture(
                ids=tuple(self.trace.ids), resid=g["resid"].view(),
                attn_out=sub["attn_out"].view() if sub else None, mlp_out=sub["mlp_out"].view() if sub else None,
                resid_mid=sub["resid_mid"].view() if sub else None,
                logit_positions=tuple(logit_positions), logits=logits.cpu(),
            )

    def attention_capture(self, query: int, *, heads: bool = False) -> AttentionCapture | None:
        """Recorded head-averaged attention; with ``heads``, the per-head rows of ``query`` too.

        The per-head rows are recomputed, not stored: the query's block input (recorded
        residual) through the block's input norm, against the keys in the trace's KV cache.
        None when this model cannot be read this way (the caller runs the eager capture).
        """
        with self.w.lock:
            if not self._ensure([ATTENTION, RESID] if heads else [ATTENTION]):
                return None
            rows = self._head_rows(int(query)) if heads else None
            if heads and rows is None:
                return None
            cfg = self.w.config
            n_heads = int(cfg.num_attention_heads)
            return AttentionCapture(ids=tuple(self.trace.ids), query=int(query), mean=self.buffers[ATTENTION]["mean"].view(),
                                    rows=rows, n_heads=n_heads,
                                    n_kv_heads=int(getattr(cfg, "num_key_value_heads", None) or n_heads))

    @torch.inference_mode()
    def _head_rows(self, t: int) -> torch.Tensor | None:
        """``[L, H, n]`` attention of query ``t`` per head, from the recorded residual and the KV cache."""
        decoder = self.w.model.get_decoder()
        rotary = getattr(decoder, "rotary_emb", None)
        cache = self.trace.cache
        layers = model_parts(self.w).layers
        if rotary is None or not all(hasattr(layer, "input_layernorm") for layer in layers):
            return None
        n = len(self.trace.ids)
        resid = self.buffers[RESID]["resid"].view()  # [L+1, n, d]
        param = next(self.w.model.parameters())
        position = torch.tensor([[t]], device=param.device)  # [1, 1]
        out = []
        for i, layer in enumerate(layers):
            keys = cache.layers[layer.self_attn.layer_idx].keys  # [1, kv_heads, n, hd]
            if keys.shape[2] != n:
                return None
            x = layer.input_layernorm(resid[i, t : t + 1][None].to(device=param.device, dtype=param.dtype))  # [1, 1, d]
            weights = new_query_attention(layer.self_attn, x, rotary(x, position), keys, t)  # [H, 1, n]
            out.append(weights[:, 0].float().cpu())
        return torch.stack(out)  # [L, H, n]

    @torch.inference_mode()
    def lens_probs(self, layers: list[int]) -> torch.Tensor | None:
        """Lens p_l(ids[i] | ids[:i]) ``[len(layers), n]`` float64 (NaN at i = 0), computing missing entries only."""
        with self.w.lock:
            if not self._ensure([RESID]):
                return None
            resid = self.buffers[RESID]["resid"].view()  # [L+1, n, d]
            n = resid.shape[1]
            if self.lens is None or self.lens.n != n:
                self.lens = GrowingTensor((resid.shape[0],), dtype=torch.float64, fill=float("nan"))
                self.lens.append(torch.full((resid.shape[0], n), float("nan"), dtype=torch.float64))
            grid = self.lens.data  # [L+1, capacity]
            ids = torch.tensor(self.trace.ids, dtype=torch.long)
            rows = torch.tensor(sorted(set(int(l) for l in layers)), dtype=torch.long)
            missing = torch.isnan(grid[rows, 1:n]).nonzero()  # [m, 2]: (row of ``rows``, token - 1)
            layer_idx, token = rows[missing[:, 0]], missing[:, 1] + 1
            # All missing (layer, token) pairs in shared matmuls: one unembedding weight read per chunk.
            for s in range(0, len(token), LENS_ROWS):
                li, ti = layer_idx[s : s + LENS_ROWS], token[s : s + LENS_ROWS]
                z = lens_logits(self.w, resid[li, ti - 1]).double()  # [chunk, V]
                grid[li, ti] = torch.log_softmax(z, dim=-1).gather(-1, ids[ti, None])[:, 0].exp()
            self._enforce_budget()
            return grid[list(layers), :n].clone()
