"""The seed notebook's ``build_token_tree``, kept faithful: the reference and the benchmark baseline.

Same queue, same threshold, same checks in the same order as seeds/000, and the same cost
model: every child gets a deep copy of its parent's whole KV cache and its own batch-1
forward pass, computed when the child is created. Differences from the notebook, all
forced by our setting and none changing a decision:

- transformers 5's DynamicCache has no ``to_legacy_cache``; the copy walks ``cache.layers``;
- the prompt arrives as token ids (so ``--chat`` and saved prompts work) and the root's text
  is given; the end-of-sequence ids are given (the notebook hard-codes Gemma's 107);
- probabilities are a float32 softmax (the notebook's are bfloat16 on its GPU);
- no printing; a node's finish reason is recorded (the notebook only sets ``is_finished``).

The engine's batched builder (explorer/engine/tree.py) must produce the same tree; the tests
compare the two and bench/bench_tree.py times them. Not imported by the app.
"""

from __future__ import annotations

import gc
from collections import deque

import torch
import torch.nn.functional as F
from transformers import DynamicCache


class TokenNode:
    def __init__(self, text, prob, token_id, depth, cumulative_prob=1.0):
        self.text = text
        self.prob = prob
        self.cumulative_prob = cumulative_prob
        self.token_id = token_id
        self.depth = depth
        self.children = []
        self.candidates = []
        self.is_finished = False
        self.finish_reason = None
        self.full_text = ""

    def to_dict(self):
        """The notebook's dict, built without recursion (paths can be 1000 tokens deep)."""
        out = []
        stack = [(self, out)]
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
                "candidates": node.candidates,
                "children": [],
            }
            siblings.append(d)
            for child in reversed(node.children):
                stack.append((child, d["children"]))
        return out[0]


def clone_kv_cache(cache: DynamicCache) -> DynamicCache:
    """Deep copy of every layer's keys and values (the notebook's clone, for transformers 5)."""
    cloned = DynamicCache()
    for layer_idx, layer in enumerate(cache.layers):
        cloned.update(layer.keys.clone(), layer.values.clone(), layer_idx)
    return cloned


def cache_bytes(cache: DynamicCache) -> int:
    return sum(layer.keys.numel() * layer.keys.element_size() * 2 for layer in cache.layers)


@torch.no_grad()
def build_token_tree_baseline(
    model,
    tokenizer,
    prompt_ids,
    prompt_text,
    eos_tokens,
    min_branch_threshold=0.1,
    max_branch_threshold=0.5,
    soft_queue_limit=30,
    candidate_threshold=0.01,
    max_depth=1000,
    max_completed_paths=5,
):
    """Returns ``(root, stats)``; stats has total_nodes, completed_paths, forward_passes, peak_cache_bytes."""
    model.eval()
    device = next(model.parameters()).device
    eos_tokens = list(eos_tokens)

    initial_input_ids = torch.tensor([list(prompt_ids)], dtype=torch.long, device=device)
    root_past_key_values = DynamicCache()
    outputs = model(initial_input_ids, past_key_values=root_past_key_values, use_cache=True)
    next_token_logits = outputs.logits[0, -1, :].float()
    root_past_key_values = outputs.past_key_values
    root_probs = F.softmax(next_token_logits, dim=-1)

    root = TokenNode(prompt_text, 1.0, None, 0, cumulative_prob=1.0)
    root.full_text = prompt_text

    stats = {"total_nodes": 1, "completed_paths": 0, "max_depth_reached": 0, "branches_created": 0,
             "forward_passes": 1, "peak_cache_bytes": 0}
    live_cache = cache_bytes(root_past_key_values)  # bytes held by caches in the queue

    queue = deque([(root, root_past_key_values, root_probs, prompt_text)])

    while queue and stats["completed_paths"] < max_completed_paths:
        curr_q_len = len(queue)
        saturation_ratio = min(1.0, curr_q_len / soft_queue_limit)
        current_threshold = min_branch_threshold + saturation_ratio * (max_branch_threshold - min_branch_threshold)

        curr_node, curr_cache, curr_probs, parent_text = queue.popleft()
        popped_bytes = cache_bytes(curr_cache)

        if curr_node.depth >= max_depth:
            curr_node.is_finished = True
            curr_node.finish_reason = "max_depth"
            stats["max_depth_reached"] = max(stats["max_depth_reached"], curr_node.depth)
            live_cache -= popped_bytes
            del curr_cache, curr_probs
            continue

        if curr_node.token_id in eos_tokens:
            curr_node.is_finished = True
            curr_node.finish_reason = "eos"
            stats["completed_paths"] += 1
            stats["max_depth_reached"] = max(stats["max_depth_reached"], curr_node.depth)
            live_cache -= popped_bytes
            del curr_cache, curr_probs
            continue

        cand_indices = torch.where(curr_probs > candidate_threshold)[0]
        if len(cand_indices) > 0:
            cand_probs = curr_probs[cand_indices]
            sorted_idx = torch.argsort(cand_probs, descending=True)
            top_cand_indices = cand_indices[sorted_idx[:10]]
            for idx in top_cand_indices:
                token_id = idx.item()
                prob = curr_probs[idx].item()
                text = tokenizer.decode([token_id])
                curr_node.candidates.append({"text": text, "prob": round(prob, 4), "token_id": token_id})

        branch_indices = torch.where(curr_probs > current_threshold)[0]
        if len(branch_indices) == 0:
            _, branch_indices = torch.topk(curr_probs, 1)
        branch_probs = curr_probs[branch_indices]
        sorted_idx = torch.argsort(branch_probs, descending=True)
        final_branches = branch_indices[sorted_idx]

        for idx in final_branches:
            if stats["completed_paths"] >= max_completed_paths:
                break
            token_id = idx.item()
            token_prob = curr_probs[idx].item()
            token_text = tokenizer.decode([token_id])
            cumulative_prob = curr_node.cumulative_prob * token_prob

            child_node = TokenNode(text=token_text, prob=token_prob, token_id=token_id,
                                   depth=curr_node.depth + 1, cumulative_prob=cumulative_prob)
            child_node.full_text = parent_text + token_text
            curr_node.children.append(child_node)
            stats["total_nodes"] += 1
            stats["branches_created"] += 1

            child_cache = clone_kv_cache(curr_cache)
            next_input_id = torch.tensor([[token_id]], device=device)
            outputs = model(next_input_id, past_key_values=child_cache, use_cache=True)
            stats["forward_passes"] += 1
            child_probs = F.softmax(outputs.logits[0, -1, :].float(), dim=-1)
            child_cache = outputs.past_key_values
            live_cache += cache_bytes(child_cache)
            stats["peak_cache_bytes"] = max(stats["peak_cache_bytes"], live_cache + popped_bytes)

            queue.append((child_node, child_cache, child_probs, child_node.full_text))

        live_cache -= popped_bytes
        del curr_cache, curr_probs
        if stats["total_nodes"] % 100 == 0:
            gc.collect()

    del queue
    gc.collect()
    return root, stats
