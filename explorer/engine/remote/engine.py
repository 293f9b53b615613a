"""RemoteEngine: the engine interface over an OpenAI-compatible server.

It satisfies ``explorer.engine.interface.Engine`` with an empty ``capabilities`` set: a
server returns only the top-k log-probabilities, so the next-token table has at most k
rows, the entropy shown is a labelled lower bound over the covered mass, and energy,
logits and z-scores are not available (SCIENCE 5.13). Never imports Textual or Rich.
"""

from __future__ import annotations

import math
import threading

from explorer.engine.remote.client import RemoteClient
from explorer.engine.remote.source import RemoteSource
from explorer.engine.remote.trace import RemoteTrace
from explorer.engine.tokens import TokenRenderer, TokenText
from explorer.engine.view import Candidate, StepView, TokenInfo
from explorer.errors import InputError

LN2 = math.log(2.0)
DEFAULT_TOP_K = 20
"""Rows asked of the server per position: vLLM's default cap (--max-logprobs 20)."""


def covered_entropy_bits(logprobs) -> tuple[float, float]:
    """(covered mass M = sum p_k, lower bound -sum p_k log2 p_k) over a top-k list.

    The true entropy is at least the bound: the tail's terms are all positive (SCIENCE 5.13).
    """
    mass = sum(math.exp(lp) for lp in logprobs)
    bound = -sum(math.exp(lp) * lp for lp in logprobs) / LN2
    return mass, bound


class RemoteEngine:
    """A served model behind the engine interface.

    Args:
        client: the HTTP client for the server.
        dialect: ``LlamaCppDialect`` or ``OpenAIDialect`` (how to ask for log-probabilities).
        tokenizer: the model's tokenizer (checked against the server's by the opener).
        source: the parsed address, for the name.
        top_k: rows asked of the server per position (capped by the server's limit).
    """

    capabilities: frozenset[str] = frozenset()

    def __init__(self, client: RemoteClient, dialect, tokenizer, source: RemoteSource,
                 *, model_name: str, top_k: int = DEFAULT_TOP_K, context_length: int | None = None) -> None:
        self.client = client
        self.dialect = dialect
        self.tokenizer = tokenizer
        self.source = source
        self.name = model_name
        self.lock = threading.RLock()
        self.render = TokenRenderer(tokenizer)
        self.vocab_size = len(tokenizer)
        self.top_k = min(top_k, dialect.max_top_k or top_k)
        ctx = context_length or dialect.context_length or getattr(tokenizer, "model_max_length", 4096)
        self.context_length = int(min(ctx, 1_000_000))
        self.bos_id = tokenizer.bos_token_id
        self.eos_ids = tuple(t for t in [tokenizer.eos_token_id] if t is not None)
        self.raw_logprobs = dialect.raw_logprobs
        self.device = f"server ({dialect.name})"

    # ------------------------------------------------------------------ text
    def encode(self, text: str) -> list[int]:
        if not isinstance(text, str):
            raise InputError("A prompt must be text.")
        return list(self.tokenizer(text, add_special_tokens=True)["input_ids"])

    def decode(self, ids) -> str:
        return self.tokenizer.decode(list(ids), skip_special_tokens=False)

    def token_text(self, token_id: int) -> TokenText:
        return self.render(token_id)

    # --------------------------------------------------------------- compute
    def new_trace(self) -> RemoteTrace:
        return RemoteTrace(self)

    def top_distribution(self, ids, k: int | None = None):
        """The server's top-k after ``ids`` (for trees and generation): one request."""
        with self.lock:
            return self.dialect.distribution(list(ids), k or self.top_k)

    def read_view(self, trace: RemoteTrace, top_n: int, *, uid: int = 0, notes: tuple[str, ...] = ()) -> StepView:
        render = self.token_text
        tokens = []
        for i, tid in enumerate(trace.ids):
            logp = trace.logps[i] if i else None
            rank = None
            if i and trace.dists[i - 1] is not None and tid in trace.dists[i - 1].ids:
                rank = trace.dists[i - 1].ids.index(tid) + 1
            tokens.append(TokenInfo(
                index=i, id=tid, text=render(tid), prob=None if logp is None else math.exp(logp), logprob=logp,
                logit=None, zscore=None, rank=rank, entropy_bits=None, varentropy_bits=None, energy=None))
        dist = trace.last_distribution()
        rows = min(top_n, len(dist.ids))
        candidates = tuple(
            Candidate(rank=r + 1, id=tid, text=render(tid), prob=math.exp(lp), logprob=lp, logit=None, zscore=None)
            for r, (tid, lp) in enumerate(zip(dist.ids[:rows], dist.logprobs[:rows]))
        )
        mass, bound = covered_entropy_bits(dist.logprobs)
        note = (f"Served model: the server returned its top {len(dist.ids)} of {self.vocab_size} tokens "
                f"({mass:.1%} of the probability mass); entropy is a lower bound over them, energy and "
                "logits are not available from this engine.")
        return StepView(
            uid=uid, ids=tuple(trace.ids), tokens=tuple(tokens), candidates=candidates,
            next_entropy_bits=bound, next_varentropy_bits=None, next_energy=None,
            vocab_size=self.vocab_size, notes=tuple(notes) + (note,),
            covered_mass=mass, entropy_is_lower_bound=True,
        )

    def close(self) -> None:
        self.client.close()
