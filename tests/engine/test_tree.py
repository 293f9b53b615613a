"""The batched token-tree builder makes the notebook's tree: checked against the faithful baseline."""

from __future__ import annotations

import json

import pytest

from bench.tree_baseline import build_token_tree_baseline
from explorer.engine import tree as tree_mod
from explorer.engine.tree import TreeParams, build_tree, tree_to_json
from explorer.errors import InputError
from tests.engine.tree_compare import NODE_FIELDS, assert_same_tree, one_torch_thread

PROMPT = "once upon a time there"

_one_thread = pytest.fixture(autouse=True, scope="module")(one_torch_thread)


def _both(wrapper, params: TreeParams, eos_ids, **kwargs):
    ids = wrapper.encode(PROMPT)
    fast = build_tree(wrapper, ids, params, prompt_text=PROMPT, eos_ids=eos_ids, **kwargs)
    root, stats = build_token_tree_baseline(wrapper.model, wrapper.tokenizer, ids, PROMPT, eos_ids,
                                            **params.as_dict())
    return fast, root, stats


def _eos(wrapper, word: str = "<eos>") -> tuple[int, ...]:
    return (wrapper.tokenizer.convert_tokens_to_ids(word),)


@pytest.fixture(scope="module")
def sharp_wrapper(tiny_tokenizer):
    """A tiny Llama with larger initial weights: peaked distributions, so the notebook's own
    thresholds branch, saturate the queue and reach <eos> (the shared tiny model is nearly flat)."""
    import torch
    from transformers import AutoModelForCausalLM, LlamaConfig

    from explorer.engine.model import ModelWrapper

    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(tiny_tokenizer.get_vocab()), hidden_size=32, intermediate_size=64,
                      num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                      max_position_embeddings=128, bos_token_id=1, eos_token_id=2, pad_token_id=3,
                      initializer_range=0.4)
    model = AutoModelForCausalLM.from_config(cfg, attn_implementation="eager").eval()
    return ModelWrapper(model, tiny_tokenizer, name="sharp-tiny-llama", device="cpu")


SHARP_CASES = {
    "notebook-defaults": TreeParams(max_depth=12),
    "saturating-queue": TreeParams(0.05, 0.3, 6, 0.01, 10, 3),
    "completed-limit-reached": TreeParams(0.05, 0.3, 6, 0.01, 10, 2),
    "small-max-depth": TreeParams(0.05, 0.5, 30, 0.01, 3, 5),
}


@pytest.mark.parametrize("case", list(SHARP_CASES))
def test_fast_tree_equals_baseline(sharp_wrapper, case):
    params = SHARP_CASES[case]
    fast, root, stats = _both(sharp_wrapper, params, _eos(sharp_wrapper))
    n = assert_same_tree(fast.root.to_dict(), root.to_dict())
    assert n == fast.nodes == stats["total_nodes"]
    assert fast.completed_paths == stats["completed_paths"]
    assert fast.forward_passes < stats["forward_passes"]  # one pass per BFS level, not per child
    if case == "completed-limit-reached":
        assert fast.stop_reason == "completed" and fast.completed_paths == 2
    if case == "notebook-defaults":
        assert fast.completed_paths >= 1 and fast.nodes > 50


def test_flat_distributions_equal_baseline(tiny_wrapper):
    # The shared tiny model is nearly uniform (p ~ 1/55): many near-ties, low thresholds.
    params = TreeParams(0.02, 0.04, 6, 0.01, 10, 3)
    fast, root, _ = _both(tiny_wrapper, params, _eos(tiny_wrapper, "."))
    assert assert_same_tree(fast.root.to_dict(), root.to_dict()) > 30


def test_saturating_queue_really_saturates(sharp_wrapper):
    params = SHARP_CASES["saturating-queue"]
    seen = []
    fast, root, _ = _both(sharp_wrapper, params, _eos(sharp_wrapper), on_progress=seen.append)
    assert max(p.queue for p in seen) >= params.soft_queue_limit
    assert_same_tree(fast.root.to_dict(), root.to_dict())


def test_sliding_window_model_equals_baseline(tiny_gemma_wrapper):
    # Window 4 and paths of 12 tokens: the per-layer-type masks must apply the window.
    params = TreeParams(0.02, 0.05, 6, 0.01, 12, 3)
    fast, root, _ = _both(tiny_gemma_wrapper, params, _eos(tiny_gemma_wrapper))
    assert fast.max_depth_reached >= 8 or max(n.depth for n in fast.root.iter_nodes()) >= 8
    assert_same_tree(fast.root.to_dict(), root.to_dict())


def test_chunked_levels_and_compaction_keep_the_tree(sharp_wrapper, monkeypatch):
    monkeypatch.setattr(tree_mod, "_COMPACT_MIN_SLOTS", 0)  # compact whenever half the slots are dead
    params = SHARP_CASES["notebook-defaults"]
    fast, root, _ = _both(sharp_wrapper, params, _eos(sharp_wrapper), max_batch=2)
    assert_same_tree(fast.root.to_dict(), root.to_dict())


