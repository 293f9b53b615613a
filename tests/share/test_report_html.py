"""The HTML report: its numbers against the engine's, escaping, self-containment, the app's save."""

from __future__ import annotations

import json
import math
import re
from html.parser import HTMLParser

import pytest
import torch

from explorer.analyses.report_data import build_report
from explorer.io.html_report import render_report, save_new_report

MODES = ["probability", "entropy", "residual"]


class _Collector(HTMLParser):
    """Token spans, script blocks and every URL-bearing attribute of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.tokens: list[dict] = []
        self.scripts: dict[str, str] = {}
        self.urls: list[str] = []
        self._script_id: str | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "span" and "tok" in (a.get("class") or "").split():
            self.tokens.append(a)
        if tag == "script":
            self._script_id = a.get("id") or "inline"
            self.scripts.setdefault(self._script_id, "")
        for name in ("src", "href"):
            if name in a:
                self.urls.append(a[name])

    def handle_endtag(self, tag):
        if tag == "script":
            self._script_id = None

    def handle_data(self, data):
        if self._script_id is not None:
            self.scripts[self._script_id] += data


@pytest.fixture
def report(tiny_session):
    tiny_session.replace_ids(tiny_session.ids_from_text("the cat sat on the mat"))
    return build_report(tiny_session, MODES, cursor=2)


def test_token_numbers_match_a_full_forward_pass(report, tiny_session):
    """p, rank, entropy and alternatives of every token equal a direct softmax of one full pass."""
    ids = list(tiny_session.current.ids)
    with torch.no_grad():
        logits = tiny_session.wrapper.model(torch.tensor([ids])).logits[0].double()  # [pos, vocab]
    probs = logits.softmax(-1)
    assert [t["id"] for t in report["tokens"]] == ids
    assert report["tokens"][0]["prob"] is None and report["tokens"][0]["alternatives"] == []
    for t in report["tokens"][1:]:
        row = probs[t["index"] - 1]
        assert t["prob"] == pytest.approx(float(row[t["id"]]), rel=1e-4)
        assert t["rank"] == int((row > row[t["id"]]).sum()) + 1
        h_bits = float(-(row * row.log()).sum()) / math.log(2)
        assert t["entropy_bits"] == pytest.approx(h_bits, rel=1e-4)
        top = torch.topk(row, len(t["alternatives"]))
        assert [a["id"] for a in t["alternatives"]] == top.indices.tolist()
        assert [a["prob"] for a in t["alternatives"]] == pytest.approx(top.values.tolist(), rel=1e-4)


def test_modes_carry_values_colours_and_the_cursor_layers(report):
    prob, entropy, residual = report["modes"]
    assert prob["values"] == [t["prob"] for t in report["tokens"]]
    assert prob["colours"][0] is None and all(c.startswith("#") for c in prob["colours"][1:])
    assert entropy["unit"] == "bits"
    n_layers = 2
    assert len(residual["layers"]["resid_norm"]) == n_layers + 1  # embeddings + each block
    assert report["prompt"]["cursor"] == 2
    prov = report["provenance"]
    assert re.fullmatch(r"[0-9a-f]{64}", prov["weights_sha256"])
    assert prov["dtype"] == "float32" and prov["device"] == "cpu" and prov["seed"] == 0
    assert set(prov["versions"]) >= {"explorer", "torch", "transformers"}
    assert report["schema_version"] == 1


def test_page_is_self_contained_with_a_tooltip_for_every_token(report):
    html = render_report(report)
    page = _Collector()
    page.feed(html)
    assert page.urls == []  # nothing to fetch: no src, no href
    assert not re.search(r"https?://(?!www\.w3\.org/2000/svg)", html)
    tips = json.loads(page.scripts["tips-data"])
    n = len(report["tokens"])
    assert len(page.tokens) == n * len(MODES)
    for span in page.tokens:
        keys = span["data-tip"].split()
        assert keys and all(k in tips for k in keys)
    assert json.loads(page.scripts["report-data"]) == json.loads(json.dumps(report))
    assert html.count("<svg") == len(report["modes"][2]["layers"])
    assert "Provenance" in html and report["provenance"]["weights_sha256"] in html


def test_hostile_text_is_escaped(report):
    evil = "</script><img src=x onerror=alert(1)>&amp;"
    report = json.loads(json.dumps(report))
    report["tokens"][1]["text"] = report["tokens"][1]["visible"] = evil
    report["provenance"]["model"] = evil
    html = render_report(report)
    assert "<img" not in html and "</script><img" not in html
    page = _Collector()
    page.feed(html)
    assert json.loads(page.scripts["report-data"])["tokens"][1]["text"] == evil
    assert evil in json.loads(page.scripts["tips-data"])["t1"]


def test_save_new_report_never_overwrites(report, tmp_path):
    first = save_new_report(report, tmp_path)
    second = save_new_report(report, tmp_path)
    assert first != second and first.exists() and second.exists()
    assert first.name.startswith("report-") and first.suffix == ".html"


def test_unavailable_mode_is_reported_not_fatal(tiny_session):
    tiny_session.replace_ids(tiny_session.ids_from_text("the cat sat"))
    data = build_report(tiny_session, ["sae_features"], hash_weights=False)
    assert data["modes"][0]["unavailable"]
    assert data["provenance"]["weights_sha256"] is None
    assert "Not available" in render_report(data)
