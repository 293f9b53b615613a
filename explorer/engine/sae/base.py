"""The one in-memory form every SAE / transcoder file format is loaded into, and its maths.

Every loader (one module per format) turns its file into a :class:`Sae` in the SAELens
orientation (SCIENCE.md 5.8 and the formats table)::

    W_enc [d_in, d_sae]    b_enc [d_sae]    W_dec [d_sae, d_out]    b_dec [d_out]
    threshold [d_sae] (JumpReLU)    W_skip [d_out, d_in], added as x @ W_skip.T

Encode: ``x' = norm_in(x) - b_dec * apply_b_dec_to_input``; ``pre = x' W_enc + b_enc``; then
ReLU, JumpReLU ``ReLU(pre) * 1[pre > θ]`` (circuit-tracer: ``pre * 1[pre > θ]``), TopK (the k
largest, ReLU'd) or GroupMax (the max of each of k equal groups). Decode:
``ŷ = norm_out(f W_dec + b_dec) + x W_skipᵀ``. Quality figures: L0 = number of non-zero
features; FVU = ‖y − ŷ‖² / ‖y − mean‖².

A file that does not fit (wrong shape, missing tensor, transposed matrix) raises
:class:`SaeLoadError` with one sentence naming the file and the shape that was expected.
Never imports Textual or Rich.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import torch

from explorer.errors import AnalysisUnavailable

ACTIVATIONS = ("relu", "jumprelu", "topk", "groupmax")
NORMALISATIONS = ("none", "constant_norm_rescale", "layer_norm", "expected_average_only_in")


class SaeLoadError(AnalysisUnavailable):
    """An SAE / transcoder file that cannot be used with this model, said in one sentence.

    An AnalysisUnavailable: the features mode shows the sentence in its panel and the rest
    of the app keeps working; a command prints it and exits with code 2.
    """

    title = "SAE could not be loaded"


def shape_str(shape) -> str:
    return "[" + ", ".join(str(int(s)) for s in shape) + "]"


def expect_shape(tensor: torch.Tensor, expected: tuple, name: str, source: str, hint: str = "") -> None:
    """Raise SaeLoadError unless ``tensor.shape`` matches ``expected`` (None = any size).

    Args:
        tensor: the loaded tensor.
        expected: sizes, with None where any size is fine.
        name: the tensor's key in the file.
        source: the file, for the message.
        hint: extra words naming the meaning of the dimensions, e.g. "[d_in, d_sae]".
    """
    ok = tensor.dim() == len(expected) and all(e is None or int(s) == int(e) for s, e in zip(tensor.shape, expected))
    if ok:
        return
    want = "[" + ", ".join("*" if e is None else str(e) for e in expected) + "]"
    transposed = (tensor.dim() == 2 == len(expected)
                  and all(e is None or int(s) == int(e) for s, e in zip(reversed(tensor.shape), expected)))
    extra = " (it looks transposed)" if transposed else ""
    raise SaeLoadError(
        f"{source}: {name} has shape {shape_str(tensor.shape)}, expected {want}"
        f"{' ' + hint if hint else ''}{extra}."
    )


def require(tensors: dict[str, torch.Tensor], name: str, source: str, expected: str) -> torch.Tensor:
    """The tensor ``name`` or a SaeLoadError naming the file and the expected shape."""
    if name not in tensors:
        found = ", ".join(sorted(tensors)) or "none"
        raise SaeLoadError(f"{source} has no tensor {name} (expected {expected}); tensors found: {found}.")
    return tensors[name]


@dataclass
class Sae:
    """A single-layer SAE or (skip) transcoder in SAELens orientation, float32.

    ``hook_in`` is the TransformerLens hook the features read; ``hook_out`` the hook the
    decoder predicts (the same for an SAE, ``blocks.L.hook_mlp_out`` for a transcoder).
    """

    W_enc: torch.Tensor  # [d_in, d_sae]
    b_enc: torch.Tensor  # [d_sae]
    W_dec: torch.Tensor  # [d_sae, d_out]
    b_dec: torch.Tensor  # [d_out]
    hook_in: str
    hook_out: str
    format: str
    source: str
    activation: str = "relu"
    threshold: torch.Tensor | None = None  # [d_sae]
    k: int | None = None
    apply_b_dec_to_input: bool = False
    normalize: str = "none"
    norm_scale: float | None = None
    """expected_average_only_in: inputs are multiplied by this (√d / average norm), outputs divided."""
    W_skip: torch.Tensor | None = None  # [d_out, d_in], added as x @ W_skip.T
    skip_ambiguous: bool = False
    """True when the format does not fix the skip orientation (Gemma Scope 2): resolve_skip() decides."""
    feature_scale: torch.Tensor | None = None  # [d_sae], SAELens finetuning scaling factor
    relu_before_threshold: bool = True
    """JumpReLU as ReLU(pre)·1[pre>θ] (SAELens, Gemma Scope); False: pre·1[pre>θ] (circuit-tracer)."""
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.validate()

    # ------------------------------------------------------------- shape
    @property
    def d_in(self) -> int:
        return int(self.W_enc.shape[0])

    @property
    def d_sae(self) -> int:
        return int(self.W_enc.shape[1])

    @property
    def d_out(self) -> int:
        return int(self.W_dec.shape[1])

    @property
    def is_transcoder(self) -> bool:
        return self.hook_in != self.hook_out

    def validate(self) -> None:
        """Check every tensor against the others; raise SaeLoadError naming the file."""
        src = self.source
        if self.activation not in ACTIVATIONS:
            raise SaeLoadError(f"{src}: activation {self.activation!r} is not supported (use one of {', '.join(ACTIVATIONS)}).")
        if self.normalize not in NORMALISATIONS:
            raise SaeLoadError(f"{src}: normalize_activations {self.normalize!r} is not supported "
                               f"(use one of {', '.join(NORMALISATIONS)}).")
        expect_shape(self.W_enc, (None, None), "W_enc", src, "[d_in, d_sae]")
        d_in, d_sae = self.d_in, self.d_sae
        expect_shape(self.b_enc, (d_sae,), "b_enc", src, "[d_sae]")
        expect_shape(self.W_dec, (d_sae, None), "W_dec", src, "[d_sae, d_out]")
        expect_shape(self.b_dec, (self.d_out,), "b_dec", src, "[d_out]")
        if self.threshold is not None:
            expect_shape(self.threshold, (d_sae,), "threshold", src, "[d_sae]")
        if self.activation == "jumprelu" and self.threshold is None:
            raise SaeLoadError(f"{src}: a JumpReLU SAE needs a threshold tensor of shape [{d_sae}].")
        if self.activation in ("topk", "groupmax"):
            if not self.k or self.k < 1 or self.k > d_sae:
                raise SaeLoadError(f"{src}: a {self.activation} SAE needs k between 1 and d_sae = {d_sae}, found {self.k}.")
            if self.activation == "groupmax" and d_sae % self.k:
                raise SaeLoadError(f"{src}: groupmax needs d_sae ({d_sae}) divisible by k ({self.k}).")
        if self.W_skip is not None:
            expect_shape(self.W_skip, (self.d_out, d_in), "W_skip", src, "[d_out, d_in]")
        if self.feature_scale is not None:
            expect_shape(self.feature_scale, (d_sae,), "scaling_factor", src, "[d_sae]")
        if self.apply_b_dec_to_input and self.d_out != d_in:
            raise SaeLoadError(f"{src}: apply_b_dec_to_input needs d_out = d_in, found {self.d_out} and {d_in}.")
        if self.normalize == "expected_average_only_in" and not self.norm_scale:
            raise SaeLoadError(f"{src}: normalize_activations expected_average_only_in needs the norm "
                               "scaling factor (norm_scaling_factor in cfg.json), which is missing.")

    def to(self, device: str | torch.device) -> "Sae":
        """A copy with every tensor on ``device`` (float32)."""
        def mv(t):
            return None if t is None else t.to(device=device, dtype=torch.float32)

        return replace(self, W_enc=mv(self.W_enc), b_enc=mv(self.b_enc), W_dec=mv(self.W_dec),
                       b_dec=mv(self.b_dec), threshold=mv(self.threshold), W_skip=mv(self.W_skip),
                       feature_scale=mv(self.feature_scale))

    @property
    def device(self) -> torch.device:
        return self.W_enc.device

    # ----------------------------------------------------- normalisation
    def _norm_in(self, x: torch.Tensor) -> tuple[torch.Tensor, Any]:
        """Input normalisation of the format; returns the normalised input and what undoes it."""
        if self.normalize == "constant_norm_rescale":
            coeff = (self.d_in ** 0.5) / x.norm(dim=-1, keepdim=True).clamp_min(1e-12)  # [n, 1]
            return x * coeff, ("scale", coeff)
        if self.normalize == "layer_norm":
            mu = x.mean(dim=-1, keepdim=True)  # [n, 1]
            xc = x - mu
            std = xc.std(dim=-1, keepdim=True)  # [n, 1]
            return xc / (std + 1e-5), ("affine", mu, std)
        if self.normalize == "expected_average_only_in":
            return x * self.norm_scale, ("scale", torch.tensor(self.norm_scale, device=x.device))
        return x, None

    @staticmethod
    def _norm_out(y: torch.Tensor, state: Any) -> torch.Tensor:
        if state is None:
            return y
        if state[0] == "scale":
            return y / state[1]
        _, mu, std = state
        return y * std + mu

    # ------------------------------------------------------------ maths
    def pre_activation(self, x: torch.Tensor) -> torch.Tensor:
        """``pre = (norm_in(x) − b_dec·apply) W_enc + b_enc`` for ``x [n, d_in]``; returns ``[n, d_sae]``."""
        x = x.to(device=self.device, dtype=torch.float32)
        xn, _ = self._norm_in(x)
        if self.apply_b_dec_to_input:
            xn = xn - self.b_dec
        return xn @ self.W_enc + self.b_enc  # [n, d_sae]

    def activate(self, pre: torch.Tensor) -> torch.Tensor:
        """The format's non-linearity on pre-activations ``[n, d_sae]``."""
        if self.activation == "relu":
            return torch.relu(pre)
        if self.activation == "jumprelu":
            gate = (pre > self.threshold).to(pre.dtype)
            return (torch.relu(pre) if self.relu_before_threshold else pre) * gate
        if self.activation == "topk":
            vals, idx = torch.topk(pre, self.k, dim=-1)  # [n, k]
            return torch.zeros_like(pre).scatter_(-1, idx, torch.relu(vals))
        # groupmax: the max of each of k equal, contiguous groups of latents
        n = pre.shape[0]
        groups = torch.relu(pre).view(n, self.k, -1)  # [n, k, d_sae / k]
        vals, idx = groups.max(dim=-1)  # [n, k]
        offsets = torch.arange(self.k, device=pre.device) * groups.shape[-1]
        return torch.zeros_like(pre).scatter_(-1, idx + offsets, vals)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Feature activations ``[n, d_sae]`` for inputs ``x [n, d_in]``."""
        return self.activate(self.pre_activation(x))

    def decode(self, f: torch.Tensor, x: torch.Tensor | None = None) -> torch.Tensor:
        """Reconstruction / prediction ``[n, d_out]`` from features ``f [n, d_sae]``.

        Args:
            f: feature activations.
            x: the input the features came from; needed for a skip connection and for a
                per-token input normalisation, which the output undoes.
        """
        f = f.to(device=self.device, dtype=torch.float32)
        if self.feature_scale is not None:
            f = f * self.feature_scale
        y = f @ self.W_dec + self.b_dec  # [n, d_out]
        if self.normalize != "none":
            if x is None:
                raise ValueError("decode needs the input x to undo the input normalisation")
            _, state = self._norm_in(x.to(device=self.device, dtype=torch.float32))
            y = self._norm_out(y, state)
        if self.W_skip is not None:
            if x is None:
                raise ValueError("decode needs the input x for the skip connection")
            y = y + x.to(device=self.device, dtype=torch.float32) @ self.W_skip.T
        return y

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(features [n, d_sae], reconstruction [n, d_out])``."""
        f = self.encode(x)
        return f, self.decode(f, x)

    def resolve_skip(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
        """Pick the skip orientation that reconstructs ``y`` from ``x`` better (SCIENCE.md trap).

        Gemma Scope 2 stores ``affine_skip_connection``; circuit-tracer adds ``x @ affine``,
        SAELens ``x @ affine.T``. Only real activations tell which is right, so both are
        tried and the one with the lower squared error is kept.

        Returns:
            {"as_stored": err, "transposed": err} squared errors summed over the tokens.
        """
        if self.W_skip is None:
            return {}
        with torch.no_grad():
            errs = {}
            stored = self.W_skip
            for name, w in (("as_stored", stored), ("transposed", stored.T.contiguous())):
                self.W_skip = w
                errs[name] = float(((y.to(self.device).float() - self.forward(x)[1]) ** 2).sum())
            self.W_skip = stored if errs["as_stored"] <= errs["transposed"] else stored.T.contiguous()
        self.skip_ambiguous = False
        self.metadata["skip_orientation"] = "as_stored" if errs["as_stored"] <= errs["transposed"] else "transposed"
        return errs


# ------------------------------------------------------------------ metrics
def l0(features: torch.Tensor) -> torch.Tensor:
    """Number of active (non-zero) features per token: ``[n, d_sae] -> [n]``."""
    return (features != 0).sum(dim=-1)


def squared_error(y: torch.Tensor, y_hat: torch.Tensor) -> torch.Tensor:
    """``‖y − ŷ‖²`` per token: ``[n, d] -> [n]``."""
    return ((y.float() - y_hat.float()) ** 2).sum(dim=-1)


MASSIVE_FACTOR = 10.0


def ordinary_rows(y: torch.Tensor, skip_first: bool = True) -> torch.Tensor:
    """Which tokens count for FVU statistics: a bool mask ``[n]``.

    Left out: position 0 (when the prompt has at least three tokens) and "massive activation"
    tokens whose norm is over ``MASSIVE_FACTOR`` times the median norm. Both are attention
    sinks: in SmolLM2's residual stream their norm is ~100-200x the others', so a single one
    holds most of a prompt's variance and would make every other token look perfectly
    reconstructed (and the SAE look far better than it is).
    """
    n = y.shape[0]
    keep = torch.ones(n, dtype=torch.bool)
    if skip_first and n >= 3:
        keep[0] = False
    norms = y.float().norm(dim=-1).cpu()
    if keep.sum() >= 2:
        keep &= norms <= MASSIVE_FACTOR * norms[keep].median()
    return keep


def variance_denominator(y: torch.Tensor, skip_first: bool = True) -> float | None:
    """Mean over the ordinary tokens (see ``ordinary_rows``) of ``‖y_t − ȳ‖²``, ȳ their mean:
    the FVU denominator of one token; None when fewer than two tokens count."""
    rows = y[ordinary_rows(y, skip_first)]
    if rows.shape[0] < 2:
        return None
    var = float(((rows.float() - rows.float().mean(dim=0)) ** 2).sum(dim=-1).mean())
    return var if var > 0 else None


def fvu(y: torch.Tensor, y_hat: torch.Tensor) -> float:
    """Fraction of variance unexplained over a set of tokens: ``Σ‖y − ŷ‖² / Σ‖y − ȳ‖²``."""
    y = y.float()
    denom = float(((y - y.mean(dim=0)) ** 2).sum())
    return float(squared_error(y, y_hat).sum()) / denom if denom > 0 else float("nan")
