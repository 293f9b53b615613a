"""Growing tensors for what a Trace records per token, and the attention row of new queries.

``GrowingTensor`` holds one tensor that grows along a token axis (or two, for a square
attention matrix) with spare capacity, so an append writes in place and a pop only moves
the length back. Views handed out stay valid: a crop after a view was taken copies first.

``new_query_attention`` is the attention of the tokens just run, computed from the KV
cache the forward pass has just filled: the new queries against every cached key, with the
module's own scaling, soft-capping, sliding window and grouped key/value heads. It is the
eager attention's arithmetic (q·kᵀ·scaling, tanh soft-cap, causal/sliding mask, float32
softmax) without switching the model off sdpa. Never imports Textual or Rich.
"""

from __future__ import annotations

import sys
import weakref

import torch

GROWTH = 1.25  # capacity grows by a quarter: a square attention buffer must not double at 1,000 tokens
MIN_CAPACITY = 32


class GrowingTensor:
    """``[*lead, n, *tail]`` (or ``[*lead, n, n]`` when ``square``) with capacity for more tokens."""

    def __init__(self, lead: tuple[int, ...], tail: tuple[int, ...] = (), *, square: bool = False,
                 dtype: torch.dtype = torch.float32, fill: float = 0.0) -> None:
        self.lead, self.tail, self.square = tuple(lead), tuple(tail), square
        self.dtype, self.fill = dtype, fill
        self.n = 0
        self.data: torch.Tensor | None = None
        self._views: list[weakref.ref] = []  # views of data[:n] handed out: while one lives, crops copy

    @property
    def capacity(self) -> int:
        return 0 if self.data is None else int(self.data.shape[len(self.lead)])

    @property
    def nbytes(self) -> int:
        return 0 if self.data is None else self.data.numel() * self.data.element_size()

    def _shape(self, cap: int) -> tuple[int, ...]:
        return (*self.lead, cap, *((cap,) if self.square else self.tail))

    def _index(self, n: int) -> tuple:
        lead = (slice(None),) * len(self.lead)
        return (*lead, slice(0, n), slice(0, n)) if self.square else (*lead, slice(0, n))

    @torch.inference_mode()  # the buffers are inference tensors: every write runs in this mode
    def _reserve(self, n: int) -> None:
        if n <= self.capacity:
            return
        cap = max(n, int(self.capacity * GROWTH) + 1, MIN_CAPACITY)
        new = torch.full(self._shape(cap), self.fill, dtype=self.dtype)
        if self.n:
            new[self._index(self.n)] = self.data[self._index(self.n)]
        self.data = new
        self._views = []  # live views keep the old storage; the new one is not shared

    @torch.inference_mode()
    def append(self, values: torch.Tensor) -> None:
        """Add ``c`` tokens: ``[*lead, c, *tail]``, or ``[*lead, c, n + c]`` rows when square."""
        axis = len(self.lead)
        c = int(values.shape[axis])
        end = self.n + c
        self._reserve(end)
        lead = (slice(None),) * axis
        if self.square:
            self.data[(*lead, slice(self.n, end), slice(0, end))] = values.to(self.dtype)
        else:
            self.data[(*lead, slice(self.n, end))] = values.to(self.dtype)
        self.n = end

    @torch.inference_mode()
    def crop(self, n: int) -> None:
        """Keep the first ``n`` tokens."""
        n = max(0, min(n, self.n))
        if n == self.n:
            return
        if any(ref() is not None for ref in self._views):
            # A mode still holds a view: the next append would overwrite what it shows, so move to
            # fresh storage of the same capacity (rare: views live only while a mode computes).
            keep = self.data[self._index(n)].clone()
            self.data = torch.full(self._shape(self.capacity), self.fill, dtype=self.dtype)
            self.data[self._index(n)] = keep
            self._views = []
        elif self.fill != 0.0 or self.square:
            # Restore the fill past n: square rows and lens columns are read as "not yet computed".
            lead = (slice(None),) * len(self.lead)
            self.data[(*lead, slice(n, self.n))] = self.fill
            if self.square:
                self.data[(*lead, slice(0, n), slice(n, self.n))] = self.fill
        self.n = n

    def view(self) -> torch.Tensor:
        """``data[..., :n(, :n)]`` without a copy; later crops copy rather than overwrite it."""
        if self.data is None:
            return torch.full(self._shape(0), self.fill, dtype=self.dtype)
        view = self.data[self._index(self.n)]
        self._views = [ref for ref in self._views if ref() is not None] + [weakref.ref(view)]
        return view

    @torch.inference_mode()
    def copy(self) -> "GrowingTensor":
        other = GrowingTensor(self.lead, self.tail, square=self.square, dtype=self.dtype, fill=self.fill)
        if self.data is not None:
            other.data = self.data.clone()
            other.n = self.n
        return other


def supports_query_attention(attn: torch.nn.Module) -> bool:
    """True when the attention module has the parts ``new_query_attention`` recomputes."""
    module = sys.modules.get(type(attn).__module__)
    return (all(hasattr(attn, a) for a in ("q_proj", "head_dim", "scaling", "layer_idx"))
            and hasattr(module, "apply_rotary_pos_emb"))


@torch.inference_mode()
def new_query_attention(attn: torch.nn.Module, hidden: torch.Tensor, position_embeddings, keys: torch.Tensor,
                        first: int) -> torch.Tensor:
    """Attention weights of ``c`` new queries over all ``n`` cached keys, per query head.

    Args:
        attn: the block's attention module (Llama/Qwen/Mistral/Gemma 2 layout).
        hidden: ``[1, c, d]`` its input (after the block's input norm), as the forward saw it.
        position_embeddings: the ``(cos, sin)`` pair the forward was given.
        keys: ``[1, kv_heads, n, head_dim]`` the cached keys after the forward (rotary applied).
        first: position of the first new query (``n - c``).

    Returns:
        ``[H, c, n]`` float32 weights; row j covers keys 0..first + j (zero beyond).
    """
    rotary = sys.modules[type(attn).__module__].apply_rotary_pos_emb
    c = hidden.shape[1]
    q = attn.q_proj(hidden).view(1, c, -1, attn.head_dim)  # [1, c, H, hd]
    if hasattr(attn, "q_norm"):  # Qwen 3 / Gemma 3 normalise queries per head before rotary
        q = attn.q_norm(q)
    q = q.transpose(1, 2)  # [1, H, c, hd]
    cos, sin = position_embeddings
    q, _ = rotary(q, q, cos, sin)
    n_heads, n_kv = q.shape[1], keys.shape[1]
    k = keys.repeat_interleave(n_heads // n_kv, dim=1)  # [1, H, n, hd]: query head h uses kv head h // groups
    scores = torch.matmul(q, k.transpose(2, 3)) * attn.scaling  # [1, H, c, n]
    softcap = getattr(attn, "attn_logit_softcapping", None)
    if softcap:
        scores = torch.tanh(scores / softcap) * softcap
    n = keys.shape[2]
    query_pos = torch.arange(first, first + c)[:, None]  # [c, 1]
    key_pos = torch.arange(n)[None, :]  # [1, n]
    allowed = key_pos <= query_pos
    window = getattr(attn, "sliding_window", None)
    if window:
        allowed = allowed & (key_pos > query_pos - window)
    scores = scores.float().masked_fill(~allowed, float("-inf"))
    return torch.softmax(scores, dim=-1)[0]  # [H, c, n]
