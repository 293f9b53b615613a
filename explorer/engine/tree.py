"""Token trees: the seed notebook's dynamic-threshold search, built with batched forward passes.

The decisions are the notebook's (``build_token_tree`` in seeds/000), taken in the same order:
a breadth-first queue; when a node is popped the threshold is
``T = T_min + min(1, |Q| / Q_limit) · (T_max − T_min)`` with ``|Q|`` the queue length *before*
the pop; a node at ``max_depth`` is finished (not counted), then a node whose token is an
end-of-sequence id is finished and counted; otherwise up to 10 candidates with ``p >
candidate_threshold`` are recorded and every token with ``p > T`` (at least the argmax)
becomes a child, most probable first. The search stops once ``max_completed_paths`` paths
ended at end-of-sequence.

What differs is the cost. The notebook clones the whole KV cache for every child and runs one
batch-1 forward pass per child. Here the queue is simulated exactly, but a node's next-token
distribution is computed lazily, when the node is popped and has none yet; at that moment
every node still in the queue is a child of the previous generation (a BFS level), so the
whole level goes through the model in one forward pass. All nodes share one flat KV cache
(batch 1): the prompt, then one slot per node, and each new token attends to the prompt and
its own ancestors through a 4-D attention mask ("tree attention"), at its true position.
Slots no ancestor of the queue needs any more are dropped now and then, so memory follows the
live frontier instead of ``queue × path length``. Nodes that finish when popped (end of
sequence, max depth) and nodes left in the queue never cost a forward pass.

Never imports Textual or Rich.
"""

from __future__ import annotations

import os
import sys
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from typing import Callable, Iterator

import torch

from explorer.engine.model import ModelWrapper
from explorer.errors import ExplorerError, InputError
from explorer.schema import TREE_SCHEMA_VERSION

MAX_CANDIDATES = 10  # the notebook records at most this many candidates per node
DEFAULT_MAX_BATCH = 64  # queries per forward pass (a level wider than this takes several)
_COMPACT_MIN_SLOTS = 256  # do not bother compacting a small cache
_SUPPORTED_LAYER_TYPES = {"full_attention", "sliding_attention"}


