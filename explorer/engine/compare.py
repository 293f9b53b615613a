"""Two models stepped together over the same token ids, and what differs between them (SCIENCE.md 5.12).

Model A is the session's model and keeps its own Trace per prompt; a Comparison keeps, per
prompt, a second Trace for model B and the per-position comparison numbers. Every append is
one incremental (KV-cached) step in each model: both traces are extended over the same chunk
and the two chunks of full logits rows are compared before they are dropped. A pop crops
both traces and the comparison lists; nothing is recomputed.

Indexing follows explorer.engine.trace: position p holds the distributions that predict
ids[p + 1], so token i's KL is that of position i − 1 (none for the first token).

Headless API (what the UI and the commands use):
    comparison = Comparison(wrapper_a, wrapper_b); session.comparison = comparison
    session.compute()                 # steps A and B together (Session.trace_for delegates here)
    comparison.view(session)          # ComparisonView: per token KL, TV, log p_A − log p_B, table rows
    comparison.swap(session)          # B becomes A (bookkeeping only, no forward pass)
    score_ids(comparison, ids, ...)   # a whole file in windows, for the compare command
Never imports Textual or Rich.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

import torch

from explorer.engine.compare_load import check_vocabularies
from explorer.engine.compare_stats import ComparisonSummary, PairRows, compare_rows, summarize
from explorer.engine.model import ModelWrapper
from explorer.engine.tokens import TokenText
from explorer.engine.trace import Trace
from explorer.errors import InputError

if TYPE_CHECKING:
    from explorer.engine.session import Session

_LISTS = ("kl_ab", "kl_ba", "tv", "top_a", "top_b")


@dataclass
class PairState:
    """Model B's trace of one prompt and the comparison at each of its positions."""

    b: Trace
    kl_ab: list[float] = field(default_factory=list)
    kl_ba: list[float] = field(default_factory=list)
    tv: list[float] = field(default_factory=list)
    top_a: list[int] = field(default_factory=list)
    top_b: list[int] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.kl_ab)

    def add(self, rows: PairRows) -> None:
        self.kl_ab.extend(rows.kl_ab.tolist())
        self.kl_ba.extend(rows.kl_ba.tolist())
        self.tv.extend(rows.tv.tolist())
        self.top_a.extend(rows.top_a.tolist())
        self.top_b.extend(rows.top_b.tolist())

    def truncate(self, n: int) -> None:
        for name in _LISTS:
            del getattr(self, name)[n:]
        if n <= 0:
            self.b.reset()
        else:
            self.b.truncate(n)

    def clone(self) -> "PairState":
        return PairState(self.b.clone(), *(list(getattr(self, name)) for name in _LISTS))

    def swapped(self, trace_a: Trace) -> "PairState":
        """The same state seen from the other side: A's trace becomes the B trace."""
        return PairState(trace_a, list(self.kl_ba), list(self.kl_ab), list(self.tv), list(self.top_b), list(self.top_a))


@dataclass(frozen=True)
class TokenComparison:
    """One prompt token and the two distributions it was drawn from (None for the first token)."""

    index: int
    id: int
    text: TokenText
    kl: float | None
    """KL(A‖B) in nats of the distributions at the previous position."""
    kl_reverse: float | None
    """KL(B‖A) in nats."""
    tv: float | None
    logp_a: float | None
    logp_b: float | None
    top_a: int | None
    top_b: int | None

    @property
    def delta_logp(self) -> float | None:
        """log p_A(token) − log p_B(token), in nats."""
        return None if self.logp_a is None or self.logp_b is None else self.logp_a - self.logp_b

    @property
    def same_top(self) -> bool | None:
        return None if self.top_a is None else self.top_a == self.top_b


@dataclass(frozen=True)
class CandidateComparison:
    """A row of the next-token table: a token from either model's top list."""

    id: int
    text: TokenText
    p_a: float
    p_b: float
    rank_a: int
    rank_b: int

    @property
    def delta(self) -> float:
        """p_A − p_B."""
        return self.p_a - self.p_b


@dataclass(frozen=True)
class ComparisonView:
    """Plain numbers of a comparison after a step (what the UI and the divergence mode read)."""

    model_a: str
    model_b: str
    ids: tuple[int, ...]
    tokens: tuple[TokenComparison, ...]
    next_kl: float
    """KL(A‖B) of the next-token distributions, in nats."""
    next_kl_reverse: float
    next_tv: float
    next_same_top: bool
    candidates: tuple[CandidateComparison, ...]
    summary: ComparisonSummary | None
    """Over the prompt's tokens (None for a one-token prompt)."""
    notes: tuple[str, ...] = ()


