"""The tree page: every node once, candidates in its tooltip, collapsible, escaped, deep trees."""

from __future__ import annotations

import json

from explorer.engine.tree import TreeParams, build_tree
from explorer.io.tree_html import render_tree_html, save_new_tree_html
from tests.share.test_report_html import _Collector


def _node(text, depth, children=(), cands=()):
    return {"text": text, "full_text": "p" + text, "prob": 0.5, "cumulative_prob": 0.5 ** depth, "token_id": depth,
            "depth": depth, "is_finished": not children, "candidates": list(cands), "children": list(children)}


def _tips(html: str) -> tuple[_Collector, dict]:
    page = _Collector()
    page.feed(html)
    return page, json.loads(page.scripts["tips-data"])


def test_built_tree_page_has_every_node_with_its_candidates(tiny_wrapper, tiny_tokenizer):
    ids = tiny_tokenizer("the cat sat")["input_ids"]
    result = build_tree(tiny_wrapper, ids, TreeParams(max_depth=3, soft_queue_limit=4, candidate_threshold=0.05),
                        prompt_text="the cat sat")
    data = result.to_json_dict("tiny")
    assert data["schema_version"] == 1
    html = render_tree_html(data)
    page, tips = _tips(html)
    assert page.urls == []
    nodes = list(result.root.iter_nodes())
    assert len(tips) == len(nodes) == html.count('class="node"')
    for key, node in zip(sorted(tips, key=lambda k: int(k[1:])), nodes):  # pre-order, same as iter_nodes
        assert f"p(token | path) = {node.prob:.4f}" in tips[key]
        for cand in node.candidates:
            assert f"{cand['prob']:.4f}" in tips[key]
    assert html.count("<details") == sum(1 for n in nodes if n.children)


def test_hostile_token_text_is_escaped():
    evil = "<script>alert(1)</script>"
    html = render_tree_html({"metadata": {"prompt": evil}, "tree": _node("", 0, [_node(evil, 1, cands=[
        {"text": evil, "prob": 0.3, "token_id": 7}])])})
    assert "<script>alert" not in html
    _page, tips = _tips(html)
    assert evil in tips["n1"]


def test_a_1000_level_tree_renders_without_recursion(tmp_path):
    leaf = _node("x", 1000)
    node = leaf
    for depth in range(999, -1, -1):
        node = _node("x", depth, [node])
    path = save_new_tree_html({"metadata": {"prompt": "deep"}, "tree": node}, tmp_path)
    html = path.read_text(encoding="utf-8")
    assert html.count("<details") == 1000 and html.count("</details>") == 1000
    assert save_new_tree_html({"metadata": {}, "tree": leaf}, tmp_path) != path  # never overwrites