def test_stats_mass_and_ranked_paths(sharp_wrapper):
    fast = build_tree(sharp_wrapper, sharp_wrapper.encode(PROMPT), SHARP_CASES["notebook-defaults"],
                      prompt_text=PROMPT)
    nodes = list(fast.root.iter_nodes())
    leaves = [n for n in nodes if not n.children]
    assert fast.explored_mass() == pytest.approx(sum(n.cumulative_prob for n in leaves))
    assert 0 < fast.explored_mass() <= 1 + 1e-9
    assert fast.completed_paths == sum(1 for n in nodes if n.finish_reason == "eos")
    ranked = fast.ranked_paths()
    assert [p.cumulative_prob for p in ranked] == sorted((p.cumulative_prob for p in ranked), reverse=True)
    for p in ranked:
        assert fast.root.full_text + p.text == p.node.full_text
        assert len(p.node.path_ids()) == p.depth
    # cumulative probability is the product along the path
    for n in nodes:
        if n.parent is not None:
            assert n.cumulative_prob == pytest.approx(n.parent.cumulative_prob * n.prob)


def test_json_has_the_notebook_fields(sharp_wrapper):
    fast = build_tree(sharp_wrapper, sharp_wrapper.encode(PROMPT), SHARP_CASES["notebook-defaults"],
                      prompt_text=PROMPT)
    data = json.loads(tree_to_json(fast, model="tiny"))
    assert data["metadata"]["prompt"] == PROMPT
    assert data["metadata"]["parameters"] == SHARP_CASES["notebook-defaults"].as_dict()
    assert data["metadata"]["incomplete"] is False
    stack = [data["tree"]]
    while stack:
        node = stack.pop()
        assert set(NODE_FIELDS) <= set(node)
        assert isinstance(node["text"], str) and isinstance(node["full_text"], str)
        assert isinstance(node["prob"], float) and 0 <= node["prob"] <= 1
        assert isinstance(node["cumulative_prob"], float)
        assert node["token_id"] is None if node["depth"] == 0 else isinstance(node["token_id"], int)
        assert isinstance(node["is_finished"], bool)
        for c in node["candidates"]:
            assert set(c) == {"text", "prob", "token_id"} and c["prob"] == round(c["prob"], 4)
        assert len(node["candidates"]) <= 10
        stack.extend(node["children"])


def test_cancel_keeps_a_partial_tree(sharp_wrapper):
    calls = []

    def stop_after_five() -> bool:
        calls.append(1)
        return len(calls) > 5

    ids = sharp_wrapper.encode(PROMPT)
    result = build_tree(sharp_wrapper, ids, SHARP_CASES["saturating-queue"], eos_ids=_eos(sharp_wrapper),
                        should_stop=stop_after_five)
    assert result.stop_reason == "cancelled" and result.incomplete
    assert 1 < result.nodes
    assert json.loads(tree_to_json(result))["metadata"]["incomplete"] is True


def test_memory_limit_stops_with_a_message(sharp_wrapper):
    ids = sharp_wrapper.encode(PROMPT)
    result = build_tree(sharp_wrapper, ids, SHARP_CASES["notebook-defaults"], eos_ids=_eos(sharp_wrapper), max_memory_bytes=1)
    assert result.stop_reason == "memory" and result.incomplete
    assert "memory limit" in result.message
    assert result.nodes >= 2  # the root was expanded from the prompt pass and kept


def test_context_length_stops_the_tree(tiny_wrapper):
    # The tiny model has a 64-token context: a 1000-deep chain must stop, not crash.
    ids = tiny_wrapper.encode(PROMPT)
    result = build_tree(tiny_wrapper, ids, TreeParams(0.9, 0.9, 30, 0.01, 1000, 5), eos_ids=(0,))
    assert result.stop_reason == "context" and result.incomplete
    assert max(n.depth for n in result.root.iter_nodes()) <= tiny_wrapper.context_length


def test_threshold_formula():
    p = TreeParams(0.1, 0.5, 30)
    assert p.threshold(0) == pytest.approx(0.1)
    assert p.threshold(15) == pytest.approx(0.3)
    assert p.threshold(30) == pytest.approx(0.5)
    assert p.threshold(300) == pytest.approx(0.5)


@pytest.mark.parametrize("kwargs", [
    {"min_branch_threshold": -0.1}, {"max_branch_threshold": 1.5}, {"candidate_threshold": 2.0},
    {"min_branch_threshold": 0.6, "max_branch_threshold": 0.5}, {"soft_queue_limit": 0},
    {"max_depth": -1}, {"max_completed_paths": 0},
])
def test_bad_parameters_raise_one_sentence(kwargs):
    with pytest.raises(InputError) as err:
        TreeParams(**kwargs).validate()
    assert err.value.message.endswith(".") and "\n" not in err.value.message


@pytest.mark.integration
@pytest.mark.parametrize("prompt", ["The capital of France is", "Roses are red, violets are"])
def test_fast_tree_equals_baseline_on_bundled_model(bundled_wrapper, prompt):
    params = TreeParams(0.1, 0.5, 8, 0.01, 6, 5)
    ids = bundled_wrapper.encode(prompt)
    fast = build_tree(bundled_wrapper, ids, params, prompt_text=prompt)
    root, stats = build_token_tree_baseline(bundled_wrapper.model, bundled_wrapper.tokenizer, ids, prompt,
                                            bundled_wrapper.eos_ids, **params.as_dict())
    assert assert_same_tree(fast.root.to_dict(), root.to_dict()) == stats["total_nodes"] > 5