class Comparison:
    """Model B beside the session's model A, stepped together prompt by prompt.

    Args:
        a: model A (the session's wrapper).
        b: model B; its vocabulary must equal A's (checked here).
        cache_size: how many prompts' B traces to keep (least recently used dropped).
    """

    def __init__(self, a: ModelWrapper, b: ModelWrapper, *, cache_size: int = 100) -> None:
        check_vocabularies(a, b)
        self.a, self.b = a, b
        self.cache_size = max(1, cache_size)
        self.notes: list[str] = []
        self._states: OrderedDict[int, PairState] = OrderedDict()
        self._note_context()

    def _note_context(self) -> None:
        self.notes = [n for n in self.notes if "context" not in n]
        if self.a.context_length != self.b.context_length:
            short = min((self.a, self.b), key=lambda w: w.context_length)
            self.notes.append(
                f"{short.name} has the shorter context ({short.context_length} tokens, the other "
                f"{max(self.a.context_length, self.b.context_length)}); the comparison uses {short.context_length}."
            )

    @property
    def context_length(self) -> int:
        return min(self.a.context_length, self.b.context_length)

    # ------------------------------------------------------------ stepping
    def sync(self, uid: int, trace_a: Trace, ids: tuple[int, ...] | list[int]) -> PairState:
        """Make A's trace and B's state for prompt ``uid`` hold exactly ``ids``, stepping both together.

        The caller holds ``self.a.lock`` (Session.trace_for does).
        """
        ids = tuple(int(t) for t in ids)
        if len(ids) > self.context_length:
            raise InputError(f"The prompt would be {len(ids)} tokens, past the comparison's context of "
                             f"{self.context_length} (the shorter of the two models).")
        with self.b.lock:
            state = self._states.get(uid)
            if state is None:
                state = self._seed_state(ids)
                self._states[uid] = state
            self._states.move_to_end(uid)
            while len(self._states) > self.cache_size:
                self._states.popitem(last=False)
            common = _common_prefix(ids, trace_a.ids, state.b.ids)
            common = min(common, len(state))
            if common < len(trace_a):
                if common == 0:
                    trace_a.reset()
                else:
                    trace_a.truncate(common)
            if common < len(state.b) or common < len(state):
                state.truncate(common)
            self._extend(trace_a, state, list(ids[common:]))
            return state

    def _seed_state(self, ids: tuple[int, ...]) -> PairState:
        """Start from the kept state sharing the longest prefix (as Session does for A)."""
        best, best_len = None, 0
        for other in self._states.values():
            n = min(_common_prefix(ids, other.b.ids), len(other))
            if n > best_len:
                best, best_len = other, n
        if best is None:
            return PairState(Trace(self.b))
        state = best.clone()
        state.truncate(best_len)
        return state

    def _extend(self, trace_a: Trace, state: PairState, new_ids: list[int]) -> None:
        step = min(self.a.chunk_size, self.b.chunk_size)
        for start in range(0, len(new_ids), step):
            chunk = new_ids[start:start + step]
            rows_a: list[torch.Tensor] = []
            rows_b: list[torch.Tensor] = []
            trace_a.extend(chunk, on_logits=lambda _i, logits: rows_a.append(logits))
            state.b.extend(chunk, on_logits=lambda _i, logits: rows_b.append(logits))
            state.add(compare_rows(torch.cat(rows_a), torch.cat(rows_b)))  # [n, vocab] each

    def forget(self, uid: int) -> None:
        self._states.pop(uid, None)

    # ------------------------------------------------------------- reading
    def view(self, session: "Session", snapshot: tuple[int, tuple[int, ...]] | None = None,
             top_n: int | None = None) -> ComparisonView:
        """Sync the prompt (a no-op after ``session.compute``) and read its comparison."""
        uid, ids = snapshot if snapshot is not None else session.snapshot()
        with self.a.lock:
            trace_a = session.trace_for(uid, ids)
            state = self._states[uid]
            return build_comparison_view(self, trace_a, state, top_n or session.config.display.tokens_to_show)

    def swap(self, session: "Session") -> None:
        """B becomes A and A becomes B, for the session too; no forward pass.

        Only prompts compared so far keep their traces (both directions of KL were kept);
        other cached A traces are dropped and rebuilt on their next step.
        """
        with self.a.lock, self.b.lock:
            old_a_traces = session._traces
            new_traces: OrderedDict[int, Trace] = OrderedDict()
            new_states: OrderedDict[int, PairState] = OrderedDict()
            for uid, state in self._states.items():
                trace_a = old_a_traces.get(uid)
                if trace_a is None or trace_a.ids != state.b.ids:
                    continue
                new_traces[uid] = state.b
                new_states[uid] = state.swapped(trace_a)
            session._traces = new_traces
            self._states = new_states
            self.a, self.b = self.b, self.a
            session.wrapper = self.a


def open_comparison(session: "Session", request, progress: Callable[[str], None] | None = None) -> Comparison:
    """Load model B as the session's model was loaded (device, dtype flag, remote code) and attach it.

    Raises ModelLoadError / InputError with one sentence; the session is unchanged then.
    """
    from explorer.engine.compare_load import load_second_model

    m = session.config.model
    b = load_second_model(session.wrapper, request, device=m.device, bf16=m.bf16,
                          trust_remote_code=m.trust_remote_code, progress=progress)
    comparison = Comparison(session.wrapper, b, cache_size=session.config.display.cache_size)
    longest = max(len(entry.ids) for entry in session.prompts)
    if longest > comparison.context_length:
        raise InputError(f"A prompt is {longest} tokens, past the comparison's context of "
                         f"{comparison.context_length} tokens.")
    session.comparison = comparison
    session.notes.extend(comparison.notes)
    return comparison


