"""The one engine interface the session, the commands and the modes talk to.

Two implementations exist: the local transformers engine (``ModelWrapper`` with its
``Trace``) and the OpenAI-compatible client (``explorer.engine.remote.RemoteEngine``, for
models served by vLLM, SGLang or llama.cpp's server). A mode asks ``engine.capabilities``
what the engine can do; it never tests the engine's type. Stdlib only: the UI may import
this module to read capability names before torch is loaded.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Protocol, Sequence, runtime_checkable

if TYPE_CHECKING:
    from explorer.engine.tokens import TokenText
    from explorer.engine.view import StepView

FULL_LOGITS = "full_logits"
"""Every next-token logit (exact entropy, energy, z-scores, the decoding lab computed locally)."""
HIDDEN_STATES = "hidden_states"
"""Residual stream per layer (lens, similarity, residual, SAE features)."""
ATTENTION = "attention"
"""Attention weights per layer and head."""
GRADIENTS = "gradients"
"""Backward passes through the model (saliency, integrated gradients)."""
INTERVENTIONS = "interventions"
"""Hooks that change activations during a forward pass (steering, patching)."""

ALL_CAPABILITIES = frozenset({FULL_LOGITS, HIDDEN_STATES, ATTENTION, GRADIENTS, INTERVENTIONS})
"""What the local transformers engine offers. A remote engine offers none of these: it sees
only the top-k log-probabilities the server returns."""


def missing_capabilities(engine: "Engine", required: frozenset[str] | set[str]) -> list[str]:
    """The names in ``required`` that ``engine`` cannot provide, sorted (empty = available)."""
    return sorted(set(required) - set(engine.capabilities))


def unavailable_message(missing: Sequence[str]) -> str:
    """The sentence the UI and the commands show for a mode the engine cannot run."""
    return "Not available from this engine: needs " + ", ".join(n.replace("_", " ") for n in missing) + "."


@runtime_checkable
class StepTrace(Protocol):
    """One token sequence and what the engine computed for it, grown and shrunk incrementally."""

    ids: list[int]

    def sync(self, target: Sequence[int]) -> None:
        """Make the trace hold exactly ``target`` (keep the common prefix, then extend)."""

    def actual_logp(self, i: int) -> float | None:
        """log p(ids[i] | ids[:i]); None for the first token."""


@runtime_checkable
class Engine(Protocol):
    """What every engine offers. ``ModelWrapper`` and ``RemoteEngine`` both satisfy it."""

    name: str
    """How the status bar and the exports name the model."""
    lock: threading.RLock
    """Held around every model call, so two workers never drive the engine at once."""
    vocab_size: int
    context_length: int
    bos_id: int | None
    eos_ids: tuple[int, ...]
    capabilities: frozenset[str]
    """Subset of ``ALL_CAPABILITIES``."""

    def encode(self, text: str) -> list[int]:
        """Token ids of a prompt, with the special tokens the tokenizer adds."""

    def decode(self, ids: Sequence[int]) -> str: ...

    def token_text(self, token_id: int) -> "TokenText": ...

    def new_trace(self) -> StepTrace:
        """An empty trace of this engine."""

    def read_view(self, trace: StepTrace, top_n: int, *, uid: int = 0,
                  notes: tuple[str, ...] = ()) -> "StepView":
        """The table and the per-token numbers of a synced trace, as plain numbers."""
