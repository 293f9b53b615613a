"""Apply a list of interventions to a live model with forward hooks (several compose, in list order).

:class:`InterventionHooks` installs one hook per enabled intervention at the module the one
layer locator names (:mod:`explorer.engine.layers`) plus a pre-hook on the whole model that
reads where this forward pass starts (the KV cache's length), so "from position P on" holds
for one-token steps as well as for full passes. Everything that runs the model while the
hooks are installed (stepping, generation, trees, beams, the decoding lab, captures) sees
the intervened model. ``rows`` limits the change to some batch rows: the paired stepper
runs baseline (row 0) and intervened (row 1) as one batch. Never imports Textual or Rich.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import torch

from explorer.engine.interventions.spec import Ablate, Clamp, Intervention, Steer
from explorer.engine.layers import (attention_heads, decoder_layers, first_tensor, input_tensor, locate, mlp_width,
                                    model_width, replace_input, replace_output)
from explorer.errors import AnalysisUnavailable, InputError


def default_sae_loader(path: str, fmt: str | None, layer: int):
    from explorer.engine.sae.formats.loader import load_sae

    return load_sae(Path(path), format=fmt, layer=layer)


def check_intervention(model, item: Intervention, sae=None) -> None:
    """Raise InputError (one sentence) when ``item`` does not fit ``model``: layer, head, neuron, width."""
    n_layers = len(decoder_layers(model))
    if not 0 <= item.layer < n_layers:
        raise InputError(f"Layer {item.layer} is out of range; the model has layers 0..{n_layers - 1}.")
    if isinstance(item, Steer):
        d = model_width(model)
        if len(item.vector) != d:
            raise InputError(f"The steering vector from {item.source or 'the input'} has width {len(item.vector)}, "
                             f"but the model's width is {d}.")
    elif isinstance(item, Ablate):
        if item.target == "head":
            n_heads, head_dim = attention_heads(model)
            if item.index >= n_heads:
                raise InputError(f"Head {item.index} is out of range; layer {item.layer} has heads 0..{n_heads - 1}.")
            width = head_dim
        elif item.target == "neuron":
            n = mlp_width(model)
            if item.index >= n:
                raise InputError(f"Neuron {item.index} is out of range; the MLP has neurons 0..{n - 1}.")
            width = 1
        else:
            width = model_width(model)
        if item.how == "mean" and (item.mean is None or len(item.mean) != width):
            raise InputError(f"A mean ablation of {item.describe()} needs a reference mean of width {width}.")
    elif isinstance(item, Clamp) and sae is not None:
        if item.feature >= sae.d_sae:
            raise InputError(f"Feature {item.feature} is out of range; the SAE has features 0..{sae.d_sae - 1}.")


class InterventionHooks:
    """Hooks for ``items`` on ``model``; a context manager, or ``install()`` / ``remove()``.

    Args:
        model: the transformers causal LM.
        items: interventions; disabled ones are skipped.
        sae_loader: ``(path, format, layer) -> Sae`` for clamps (default: the SAE loader).

    Raises:
        InputError: an intervention that does not fit the model.
        AnalysisUnavailable: a model whose internals cannot be hooked (no decoder layers).
    """

    def __init__(self, model, items, *, sae_loader: Callable | None = None) -> None:
        self.model = model
        self.items: tuple[Intervention, ...] = tuple(i for i in items if i.enabled)
        self.rows: tuple[int, ...] | None = None
        """Batch rows the interventions change; None = every row."""
        self.offset = 0
        """Absolute position of the first token of the current forward pass."""
        self._handles: list = []
        self._saes: dict[tuple, object] = {}
        loader = sae_loader or default_sae_loader
        for item in self.items:
            sae = None
            if isinstance(item, Clamp):
                key = (item.sae_path, item.sae_format, item.layer)
                if key not in self._saes:
                    self._saes[key] = loader(item.sae_path, item.sae_format, item.layer)
                sae = self._saes[key]
                if getattr(sae, "hook_in", None) is None:
                    raise InputError(f"{item.sae_path} is a cross-layer transcoder; clamping needs a single-layer SAE.")
            check_intervention(model, item, sae)

    @property
    def fingerprint(self) -> tuple:
        """Equal fingerprints mean equal effects (the paired stepper rebuilds its cache on a change)."""
        return self.items

    def __bool__(self) -> bool:
        return bool(self.items)

    # ---------------------------------------------------------------- install
    def install(self) -> "InterventionHooks":
        if self._handles or not self.items:
            return self
        self._handles.append(self.model.register_forward_pre_hook(self._read_offset, with_kwargs=True))
        try:
            for item in self.items:
                if isinstance(item, Steer):
                    self._hook(item.layer, "hook_resid_post", self._steer_fn(item))
                elif isinstance(item, Ablate):
                    site = item.site.split(".", 2)[2]
                    self._hook(item.layer, site, self._ablate_fn(item))
                else:
                    self._install_clamp(item)
        except Exception:
            self.remove()
            raise
        return self

    def remove(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()

    def __enter__(self) -> "InterventionHooks":
        return self.install()

    def __exit__(self, *exc) -> None:
        self.remove()

    def _read_offset(self, _module, args, kwargs):
        cache_position = kwargs.get("cache_position")
        if cache_position is not None and cache_position.numel():
            self.offset = int(cache_position.reshape(-1)[0])
            return None
        cache = kwargs.get("past_key_values")
        self.offset = int(cache.get_seq_length()) if cache is not None else 0
        return None

    def _hook(self, layer: int, site: str, edit: Callable[[torch.Tensor], torch.Tensor]) -> None:
        """Hook ``edit(x) -> x'`` at the site; the result is blended in only where ``_mask`` says."""
        where = locate(self.model, layer, site)
        if where.side == "output":
            def fwd(_m, _args, output):
                x = first_tensor(output)
                return replace_output(output, self._masked(x, edit))
            self._handles.append(where.module.register_forward_hook(fwd))
        else:
            def pre(_m, args, kwargs):
                x = input_tensor(args, kwargs)
                return replace_input(args, kwargs, self._masked(x, edit))
            self._handles.append(where.module.register_forward_pre_hook(pre, with_kwargs=True))

    def _mask(self, x: torch.Tensor, start: int) -> torch.Tensor:
        """Bool ``[B, n, 1]``: the rows in ``self.rows`` and absolute positions ≥ ``start``."""
        B, n = x.shape[0], x.shape[1]
        pos = torch.arange(self.offset, self.offset + n, device=x.device) >= start  # [n]
        rows = torch.ones(B, dtype=torch.bool, device=x.device)  # [B]
        if self.rows is not None:
            rows = torch.zeros_like(rows)
            rows[[r for r in self.rows if r < B]] = True
        return (rows[:, None] & pos[None, :])[..., None]

    def _masked(self, x: torch.Tensor, edit) -> torch.Tensor:
        new, start = edit(x)
        return torch.where(self._mask(x, start), new, x)

    # ------------------------------------------------------------------ edits
    @staticmethod
    def _steer_fn(item: Steer):
        vec = torch.tensor(item.vector, dtype=torch.float32)  # [d]

        def edit(x):
            return x + (item.strength * vec).to(device=x.device, dtype=x.dtype), item.start
        return edit

    def _ablate_fn(self, item: Ablate):
        mean = torch.tensor(item.mean, dtype=torch.float32) if item.how == "mean" else None
        s = item.strength
        if item.target == "head":
            n_heads, head_dim = attention_heads(self.model)

            def edit(x):  # x = o_proj input [B, n, H·d_head]
                z = x.view(*x.shape[:-1], n_heads, head_dim).clone()  # [B, n, H, d_head]
                h = z[..., item.index, :]
                r = torch.zeros_like(h) if mean is None else mean.to(h).expand_as(h)
                z[..., item.index, :] = h + s * (r - h)
                return z.view_as(x), item.start
        elif item.target == "neuron":
            def edit(x):  # x = down_proj input [B, n, d_mlp]
                new = x.clone()
                col = x[..., item.index]
                r = torch.zeros_like(col) if mean is None else mean.to(col)[0].expand_as(col)
                new[..., item.index] = col + s * (r - col)
                return new, item.start
        else:
            def edit(x):  # x = MLP sub-layer output [B, n, d]
                r = torch.zeros_like(x) if mean is None else mean.to(x).expand_as(x)
                return x + s * (r - x), item.start
        return edit

    def _install_clamp(self, item: Clamp) -> None:
        sae = self._saes[(item.sae_path, item.sae_format, item.layer)]
        from explorer.engine.sae.hook_names import parse_hook

        in_layer, in_site = parse_hook(sae.hook_in)
        out_layer, out_site = parse_hook(sae.hook_out)
        if in_layer != item.layer:
            raise InputError(f"The SAE {item.sae_path} reads layer {in_layer}, not layer {item.layer}.")
        sae_dev: dict[str, object] = {}

        def delta(x_in: torch.Tensor) -> torch.Tensor:
            """``dec(a') − dec(a)`` for inputs ``[B, n, d_in]`` -> ``[B, n, d_out]`` (float32)."""
            if "sae" not in sae_dev:
                sae_dev["sae"] = sae.to(x_in.device)
            m = sae_dev["sae"]
            flat = x_in.reshape(-1, x_in.shape[-1]).float()  # [B·n, d_in]
            a = m.encode(flat)  # [B·n, d_sae]
            a_f = a[:, item.feature]
            target = torch.full_like(a_f, item.value) if item.value is not None else a_f * item.scale
            new_f = a_f + item.strength * (target - a_f)
            if m.normalize == "none":
                w = m.W_dec[item.feature]  # [d_out]
                if m.feature_scale is not None:
                    w = w * m.feature_scale[item.feature]
                d = (new_f - a_f)[:, None] * w[None, :]
            else:
                a2 = a.clone()
                a2[:, item.feature] = new_f
                d = m.decode(a2, flat) - m.decode(a, flat)
            return d.reshape(*x_in.shape[:-1], -1)

        if (in_layer, in_site) == (out_layer, out_site):
            self._hook(item.layer, in_site, lambda x: (x + delta(x).to(x.dtype), item.start))
            return
        # A transcoder reads one site and writes another: remember the input, add at the output.
        seen: dict[str, torch.Tensor] = {}
        where_in = locate(self.model, in_layer, in_site)

        if where_in.side == "output":
            self._handles.append(where_in.module.register_forward_hook(
                lambda _m, _a, out: (seen.__setitem__("x", first_tensor(out).detach()), None)[1]))
        else:
            self._handles.append(where_in.module.register_forward_pre_hook(
                lambda _m, args, kwargs: (seen.__setitem__("x", input_tensor(args, kwargs).detach()), None)[1],
                with_kwargs=True))
        self._hook(out_layer, out_site, lambda y: (y + delta(seen["x"]).to(y.dtype), item.start))


def require_hookable(model) -> None:
    """Raise AnalysisUnavailable when the model's internals cannot take interventions."""
    try:
        decoder_layers(model)
    except AnalysisUnavailable:
        raise AnalysisUnavailable(
            "This model does not expose its layers (a quantized backend or a remote engine), so it cannot take "
            "interventions.") from None
