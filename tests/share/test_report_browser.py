"""The report and the tree page in real headless Chromium: offline, a tooltip on every token, no errors."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from explorer.analyses.report_data import build_report
from explorer.engine.tree import TreeParams, build_tree
from explorer.io.html_report import render_report
from explorer.io.tree_html import render_tree_html

pytestmark = pytest.mark.browser
SNAPSHOT = Path(__file__).parent / "snapshots" / "report_structure.json"


def _structure(page) -> dict:
    """What the page shows, without dates, hashes or versions: sections, legends, tokens and their colours."""
    return page.evaluate("""() => ({
      title: document.querySelector('h1').textContent,
      sections: [...document.querySelectorAll('section')].map(s => ({
        id: s.id, heading: s.querySelector('h2').textContent,
        legend: s.id.startsWith('mode-') ? (s.querySelector('p:not(.muted)') || {}).textContent || null : null,
        tokens: [...s.querySelectorAll('.tok')].map(t => [t.textContent, getComputedStyle(t).backgroundColor]),
        plots: [...s.querySelectorAll('svg.plot')].map(p => p.getAttribute('aria-label')),
        rows: s.querySelectorAll('tr').length })) })""")


def _rgb(text: str) -> list[int] | None:
    return [int(v) for v in text[text.index("(") + 1:text.index(")")].split(",")[:3]] if "(" in text else None


def _assert_close(got: dict, want: dict) -> None:
    """Equal, except that colours may differ by 3 levels per channel (float rounding across machines)."""
    assert [s["id"] for s in got["sections"]] == [s["id"] for s in want["sections"]]
    for g, w in zip(got["sections"], want["sections"]):
        assert (g["heading"], g["legend"], g["plots"], g["rows"]) == (w["heading"], w["legend"], w["plots"], w["rows"])
        assert [t for t, _ in g["tokens"]] == [t for t, _ in w["tokens"]]
        for (_, gc), (_, wc) in zip(g["tokens"], w["tokens"]):
            a, b = _rgb(gc), _rgb(wc)
            assert (a is None) == (b is None) and (a is None or max(abs(x - y) for x, y in zip(a, b)) <= 3), (gc, wc)


@pytest.fixture
def report_file(tiny_session, tmp_path):
    tiny_session.replace_ids(tiny_session.ids_from_text("the cat sat on the mat"))
    data = build_report(tiny_session, ["probability", "entropy", "residual"], cursor=3)
    path = tmp_path / "report.html"
    path.write_text(render_report(data), encoding="utf-8")
    return path, data


def test_report_opens_offline_with_a_tooltip_on_every_token(offline_page, report_file):
    path, data = report_file
    page = offline_page
    page.goto(path.as_uri())
    assert page.requests == [path.as_uri()]  # the file itself and nothing else
    tips = json.loads(page.text_content("#tips-data"))
    tokens = page.query_selector_all(".tok")
    assert len(tokens) == 3 * len(data["tokens"])
    for tok in tokens:
        tok.hover()
        tip = page.locator("#tip")
        assert tip.is_visible()
        expected = "\n".join(tips[k] for k in tok.get_attribute("data-tip").split())
        assert tip.text_content() == expected
    # The tooltip also opens from the keyboard.
    page.mouse.move(1, 1)
    page.keyboard.press("Tab")
    assert page.locator("#tip").is_visible()
    assert page.errors == []
    got = _structure(page)
    if os.environ.get("UPDATE_BROWSER_SNAPSHOTS"):
        SNAPSHOT.parent.mkdir(exist_ok=True)
        SNAPSHOT.write_text(json.dumps(got, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    _assert_close(got, json.loads(SNAPSHOT.read_text(encoding="utf-8")))


def test_tree_page_collapses_and_shows_candidates(offline_page, tiny_wrapper, tiny_tokenizer, tmp_path):
    ids = tiny_tokenizer("the cat sat")["input_ids"]
    result = build_tree(tiny_wrapper, ids, TreeParams(max_depth=4, soft_queue_limit=4, candidate_threshold=0.05),
                        prompt_text="the cat sat")
    path = tmp_path / "tree.html"
    path.write_text(render_tree_html(result.to_json_dict("tiny")), encoding="utf-8")
    page = offline_page
    page.goto(path.as_uri())
    assert page.requests == [path.as_uri()]
    nodes = page.query_selector_all(".node")
    assert len(nodes) == result.nodes
    page.click("#expand-all")
    tips = json.loads(page.text_content("#tips-data"))
    for node in nodes:
        node.hover()
        assert page.locator("#tip").text_content() == tips[node.get_attribute("data-tip")]
    page.click("#collapse-all")
    assert page.locator("details[open]").count() == 1  # only the root stays open
    assert page.errors == []
