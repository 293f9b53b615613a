"""Token trees through a server: the notebook's dynamic-threshold search, one request per node.

The queue, the thresholds and every decision are those of ``explorer.engine.tree`` (the same
``TreeNode``/``TreeResult``), so a tree built here equals the local tree wherever the
server's top-k covers the thresholds. It does exactly when the rows asked for number at
least ``1 / lowest threshold``: at most that many tokens can have a probability above it.
llama.cpp has no cap, so we ask for that many; a capped server (vLLM: 20 unless
``--max-logprobs``) gives a tree whose message says which thresholds were not covered.
The nodes of one level are asked for in parallel (one request each, a thread pool); the
server's prompt cache makes each a few tokens of work. Never imports Textual or Rich.
"""

from __future__ import annotations

import math
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

import torch

from explorer.engine.remote.engine import RemoteEngine
from explorer.engine.tree import MAX_CANDIDATES, TreeNode, TreeParams, TreeProgress, TreeResult
from explorer.errors import InputError

PARALLEL_REQUESTS = 8


class _Pending:
    __slots__ = ("node", "ids", "probs", "top_id", "top_prob")

    def __init__(self, node: TreeNode, ids: list[int]) -> None:
        self.node = node
        self.ids = ids  # the full sequence up to and including this node's token
        self.probs: torch.Tensor | None = None  # float32 [k]
        self.top_id: list[int] | None = None


def build_tree_remote(engine: RemoteEngine, prompt_ids: list[int], params: TreeParams | None = None, *,
                      prompt_text: str | None = None, eos_ids=None,
                      on_progress: Callable[[TreeProgress], None] | None = None,
                      should_stop: Callable[[], bool] | None = None) -> TreeResult:
    """Same result type and rules as ``explorer.engine.tree.build_tree``; the server runs the model."""
    p = params or TreeParams()
    p.validate()
    if not prompt_ids:
        raise InputError("The prompt is empty; give some text to start from.")
    eos = tuple(int(e) for e in (engine.eos_ids if eos_ids is None else eos_ids))
    stop = should_stop or (lambda: False)
    lo = min(p.candidate_threshold, p.min_branch_threshold)
    wanted = math.floor(1.0 / lo) + 1 if lo > 0 else engine.vocab_size
    k = min(wanted, engine.dialect.max_top_k or wanted, engine.vocab_size)
    text = prompt_text if prompt_text is not None else engine.decode(prompt_ids)
    t0 = time.perf_counter()
    root = TreeNode(text, text, 1.0, 1.0, None, 0)
    queue: deque[_Pending] = deque([_Pending(root, [int(t) for t in prompt_ids])])
    state = {"requests": 0, "nodes": 1, "completed": 0, "depth": 0, "uncovered": False}
    reason, message = "", ""

    def fetch(entry: _Pending) -> None:
        dist = engine.dialect.distribution(entry.ids, k)
        probs = torch.tensor([math.exp(lp) for lp in dist.logprobs], dtype=torch.float32)  # [k]
        entry.top_id = list(dist.ids)
        entry.probs = probs
        # A full list whose smallest row is still above the lowest threshold may miss tokens.
        if len(dist.ids) >= k and k < wanted and float(probs[-1]) > lo:
            state["uncovered"] = True

    with ThreadPoolExecutor(max_workers=PARALLEL_REQUESTS) as pool:
        while queue and state["completed"] < p.max_completed_paths:
            if stop():
                reason, message = "cancelled", "Stopped by request; the tree holds what was built so far."
                break
            threshold = p.threshold(len(queue))
            entry = queue[0]
            node = entry.node
            if node.depth >= p.max_depth or node.token_id in eos:
                queue.popleft()
                node.is_finished = True
                node.finish_reason = "max_depth" if node.depth >= p.max_depth else "eos"
                state["completed"] += node.finish_reason == "eos"
                state["depth"] = max(state["depth"], node.depth)
                continue
            if entry.probs is None:
                if len(entry.ids) + 1 > engine.context_length:
                    reason, message = "context", f"A path reached the served model's context of {engine.context_length}."
                    break
                # The whole level at once: every queued node still without a distribution.
                level = [e for e in queue if e.probs is None and len(e.ids) + 1 <= engine.context_length]
                list(pool.map(fetch, level))
                state["requests"] += len(level)
                if on_progress is not None:
                    on_progress(TreeProgress(state["nodes"], state["completed"], node.depth, len(queue),
                                             state["requests"], time.perf_counter() - t0))
            queue.popleft()
            ids = torch.tensor(entry.top_id, dtype=torch.long)  # [k]
            probs = entry.probs
            keep = probs > p.candidate_threshold  # float32 comparison, as the local tree does
            order = torch.argsort(probs[keep], descending=True)[:MAX_CANDIDATES]
            node.candidates = [{"text": engine.decode([int(ids[keep][i])]), "prob": round(float(probs[keep][i]), 4),
                                "token_id": int(ids[keep][i])} for i in order.tolist()]
            branch = probs > threshold
            if bool(branch.any()):
                picked = [(int(ids[branch][i]), float(probs[branch][i]))
                          for i in torch.argsort(probs[branch], descending=True).tolist()]
            else:
                picked = [(int(ids[0]), float(probs[0]))]
            for token_id, token_prob in picked:
                piece = engine.decode([token_id])
                child = TreeNode(piece, node.full_text + piece, token_prob, node.cumulative_prob * token_prob,
                                 token_id, node.depth + 1, parent=node)
                node.children.append(child)
                state["nodes"] += 1
                queue.append(_Pending(child, entry.ids + [token_id]))
            entry.probs = entry.top_id = None

    if not reason:
        if state["completed"] >= p.max_completed_paths:
            reason, message = "completed", f"{state['completed']} paths reached an end-of-sequence token."
        else:
            reason, message = "exhausted", "Every path ended before the completed-path limit."
    if state["uncovered"]:
        message += (f" The server returns at most {k} tokens per position, fewer than the {wanted} needed to see "
                    f"every token above the lowest threshold ({lo:g}); some branches may be missing "
                    "(raise the server's limit, e.g. vLLM --max-logprobs).")
    return TreeResult(root, text, p, eos, state["nodes"], state["requests"], state["completed"], state["depth"],
                      time.perf_counter() - t0, reason, message.strip(), 0)
