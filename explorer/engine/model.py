"""ModelWrapper: the one door to the model. Forward passes with a KV cache, under a lock.

Everything that runs the network goes through here so that two threads (the app's
workers) never run it at once, and so that the batch dimension is dropped in one place:
every tensor handed out is ``[pos, ...]`` for batch size 1. Never imports Textual or Rich.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import torch

from explorer.engine.interface import ALL_CAPABILITIES
from explorer.engine.tokens import TokenRenderer, TokenText
from explorer.errors import InputError

# Keep a logits chunk under ~64 MB of float32 whatever the vocabulary (Gemma: 256k).
_LOGIT_BUDGET = 16 * 1024 * 1024


@dataclass(frozen=True)
class ModelInfo:
    name: str
    device: str
    dtype: str
    n_layers: int
    vocab_size: int
    context_length: int


class ModelWrapper:
    """A causal LM, its tokenizer and a lock: the local engine (``explorer.engine.interface.Engine``).

    Args:
        model: a transformers causal LM in eval mode.
        tokenizer: its tokenizer.
        name: how the status bar names the model.
        device: where inputs are placed ("cpu", "cuda:0", ...).
    """

    def __init__(self, model, tokenizer, *, name: str = "model", device: str | None = None) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.name = name
        self.device = device or str(next(model.parameters()).device)
        self.lock = threading.RLock()
        self.render = TokenRenderer(tokenizer)
        config = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
        self.config = config
        self.vocab_size = int(model.get_output_embeddings().weight.shape[0])
        self.n_layers = int(getattr(config, "num_hidden_layers", 0))
        ctx = getattr(config, "max_position_embeddings", None) or getattr(tokenizer, "model_max_length", 4096)
        self.context_length = int(min(ctx, 1_000_000))
        self.bos_id = tokenizer.bos_token_id
        self.eos_ids = self._eos_ids()
        # How many logit rows one forward chunk may produce.
        self.chunk_size = max(1, _LOGIT_BUDGET // max(1, self.vocab_size))

    capabilities: frozenset[str] = ALL_CAPABILITIES
    """The local engine sees everything: full logits, hidden states, attention, gradients, hooks."""

    def new_trace(self):
        from explorer.engine.trace import Trace

        return Trace(self, record=True)  # a prompt's trace: its steps record what the research modes read

    def read_view(self, trace, top_n: int, *, uid: int = 0, notes: tuple[str, ...] = ()):
        from explorer.engine.view import build_view

        return build_view(trace, top_n, uid=uid, notes=notes)

    @classmethod
    def from_loaded(cls, loaded) -> "ModelWrapper":
        return cls(loaded.model, loaded.tokenizer, name=loaded.source.display_name, device=loaded.device)

    def info(self) -> ModelInfo:
        dtype = str(next(self.model.parameters()).dtype).replace("torch.", "")
        return ModelInfo(self.name, self.device, dtype, self.n_layers, self.vocab_size, self.context_length)

    def _eos_ids(self) -> tuple[int, ...]:
        ids: list[int] = []
        gen = getattr(self.model, "generation_config", None)
        for value in (getattr(gen, "eos_token_id", None), self.tokenizer.eos_token_id):
            if value is None:
                continue
            for v in value if isinstance(value, (list, tuple)) else [value]:
                if int(v) not in ids:
                    ids.append(int(v))
        return tuple(ids)

    # ------------------------------------------------------------------ text
    def encode(self, text: str) -> list[int]:
        """Token ids for a prompt, with the special tokens the tokenizer adds (Gemma's BOS)."""
        if not isinstance(text, str):
            raise InputError("A prompt must be text.")
        return list(self.tokenizer(text, add_special_tokens=True)["input_ids"])

    def decode(self, ids) -> str:
        return self.tokenizer.decode(list(ids), skip_special_tokens=False)

    def token_text(self, token_id: int) -> TokenText:
        return self.render(token_id)

    # ---------------------------------------------------------------- forward
    def new_cache(self):
        """An empty KV cache that can be cropped at any length.

        Built without the config on purpose: with the config, transformers gives sliding-window
        layers (Gemma 2/3) a cache that forgets old keys and cannot be cropped back past the
        window. The model still applies its sliding-window mask, so results are unchanged.
        """
        from transformers import DynamicCache

        return DynamicCache()

    @torch.inference_mode()
    def forward(self, ids: list[int], cache) -> torch.Tensor:
        """Run ``ids`` after what ``cache`` holds; the cache grows in place.

        Returns:
            logits ``[len(ids), vocab]`` as float32 on the CPU.
        """
        with self.lock:
            input_ids = torch.tensor([ids], dtype=torch.long, device=self.device)  # [1, n]
            out = self.model(input_ids=input_ids, past_key_values=cache, use_cache=True)
            return out.logits[0].float().cpu()  # [n, vocab]
