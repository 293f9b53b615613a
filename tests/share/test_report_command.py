"""`main.py report` and `tree --html`: bad input in one sentence before any model loads; real runs on the bundled model."""

from __future__ import annotations

import json
import re

import pytest

from explorer.cli import main


@pytest.mark.parametrize("argv, message", [
    (["--prompt", "x", "--mode", "nope", "--out", "r.html"], "Unknown mode"),
    (["--prompt", "x", "--mode", "attention", "--option", "attention.method=sideways", "--out", "r.html"],
     "must be one of rollout, raw"),
    (["--prompt", "x", "--mode", "entropy", "--option", "attention.layer=2", "--out", "r.html"], "not one of the --mode"),
    (["--prompt", "x", "--mode", "entropy", "--option", "entropy.layer=2", "--out", "r.html"], "has no option"),
    (["--prompt", "x", "--mode", "entropy", "--option", "oops", "--out", "r.html"], "MODE.KEY=VALUE"),
    (["--prompt", "x", "--mode", "entropy", "--out", "/nonexistent/dir/r.html"], "does not exist"),
    (["--prompt", "x", "--mode", "entropy", "--top-p", "nan", "--out", "r.html"], "finite"),
    (["--prompt", "x", "--mode", "entropy", "--regex", " ", "--out", "r.html"], "The regex is empty"),
    (["--input", "/nonexistent.txt", "--mode", "entropy", "--out", "r.html"], "does not exist"),
])
def test_bad_input_is_one_sentence_and_exit_2(argv, message, capsys, monkeypatch):
    import explorer.commands.common as common

    monkeypatch.setattr(common, "open_session", lambda *a, **k: pytest.fail("the model must not load"))
    assert main(["report", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


@pytest.mark.integration
def test_report_to_stdout_on_the_bundled_model(capsys, tmp_path):
    code = main(["report", "--prompt", "The capital of France is Paris", "--mode", "probability",
                 "--mode", "layer_prob", "--option", "layer_prob.layer=20", "--temperature", "0.7", "--top-k", "5",
                 "--seed", "3", "--out", "-"])
    out, err = capsys.readouterr()
    assert code == 0, err
    data = json.loads(re.search(r'<script type="application/json" id="report-data">(.*?)</script>', out,
                                re.S).group(1))
    paris = data["tokens"][-1]
    assert paris["text"] == " Paris" and paris["rank"] == 1 and paris["alternatives"][0]["text"] == " Paris"
    lens = data["modes"][1]
    assert lens["params"] == {"layer": 20} and len(lens["layers"]["prob"]) == data["n_layers"] + 1
    # The logit lens at the last layer is the model itself (SCIENCE.md self-check).
    assert lens["layers"]["prob"][-1] == pytest.approx(paris["prob"], rel=1e-4)
    assert data["decoding"]["settings"]["temperature"] == 0.7 and data["decoding"]["survivors"] == 5
    prov = data["provenance"]
    assert prov["model"].startswith("SmolLM2") and prov["dtype"] == "float32" and prov["seed"] == 3
    assert re.fullmatch(r"[0-9a-f]{64}", prov["weights_sha256"])


@pytest.mark.integration
def test_tree_html_beside_the_json(tmp_path, capsys):
    code = main(["tree", "--prompt", "The capital of France is", "--max-depth", "3", "--soft-queue-limit", "4",
                 "--out", str(tmp_path / "t.json"), "--html", str(tmp_path / "t.html")])
    assert code == 0, capsys.readouterr().err
    data = json.loads((tmp_path / "t.json").read_text(encoding="utf-8"))
    assert data["schema_version"] == 1
    html = (tmp_path / "t.html").read_text(encoding="utf-8")
    assert html.count('class="node"') == data["metadata"]["nodes"]


@pytest.mark.integration
def test_report_with_a_regex_cuts_the_tokens_that_cannot_match(capsys):
    """The lab table under --regex: a token keeps lab probability only if its text can start a match."""
    code = main(["report", "--prompt", "It happened in the year 1", "--mode", "probability", "--regex", "[0-9]+",
                 "--no-hash", "--out", "-"])
    out, err = capsys.readouterr()
    assert code == 0, err
    data = json.loads(re.search(r'<script type="application/json" id="report-data">(.*?)</script>', out,
                                re.S).group(1))
    lab = data["decoding"]
    assert lab["regex"]["pattern"] == "[0-9]+" and lab["regex"]["allowed"] > 0
    kept = [r for r in lab["rows"] if r["processed_prob"] > 0]
    assert kept and all(r["text"].isdigit() for r in kept)  # independent: a digit run can start [0-9]+
    cut = [r for r in lab["rows"] if r["removed_by"] == "regex"]
    assert cut and all(not r["text"].isdigit() for r in cut)
    assert sum(r["processed_prob"] for r in lab["rows"]) <= 1 + 1e-6
    assert "cut by regex" in out
