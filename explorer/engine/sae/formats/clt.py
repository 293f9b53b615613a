"""circuit-tracer cross-layer transcoders (CLTs): one folder of per-layer encoder and decoder files.

Layout (Ameisen et al. 2025; circuit-tracer)::

    config.yaml               model_kind: cross_layer_transcoder, feature_input_hook: hook_resid_mid,
                              feature_output_hook: hook_mlp_out, optional activation
    W_enc_{i}.safetensors     W_enc_{i} [d_tc, d_model], b_enc_{i} [d_tc], b_dec_{i} [d_model],
                              optional threshold_{i} [d_tc], optional W_skip_{i} [d_model, d_model]
    W_dec_{i}.safetensors     W_dec_{i} [d_tc, n_layers - i, d_model]

A feature of layer i reads resid_mid_i and writes ``f · W_dec_i[:, l - i, :]`` into the MLP
output of every layer l ≥ i; the MLP output of layer l is predicted as
``Σ_{i ≤ l} f_i W_dec_i[:, l − i, :] + b_dec_l (+ x_l @ W_skip_l)``. Decoders are read lazily,
one row per active feature, so a large CLT is never loaded whole. Never imports Textual or Rich.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch

from explorer.engine.sae.base import SaeLoadError, expect_shape, require
from explorer.engine.sae.formats.files import read_safetensors, read_yaml, safetensors_keys


class CrossLayerTranscoder:
    """A CLT folder, read lazily.

    Args:
        directory: the folder with config.yaml (optional) and the W_enc_i / W_dec_i files.
        hook: TL-style site the features read, overriding the config (e.g. "hook_resid_mid").
    """

    format = "circuit_tracer_clt"

    def __init__(self, directory: Path, hook: str | None = None) -> None:
        self.directory = Path(directory)
        self.source = str(self.directory)
        cfg_path = self.directory / "config.yaml"
        self.config = read_yaml(cfg_path) if cfg_path.is_file() else {}
        enc_files = {int(m.group(1)): p for p in self.directory.glob("W_enc_*.safetensors")
                     if (m := re.fullmatch(r"W_enc_(\d+)\.safetensors", p.name))}
        if not enc_files:
            raise SaeLoadError(f"{self.directory} holds no W_enc_0.safetensors; it is not a cross-layer transcoder.")
        self.n_layers = max(enc_files) + 1
        missing = [i for i in range(self.n_layers) if i not in enc_files]
        if missing:
            raise SaeLoadError(f"{self.directory}: cross-layer transcoder files W_enc_{missing[0]}.safetensors "
                               f"(and maybe others) are missing; expected one per layer 0..{self.n_layers - 1}.")
        shapes = safetensors_keys(enc_files[0])
        if "W_enc_0" not in shapes:
            raise SaeLoadError(f"{enc_files[0]} has no tensor W_enc_0 (expected [d_tc, d_model]).")
        self.d_tc, self.d_model = shapes["W_enc_0"]
        site_in = hook.split(".", 2)[-1] if hook and hook.startswith("blocks.") else hook
        self.site_in = str(site_in or self.config.get("feature_input_hook", "hook_resid_mid")).removeprefix("blocks.")
        self.site_out = str(self.config.get("feature_output_hook", "hook_mlp_out"))
        act = str(self.config.get("activation") or "")
        self._activation = {"jump_relu": "jumprelu"}.get(act, act)
        self._enc: dict[int, tuple] = {}
        self._dec_rows: dict[tuple[int, int], torch.Tensor] = {}

    def hook_in(self, layer: int) -> str:
        return f"blocks.{layer}.{self.site_in}"

    def hook_out(self, layer: int) -> str:
        return f"blocks.{layer}.{self.site_out}"

    # -------------------------------------------------------------- reading
    def _encoder(self, i: int) -> tuple:
        """(W_enc [d_model, d_tc], b_enc [d_tc], threshold [d_tc] | None, b_dec [d_model], W_skip | None)."""
        if i in self._enc:
            return self._enc[i]
        if not 0 <= i < self.n_layers:
            raise SaeLoadError(f"{self.directory}: layer {i} is outside this CLT's 0..{self.n_layers - 1}.")
        path = self.directory / f"W_enc_{i}.safetensors"
        src = str(path)
        t = read_safetensors(path)
        W = require(t, f"W_enc_{i}", src, f"[{self.d_tc}, {self.d_model}]")
        expect_shape(W, (self.d_tc, self.d_model), f"W_enc_{i}", src, "[d_tc, d_model] (circuit-tracer orientation)")
        b_enc = require(t, f"b_enc_{i}", src, f"[{self.d_tc}]")
        expect_shape(b_enc, (self.d_tc,), f"b_enc_{i}", src)
        b_dec = require(t, f"b_dec_{i}", src, f"[{self.d_model}]")
        expect_shape(b_dec, (self.d_model,), f"b_dec_{i}", src)
        thr = t.get(f"threshold_{i}")
        if thr is not None:
            thr = thr.reshape(-1)
            expect_shape(thr, (self.d_tc,), f"threshold_{i}", src)
        skip = t.get(f"W_skip_{i}")
        if skip is not None:
            expect_shape(skip, (self.d_model, self.d_model), f"W_skip_{i}", src)
        self._enc[i] = (W.T.contiguous(), b_enc, thr, b_dec, skip)
        return self._enc[i]

    def _decoder_rows(self, i: int, target: int, features: list[int]) -> torch.Tensor:
        """``W_dec_i[features, target − i, :]`` as ``[len(features), d_model]``, read row by row."""
        from safetensors import safe_open

        if not i <= target < self.n_layers:
            raise SaeLoadError(f"{self.directory}: layer {i} features cannot write to layer {target}.")
        need = [j for j in features if (i, target, j) not in self._dec_rows]
        if need:
            path = self.directory / f"W_dec_{i}.safetensors"
            if not path.is_file():
                raise SaeLoadError(f"{path} is missing (expected W_dec_{i} [{self.d_tc}, {self.n_layers - i}, {self.d_model}]).")
            try:
                with safe_open(str(path), framework="pt", device="cpu") as f:
                    sl = f.get_slice(f"W_dec_{i}")
                    shape = tuple(sl.get_shape())
                    if shape != (self.d_tc, self.n_layers - i, self.d_model):
                        raise SaeLoadError(f"{path}: W_dec_{i} has shape {list(shape)}, expected "
                                           f"[{self.d_tc}, {self.n_layers - i}, {self.d_model}].")
                    for j in need:
                        self._dec_rows[(i, target, j)] = sl[j:j + 1, target - i:target - i + 1, :].reshape(-1).float()
            except SaeLoadError:
                raise
            except Exception as exc:
                raise SaeLoadError(f"{path} is not a readable safetensors file with W_dec_{i} ({exc}).") from exc
        if not features:
            return torch.zeros(0, self.d_model)
        return torch.stack([self._dec_rows[(i, target, j)] for j in features])  # [m, d_model]

    # ---------------------------------------------------------------- maths
    def encode_layer(self, i: int, x: torch.Tensor) -> torch.Tensor:
        """Features of layer i for its input ``x [n, d_model]``: ``[n, d_tc]``."""
        W, b, thr, _, _ = self._encoder(i)
        pre = x.float().cpu() @ W + b  # [n, d_tc]
        if thr is not None or self._activation == "jumprelu":
            if thr is None:
                raise SaeLoadError(f"{self.directory}: activation jump_relu needs threshold_{i} in W_enc_{i}.safetensors.")
            return pre * (pre > thr).to(pre.dtype)
        return torch.relu(pre)

    def reconstruct(self, target: int, feats: dict[int, torch.Tensor], x_target: torch.Tensor | None = None) -> torch.Tensor:
        """Predicted MLP output of layer ``target`` from features of layers ≤ target: ``[n, d_model]``."""
        _, _, _, b_dec, skip = self._encoder(target)
        n = next(iter(feats.values())).shape[0]
        out = torch.zeros(n, self.d_model) + b_dec
        for i in range(target + 1):
            f = feats[i]  # [n, d_tc]
            active = sorted(set(torch.nonzero(f, as_tuple=True)[1].tolist()))
            if active:
                out = out + f[:, active] @ self._decoder_rows(i, target, active)
        if skip is not None:
            if x_target is None:
                raise ValueError("reconstruct needs the layer input for the skip connection")
            out = out + x_target.float().cpu() @ skip  # circuit-tracer's CLT convention: x @ W_skip
        return out

    def contributions(self, target: int, feats_at_pos: dict[int, torch.Tensor]) -> list[tuple[int, int, float, torch.Tensor]]:
        """What each active feature (layer i ≤ target, index j) writes into layer ``target``'s MLP output at one position.

        Args:
            target: the layer whose MLP output is explained.
            feats_at_pos: layer -> feature activations ``[d_tc]`` at that position.

        Returns:
            (layer, feature, activation, written vector ``[d_model]``) per active feature.
        """
        out = []
        for i in range(target + 1):
            f = feats_at_pos[i]
            active = torch.nonzero(f).flatten().tolist()
            if not active:
                continue
            rows = self._decoder_rows(i, target, active)  # [m, d_model]
            for r, j in enumerate(active):
                out.append((i, j, float(f[j]), f[j] * rows[r]))
        return out

    def bias(self, target: int) -> torch.Tensor:
        return self._encoder(target)[3]