def _common_prefix(*seqs) -> int:
    n = 0
    for column in zip(*seqs):
        if any(x != column[0] for x in column[1:]):
            break
        n += 1
    return n


def build_comparison_view(comparison: Comparison, trace_a: Trace, state: PairState, top_n: int) -> ComparisonView:
    """Read synced A and B traces and their comparison lists into a ComparisonView."""
    render = comparison.a.token_text
    trace_b = state.b
    tokens = []
    for i, tid in enumerate(trace_a.ids):
        if i == 0:
            tokens.append(TokenComparison(0, tid, render(tid), None, None, None, None, None, None, None))
            continue
        p = i - 1
        tokens.append(TokenComparison(i, tid, render(tid), state.kl_ab[p], state.kl_ba[p], state.tv[p],
                                      trace_a.actual_logp(i), trace_b.actual_logp(i), state.top_a[p], state.top_b[p]))
    last = len(trace_a) - 1
    row_a, row_b = trace_a.last_row(), trace_b.last_row()  # [vocab] each
    candidates = next_token_rows(row_a, row_b, top_n, render)
    scored = tokens[1:]
    summary = summarize([t.kl for t in scored], [bool(t.same_top) for t in scored])
    return ComparisonView(
        model_a=comparison.a.name, model_b=comparison.b.name, ids=tuple(trace_a.ids), tokens=tuple(tokens),
        next_kl=state.kl_ab[last], next_kl_reverse=state.kl_ba[last], next_tv=state.tv[last],
        next_same_top=state.top_a[last] == state.top_b[last], candidates=candidates, summary=summary,
        notes=tuple(comparison.notes),
    )


def next_token_rows(row_a: torch.Tensor, row_b: torch.Tensor, top_n: int,
                    render: Callable[[int], TokenText]) -> tuple[CandidateComparison, ...]:
    """Rows from both models' top-``top_n`` lists (their union), most likely under either first."""
    logp_a = torch.log_softmax(row_a.double(), dim=-1)  # [vocab]
    logp_b = torch.log_softmax(row_b.double(), dim=-1)  # [vocab]
    k = min(top_n, row_a.shape[-1])
    ids = list(dict.fromkeys(torch.topk(row_a, k).indices.tolist() + torch.topk(row_b, k).indices.tolist()))
    rows = []
    for tid in ids:
        rows.append(CandidateComparison(
            id=int(tid), text=render(int(tid)), p_a=math.exp(float(logp_a[tid])), p_b=math.exp(float(logp_b[tid])),
            rank_a=int((row_a > row_a[tid]).sum()) + 1, rank_b=int((row_b > row_b[tid]).sum()) + 1,
        ))
    rows.sort(key=lambda r: -max(r.p_a, r.p_b))
    return tuple(rows)


def next_big_disagreement(values: list[float | None] | tuple[float | None, ...], start: int,
                          threshold: float) -> int | None:
    """The first index after ``start`` whose value is at least ``threshold`` (wrapping); None if none."""
    n = len(values)
    for step in range(1, n + 1):
        i = (start + step) % n
        v = values[i]
        if v is not None and v >= threshold:
            return i
    return None


def score_ids(comparison: Comparison, ids: list[int], *, window: int,
              progress: Callable[[int, int], None] | None = None) -> list[TokenComparison]:
    """Compare the two models over ``ids`` in consecutive windows of ``window`` tokens.

    Each window starts from an empty context (as llama.cpp's perplexity tool does with its
    chunks), so the first token of every window has no distribution (None). Memory stays
    bounded by one window's KV caches whatever the file's length.
    """
    if window < 2:
        raise InputError(f"--window must be at least 2 tokens, found {window}.")
    if window > comparison.context_length:
        raise InputError(f"--window {window} is past the comparison's context of {comparison.context_length} tokens.")
    out: list[TokenComparison] = []
    done = 0
    step = min(comparison.a.chunk_size, comparison.b.chunk_size)
    with comparison.a.lock, comparison.b.lock:
        for w_start in range(0, len(ids), window):
            piece = ids[w_start:w_start + window]
            trace_a, state = Trace(comparison.a), PairState(Trace(comparison.b))
            for c_start in range(0, len(piece), step):
                comparison._extend(trace_a, state, piece[c_start:c_start + step])
                done += len(piece[c_start:c_start + step])
                if progress:
                    progress(done, len(ids))
            for i, tid in enumerate(piece):
                text = comparison.a.token_text(tid)
                if i == 0:
                    out.append(TokenComparison(w_start, tid, text, None, None, None, None, None, None, None))
                    continue
                p = i - 1
                out.append(TokenComparison(w_start + i, tid, text, state.kl_ab[p], state.kl_ba[p], state.tv[p],
                                           trace_a.actual_logp(i), state.b.actual_logp(i), state.top_a[p],
                                           state.top_b[p]))
    return out