# --------------------------------------------------------------------------- parameters
@dataclass(frozen=True)
class TreeParams:
    """The notebook's parameters (its function defaults, except ``max_completed_paths`` = 5 as in its experiment)."""

    min_branch_threshold: float = 0.1
    max_branch_threshold: float = 0.5
    soft_queue_limit: int = 30
    candidate_threshold: float = 0.01
    max_depth: int = 1000
    max_completed_paths: int = 5

    def validate(self) -> None:
        """Raise InputError with one sentence if a value cannot work."""
        for name in ("min_branch_threshold", "max_branch_threshold", "candidate_threshold"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not 0.0 <= float(value) <= 1.0:
                raise InputError(f"--{name.replace('_', '-')} must be between 0 and 1, found {value}.")
        if self.min_branch_threshold > self.max_branch_threshold:
            raise InputError(
                f"--min-branch-threshold ({self.min_branch_threshold}) must not be above "
                f"--max-branch-threshold ({self.max_branch_threshold})."
            )
        for name in ("soft_queue_limit", "max_depth", "max_completed_paths"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise InputError(f"--{name.replace('_', '-')} must be a positive whole number, found {value}.")

    def threshold(self, queue_length: int) -> float:
        """The dynamic branch threshold for a queue of ``queue_length`` (before the pop)."""
        saturation = min(1.0, queue_length / self.soft_queue_limit)
        return self.min_branch_threshold + saturation * (self.max_branch_threshold - self.min_branch_threshold)

    def as_dict(self) -> dict:
        return asdict(self)


# --------------------------------------------------------------------------- the tree
@dataclass(eq=False)
class TreeNode:
    """One token of the tree. ``prob`` is p(token | path), ``cumulative_prob`` the product along the path."""

    text: str
    full_text: str
    prob: float
    cumulative_prob: float
    token_id: int | None
    depth: int
    is_finished: bool = False
    finish_reason: str | None = None
    """"eos" (counted as a completed path), "max_depth", or None."""
    candidates: list[dict] = field(default_factory=list)
    children: list["TreeNode"] = field(default_factory=list)
    parent: "TreeNode | None" = field(default=None, repr=False)

    def path_ids(self) -> list[int]:
        """Token ids from the root's first child down to this node (empty for the root)."""
        ids: list[int] = []
        node: TreeNode | None = self
        while node is not None and node.token_id is not None:
            ids.append(node.token_id)
            node = node.parent
        return ids[::-1]

    def path_text(self) -> str:
        """The generated text of the path (the notebook's ``get_all_complete_paths`` text)."""
        parts: list[str] = []
        node: TreeNode | None = self
        while node is not None and node.depth > 0:
            parts.append(node.text)
            node = node.parent
        return "".join(reversed(parts))

    def iter_nodes(self) -> Iterator["TreeNode"]:
        """Every node below and including this one, in pre-order (no recursion: trees can be 1000 deep)."""
        stack = [self]
        while stack:
            node = stack.pop()
            yield node
            stack.extend(reversed(node.children))

    def to_dict(self) -> dict:
        """The notebook's node dict (same fields and rounding) plus ``finish_reason``; iterative."""
        out: list[dict] = []
        stack: list[tuple[TreeNode, list[dict]]] = [(self, out)]
        while stack:
            node, siblings = stack.pop()
            d = {
                "text": node.text,
                "full_text": node.full_text,
                "prob": round(node.prob, 6),
                "cumulative_prob": round(node.cumulative_prob, 8),
                "token_id": node.token_id,
                "depth": node.depth,
                "is_finished": node.is_finished,
                "finish_reason": node.finish_reason,
                "candidates": list(node.candidates),
                "children": [],
            }
            siblings.append(d)
            for child in reversed(node.children):
                stack.append((child, d["children"]))
        return out[0]


@dataclass(frozen=True)
class CompletedPath:
    text: str
    cumulative_prob: float
    depth: int
    reason: str  # "eos" or "max_depth"
    node: TreeNode = field(repr=False, compare=False)


@dataclass(frozen=True)
class TreeProgress:
    """What a progress callback receives after each forward pass."""

    nodes: int
    completed_paths: int
    depth: int
    queue: int
    forward_passes: int
    seconds: float


@dataclass
class TreeResult:
    root: TreeNode
    prompt: str
    params: TreeParams
    eos_ids: tuple[int, ...]
    nodes: int
    forward_passes: int
    completed_paths: int
    max_depth_reached: int
    seconds: float
    stop_reason: str
    """"completed" (max_completed_paths reached), "exhausted" (queue empty), "cancelled",
    "memory" (memory limit) or "context" (the model's context length)."""
    message: str = ""
    peak_cache_bytes: int = 0

    @property
    def incomplete(self) -> bool:
        """True when the search was cut short (cancelled, memory, context): the tree is partial."""
        return self.stop_reason in ("cancelled", "memory", "context")

    def explored_mass(self) -> float:
        """Sum over leaves of the cumulative probability: the share of the distribution the tree covers."""
        return float(sum(n.cumulative_prob for n in self.root.iter_nodes() if not n.children))

    def ranked_paths(self) -> list[CompletedPath]:
        """Finished paths (end of sequence or max depth), most probable first, as the notebook prints them."""
        paths = [CompletedPath(n.path_text(), n.cumulative_prob, n.depth, n.finish_reason or "", n)
                 for n in self.root.iter_nodes() if n.is_finished]
        paths.sort(key=lambda p: p.cumulative_prob, reverse=True)
        return paths

    def stats(self) -> dict:
        """The command's last stdout line."""
        return {"nodes": self.nodes, "forward_passes": self.forward_passes,
                "completed_paths": self.completed_paths, "seconds": round(self.seconds, 3)}

    def to_json_dict(self, model: str | None = None) -> dict:
        """The notebook's file: ``{"schema_version", "metadata": {"prompt", "parameters", ...}, "tree": node}``."""
        meta = {
            "prompt": self.prompt,
            "parameters": self.params.as_dict(),
            "model": model,
            "eos_ids": list(self.eos_ids),
            "incomplete": self.incomplete,
            "stop_reason": self.stop_reason,
            "message": self.message,
            "explored_mass": self.explored_mass(),
            "max_depth_reached": self.max_depth_reached,
            **self.stats(),
        }
        return {"schema_version": TREE_SCHEMA_VERSION, "metadata": meta, "tree": self.root.to_dict()}


# --------------------------------------------------------------------------- building
class _Entry:
    """A queued node plus what its computation needs."""

    __slots__ = ("node", "parent_row", "row", "dist")

    def __init__(self, node: TreeNode, parent_row: torch.Tensor | None) -> None:
        self.node = node
        self.parent_row = parent_row  # bool [S']: slots the parent attends to (incl. itself)
        self.row: torch.Tensor | None = None  # bool [S'']: slots this node attends to, after its pass
        self.dist: _Dist | None = None


@dataclass
class _Dist:
    """What a pop needs from a next-token distribution, without keeping the vocabulary row."""

    ids: torch.Tensor  # [k] long: tokens with p > the lowest threshold, in vocabulary order
    probs: torch.Tensor  # [k] float32
    top_id: int  # argmax (the notebook's greedy fallback)
    top_prob: float


def default_memory_budget(device: str) -> int | None:
    """Bytes the tree may use for its cache and temporaries: half the free memory of the device."""
    if device.startswith("cuda") and torch.cuda.is_available():
        free, _total = torch.cuda.mem_get_info(torch.device(device))
        return int(free * 0.8)
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024 // 2
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 2
    except (ValueError, OSError, AttributeError):
        return None


@torch.inference_mode()
def build_tree(
    wrapper: ModelWrapper,
    prompt_ids: list[int],
    params: TreeParams | None = None,
    *,
    prompt_text: str | None = None,
    eos_ids: tuple[int, ...] | list[int] | None = None,
    on_progress: Callable[[TreeProgress], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    max_memory_bytes: int | None = None,
    max_batch: int = DEFAULT_MAX_BATCH,
) -> TreeResult:
    """Build the notebook's token tree after ``prompt_ids``.

    Args:
        wrapper: the model (its lock is taken around each forward pass, not the whole build).
        prompt_ids: the prompt's token ids (at least one).
        params: thresholds and limits; validated here.
        prompt_text: the root's text and ``metadata.prompt``; default: the decoded ids.
        eos_ids: ids that end a path; default: the model's (``wrapper.eos_ids``).
        on_progress: called after every forward pass with a TreeProgress.
        should_stop: polled between passes; True stops the build, keeping the partial tree
            (``stop_reason == "cancelled"``). Escape in the app, Ctrl+C in the command.
        max_memory_bytes: budget for the KV cache and one pass's temporaries; default: half
            the free memory. Reaching it stops the build with a message, keeping the tree.
        max_batch: most new tokens per forward pass.

    Returns:
        TreeResult with the root, counts, the stop reason and the time spent.
    """
    params = params or TreeParams()
    params.validate()
    if not prompt_ids:
        raise InputError("The prompt is empty; give some text to start from.")
    _check_architecture(wrapper)
    builder = _FrontierBuilder(
        wrapper, [int(t) for t in prompt_ids], params,
        prompt_text if prompt_text is not None else wrapper.decode(prompt_ids),
        tuple(int(e) for e in (wrapper.eos_ids if eos_ids is None else eos_ids)),
        on_progress, should_stop,
        max_memory_bytes if max_memory_bytes is not None else default_memory_budget(wrapper.device),
        max(1, int(max_batch)),
    )
    return builder.run()


def _check_architecture(wrapper: ModelWrapper) -> None:
    impl = str(getattr(wrapper.model.config, "_attn_implementation", "") or "")
    if "flash" in impl or "flex" in impl:
        raise ExplorerError(f"Token trees need an attention that takes a custom mask; load the model with "
                            f"sdpa or eager attention instead of {impl}.")
    types = getattr(wrapper.config, "layer_types", None)
    if types and not set(types) <= _SUPPORTED_LAYER_TYPES:
        odd = sorted(set(types) - _SUPPORTED_LAYER_TYPES)
        raise ExplorerError(f"Token trees need attention layers; this model also has {', '.join(odd)} layers.")


class _FrontierBuilder:
    def __init__(self, wrapper, prompt_ids, params, prompt_text, eos_ids, on_progress, should_stop,
                 budget, max_batch) -> None:
        self.w = wrapper
        self.prompt_ids = prompt_ids
        self.p = params
        self.prompt_text = prompt_text
        self.eos = set(eos_ids)
        self.eos_ids = eos_ids
        self.on_progress = on_progress
        self.should_stop = should_stop or (lambda: False)
        self.budget = budget
        self.max_batch = max_batch
        self.cache = wrapper.new_cache()
        self.slot_pos = torch.empty(0, dtype=torch.long)  # [S] true position of every cache slot
        self.forward_passes = 0
        self.nodes = 1
        self.completed = 0
        self.max_depth_reached = 0
        self.peak_cache = 0
        self.t0 = time.perf_counter()
        self.stop_reason = ""
        self.message = ""
        # The notebook compares float32 probabilities with Python floats; torch does that in
        # float32, so the thresholds are rounded to float32 once, as torch would.
        self.lo = min(params.candidate_threshold, params.min_branch_threshold)
        cfg = wrapper.config
        self.layer_types = list(getattr(cfg, "layer_types", None) or [])
        self.window = getattr(cfg, "sliding_window", None)
        self.dtype = next(wrapper.model.parameters()).dtype

    # ----------------------------------------------------------------- main loop
    def run(self) -> TreeResult:
        p = self.p
        root = TreeNode(self.prompt_text, self.prompt_text, 1.0, 1.0, None, 0)
        root_entry = _Entry(root, None)
        self._prompt_pass(root_entry)
        queue: deque[_Entry] = deque([root_entry])

        while queue and self.completed < p.max_completed_paths:
            if self.should_stop():
                self._stop("cancelled", "Stopped by request; the tree holds what was built so far.")
                break
            queue_length = len(queue)
            threshold = p.threshold(queue_length)
            entry = queue[0]
            node = entry.node
            if node.depth >= p.max_depth:
                queue.popleft()
                node.is_finished, node.finish_reason = True, "max_depth"
                self.max_depth_reached = max(self.max_depth_reached, node.depth)
                continue
            if node.token_id in self.eos:
                queue.popleft()
                node.is_finished, node.finish_reason = True, "eos"
                self.completed += 1
                self.max_depth_reached = max(self.max_depth_reached, node.depth)
                continue
            if entry.dist is None and not self._compute_level(queue):
                break  # stopped (memory, context, cancel): the node stays an unexpanded leaf
            queue.popleft()
            dist = entry.dist
            entry.dist = None
            node.candidates = self._candidates(dist)
            for token_id, token_prob in self._branches(dist, threshold):
                if self.completed >= p.max_completed_paths:  # the notebook's guard (never true here)
                    break
                text = self.w.decode([token_id])
                child = TreeNode(text, node.full_text + text, token_prob, node.cumulative_prob * token_prob,
                                 token_id, node.depth + 1, parent=node)
                node.children.append(child)
                self.nodes += 1
                queue.append(_Entry(child, entry.row))
            entry.row = None  # children hold it now

        if not self.stop_reason:
            if self.completed >= p.max_completed_paths:
                self._stop("completed", f"{self.completed} paths reached an end-of-sequence token.")
            else:
                self._stop("exhausted", "Every path ended before the completed-path limit.")
        self._report(len(queue), 0)
        return TreeResult(root, self.prompt_text, p, self.eos_ids, self.nodes, self.forward_passes,
                          self.completed, self.max_depth_reached, time.perf_counter() - self.t0,
                          self.stop_reason, self.message, self.peak_cache)

    def _stop(self, reason: str, message: str) -> None:
        self.stop_reason, self.message = reason, message

    # ----------------------------------------------------------------- decisions
    def _candidates(self, dist: _Dist) -> list[dict]:
        keep = dist.probs > self.p.candidate_threshold  # float32 comparison, as in the notebook
        ids, probs = dist.ids[keep], dist.probs[keep]
        order = torch.argsort(probs, descending=True)[:MAX_CANDIDATES]
        return [{"text": self.w.decode([int(ids[i])]), "prob": round(float(probs[i]), 4), "token_id": int(ids[i])}
                for i in order.tolist()]

    def _branches(self, dist: _Dist, threshold: float) -> list[tuple[int, float]]:
        keep = dist.probs > threshold
        if not bool(keep.any()):
            return [(dist.top_id, dist.top_prob)]
        ids, probs = dist.ids[keep], dist.probs[keep]
        order = torch.argsort(probs, descending=True)
        return [(int(ids[i]), float(probs[i])) for i in order.tolist()]

    def _dists(self, logits: torch.Tensor) -> list[_Dist]:
        """Compact distributions for logits ``[b, vocab]``."""
        # Softmax in place (max, exp, normalise): the level's logits are the largest temporary
        # the builder makes ([b, vocab]), so no second copy is allocated for the probabilities.
        probs = logits if logits.dtype == torch.float32 else logits.float()  # [b, vocab]
        probs.sub_(probs.max(dim=-1, keepdim=True).values).exp_()
        probs.div_(probs.sum(dim=-1, keepdim=True))
        top = torch.topk(probs, 1, dim=-1)
        out = []
        for r in range(probs.shape[0]):
            row = probs[r]
            ids = torch.where(row > self.lo)[0]  # [k] vocabulary order, like torch.where in the notebook
            out.append(_Dist(ids, row[ids].clone(), int(top.indices[r, 0]), float(top.values[r, 0])))
        return out

    # ----------------------------------------------------------------- forward passes
    def _prompt_pass(self, root_entry: _Entry) -> None:
        ids = self.prompt_ids
        if len(ids) >= self.w.context_length:
            raise InputError(f"The prompt has {len(ids)} tokens, the model's context is {self.w.context_length}.")
        last = None
        for start in range(0, len(ids), self.w.chunk_size):
            logits = self.w.forward(ids[start:start + self.w.chunk_size], self.cache)  # [n, vocab]
            self.forward_passes += 1
            last = logits[-1:]
        self.slot_pos = torch.arange(len(ids), dtype=torch.long)
        root_entry.row = torch.ones(len(ids), dtype=torch.bool)
        root_entry.dist = self._dists(last)[0]
        self.peak_cache = max(self.peak_cache, self._cache_bytes())
        self._report(1, 0)

    def _compute_level(self, queue: deque[_Entry]) -> bool:
        """One BFS level: distributions for every queued node that will need one. False if stopped."""
        pending = [e for e in queue
                if e.dist is None and e.node.depth < self.p.max_depth and e.node.token_id not in self.eos]
        depth = pending[0].node.depth
        n_prompt = len(self.prompt_ids)
        if n_prompt + depth > self.w.context_length:
            self._stop("context", f"The paths reached the model's context length ({self.w.context_length} tokens).")
            return False
        self._compact(pending)
        for start in range(0, len(pending), self.max_batch):
            if start and self.should_stop():
                self._stop("cancelled", "Stopped by request; the tree holds what was built so far.")
                return False
            chunk = pending[start:start + self.max_batch]
            if not self._fits(len(chunk)):
                return False
            try:
                logits = self._forward_chunk(chunk)
            except (torch.OutOfMemoryError, MemoryError, RuntimeError) as exc:
                if not _is_allocation_error(exc):
                    raise
                self._stop("memory", f"Out of memory after {self.nodes} nodes; the tree keeps what it built.")
                return False
            for entry, dist in zip(chunk, self._dists(logits)):
                entry.dist = dist
            self._report(len(queue), depth)
        return True

    def _forward_chunk(self, chunk: list[_Entry]) -> torch.Tensor:
        """Feed one token per entry at its own position; returns logits ``[b, vocab]`` float32 CPU."""
        b = len(chunk)
        s = int(self.slot_pos.shape[0])  # slots already in the cache
        rows = torch.zeros(b, s + b, dtype=torch.bool)  # [b, S + b] which slots each query sees
        for j, entry in enumerate(chunk):
            parent = entry.parent_row
            rows[j, : parent.shape[0]] = parent
            rows[j, s + j] = True
        n_prompt = len(self.prompt_ids)
        q_pos = torch.tensor([n_prompt + e.node.depth - 1 for e in chunk], dtype=torch.long)  # [b]
        all_pos = torch.cat([self.slot_pos, q_pos])  # [S + b]
        dev = self.w.device
        masks = self._masks(rows, q_pos, all_pos)
        ids = torch.tensor([[e.node.token_id for e in chunk]], dtype=torch.long, device=dev)  # [1, b]
        with self.w.lock:
            out = self.w.model(input_ids=ids, position_ids=q_pos[None].to(dev), attention_mask=masks,
                               past_key_values=self.cache, use_cache=True)
        self.forward_passes += 1
        self.slot_pos = all_pos
        for j, entry in enumerate(chunk):
            entry.row = rows[j]
            entry.parent_row = None
        self.peak_cache = max(self.peak_cache, self._cache_bytes())
        return out.logits[0].float().cpu()  # [b, vocab]

    def _masks(self, rows: torch.Tensor, q_pos: torch.Tensor, all_pos: torch.Tensor):
        """Additive 4-D masks ``[1, 1, b, S + b]``: one tensor, or one per layer type (sliding windows)."""
        neg = torch.finfo(self.dtype).min
        dev = self.w.device

        def additive(allowed: torch.Tensor) -> torch.Tensor:
            m = torch.zeros(allowed.shape, dtype=self.dtype)
            m.masked_fill_(~allowed, neg)
            return m[None, None].to(dev)

        if self.layer_types:
            # Models that name their layer types take one mask per type (Gemma 2/3, Qwen2...).
            if self.window and "sliding_attention" in self.layer_types:
                in_window = (q_pos[:, None] - all_pos[None, :]) < self.window  # transformers' convention
                masks = {"sliding_attention": additive(rows & in_window)}
                if "full_attention" in self.layer_types:
                    masks["full_attention"] = additive(rows)
                return masks
            return additive(rows)
        if self.window:  # one sliding window on every layer (Mistral-style config)
            return additive(rows & ((q_pos[:, None] - all_pos[None, :]) < self.window))
        return additive(rows)

    def _compact(self, pending: list[_Entry]) -> None:
        """Drop cache slots no queued node descends from (finished or abandoned branches)."""
        s = int(self.slot_pos.shape[0])
        if s < _COMPACT_MIN_SLOTS:
            return
        needed = torch.zeros(s, dtype=torch.bool)
        for entry in pending:
            needed[: entry.parent_row.shape[0]] |= entry.parent_row
        kept = int(needed.sum())
        if kept > s // 2:
            return
        keep = torch.nonzero(needed).squeeze(1)  # [kept]
        keep_dev = keep.to(self.w.device)
        for layer in self.cache.layers:
            if getattr(layer, "keys", None) is not None and layer.keys.numel():
                layer.keys = layer.keys.index_select(-2, keep_dev)
                layer.values = layer.values.index_select(-2, keep_dev)
        self.slot_pos = self.slot_pos[keep]
        seen: dict[int, torch.Tensor] = {}
        for entry in pending:  # siblings share one parent row: remap it once
            key = id(entry.parent_row)
            if key not in seen:
                padded = torch.zeros(s, dtype=torch.bool)
                padded[: entry.parent_row.shape[0]] = entry.parent_row
                seen[key] = padded[keep]
            entry.parent_row = seen[key]

    # ----------------------------------------------------------------- memory, progress
    def _cache_bytes(self) -> int:
        total = 0
        for layer in self.cache.layers:
            for t in (getattr(layer, "keys", None), getattr(layer, "values", None)):
                if t is not None:
                    total += t.numel() * t.element_size()
        return total

    def _fits(self, b: int) -> bool:
        if self.budget is None:
            return True
        cache = self._cache_bytes()
        s = max(1, int(self.slot_pos.shape[0]))
        per_slot = cache / s
        n_layers = max(1, len(self.cache.layers))
        vocab = self.w.vocab_size
        heads = int(getattr(self.w.config, "num_attention_heads", 8))
        # growth + the per-layer copy torch.cat makes + logits/softmax + masks + attention scores
        need = (cache + b * per_slot + cache / n_layers + 3 * b * vocab * 4
                + b * (s + b) * 8 + heads * b * (s + b) * 4)
        if need <= self.budget:
            return True
        self._stop("memory", f"The tree reached its memory limit ({self.budget / 2**20:.0f} MB) after "
                             f"{self.nodes} nodes; it keeps what it built.")
        return False

    def _report(self, queue_length: int, depth: int) -> None:
        if self.on_progress is not None:
            self.on_progress(TreeProgress(self.nodes, self.completed, depth, queue_length,
                                          self.forward_passes, time.perf_counter() - self.t0))


def _is_allocation_error(exc: BaseException) -> bool:
    if isinstance(exc, (torch.OutOfMemoryError, MemoryError)):
        return True
    text = str(exc).lower()
    return "out of memory" in text or "can't allocate" in text or "cannot allocate" in text


def tree_to_json(result: TreeResult, model: str | None = None) -> str:
    """The tree as JSON text. The nesting is two containers per level, so the recursion limit is raised."""
    import json

    data = result.to_json_dict(model)
    deepest = max(n.depth for n in result.root.iter_nodes())
    needed = 4 * (deepest + 2) + 200
    old = sys.getrecursionlimit()
    try:
        if needed > old:
            sys.setrecursionlimit(needed)
        return json.dumps(data, ensure_ascii=False)
    finally:
        sys.setrecursionlimit(old)
