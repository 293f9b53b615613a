"""Helpers shared by the tree tests: compare two notebook-format node dicts."""

from __future__ import annotations

NODE_FIELDS = ("text", "full_text", "prob", "cumulative_prob", "token_id", "depth", "is_finished",
               "candidates", "children")


def assert_same_tree(a: dict, b: dict, tol: float = 1e-4) -> int:
    """Assert two node dicts describe the same tree (probabilities within ``tol``); returns the node count."""
    stack = [(a, b, "root")]
    count = 0
    while stack:
        x, y, where = stack.pop()
        count += 1
        for key in ("text", "full_text", "token_id", "depth", "is_finished", "finish_reason"):
            assert x[key] == y[key], f"{where}: {key} {x[key]!r} != {y[key]!r}"
        for key in ("prob", "cumulative_prob"):
            assert abs(x[key] - y[key]) <= tol, f"{where}: {key} {x[key]} vs {y[key]}"
        assert [c["token_id"] for c in x["candidates"]] == [c["token_id"] for c in y["candidates"]], where
        for cx, cy in zip(x["candidates"], y["candidates"]):
            assert cx["text"] == cy["text"]
            assert abs(cx["prob"] - cy["prob"]) <= tol + 1e-9, f"{where}: candidate {cx} vs {cy}"
        assert len(x["children"]) == len(y["children"]), f"{where}: {len(x['children'])} vs {len(y['children'])} children"
        for i, (cx, cy) in enumerate(zip(x["children"], y["children"])):
            stack.append((cx, cy, f"{where}/{i}:{cx['token_id']}"))
    return count


def one_torch_thread():
    """Generator body for an autouse fixture: tiny models run ~15x faster on one thread on a
    loaded 2-core machine (no spin-waiting between threads); the old count is restored."""
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)
