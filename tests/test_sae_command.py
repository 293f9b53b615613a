"""`main.py sae features|train`: bad input is one sentence and exit 2; the bundled model with a real SAE end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from explorer.cli import main
from tests.engine.sae_files import write_saelens

REPO = Path(__file__).resolve().parent.parent
SHIPPED_SAE = REPO / "saes" / "smollm2-L12-topk32"


@pytest.fixture(autouse=True)
def _cache_dir(tmp_path, monkeypatch):
    """Feature caches go to a temporary folder (the converted bundled model stays where it is)."""
    monkeypatch.setattr("explorer.engine.sae.catalog.feature_cache_dir", lambda: tmp_path / "cache" / "sae_features")


def run_cli(capsys, *argv):
    try:
        code = main(list(argv))
    except SystemExit as exc:  # argparse's own errors end here
        code = exc.code
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.parametrize("argv, message", [
    (["sae", "features", "--prompt", "hi", "--layer", "2", "--sae", "/nonexistent/sae"], "SAE path /nonexistent/sae does not exist."),
    (["sae", "features", "--prompt", "hi", "--top", "0"], "--top must be between 1 and 10000"),
    (["sae", "features", "--prompt", "hi", "--sae", "."], "--sae needs --layer"),
    (["sae", "train", "--layer", "3", "--k", "0"], "--k must be between 1 and the width"),
    (["sae", "train", "--layer", "3", "--corpus", "/nonexistent/dir"], "Corpus path /nonexistent/dir does not exist."),
    (["sae", "train", "--layer", "3", "--kind", "gated"], "invalid choice"),
])
def test_bad_input_is_one_sentence_and_exit_2(capsys, argv, message):
    code, out, err = run_cli(capsys, *argv)
    assert code == 2
    assert message in err and "Traceback" not in err and out == ""


@pytest.mark.integration
def test_sae_that_does_not_fit_the_bundled_model(capsys, tmp_path):
    write_saelens(tmp_path / "small", d_in=32, hook="blocks.2.hook_resid_post")
    code, out, err = run_cli(capsys, "sae", "features", "--prompt", "Hello there", "--layer", "2",
                             "--sae", str(tmp_path / "small"))
    assert code == 2
    last = err.strip().splitlines()[-1]  # earlier lines are loading progress
    assert last.startswith("error: ") and "expected W_enc [576, d_sae]" in last and "Traceback" not in err


@pytest.mark.integration
def test_features_of_a_synthetic_sae_on_the_bundled_model(capsys, tmp_path):
    write_saelens(tmp_path / "sae", d_in=576, d_sae=128, hook="blocks.2.hook_resid_post", arch="topk", k=8)
    code, out, err = run_cli(capsys, "sae", "features", "--prompt", "The capital of France is", "--layer", "2",
                             "--sae", str(tmp_path / "sae"), "--position", "-2", "--top", "5", "--json")
    assert code == 0, err
    data = json.loads(out)
    assert data["hook_in"] == "blocks.2.hook_resid_post" and data["position"] == len(data["token_ids"]) - 2
    assert 1 <= len(data["features"]) <= 5 and data["l0"] <= 8
    acts = [f["activation"] for f in data["features"]]
    assert acts == sorted(acts, reverse=True) and data["fvu"] is not None


@pytest.mark.integration
@pytest.mark.skipif(not (SHIPPED_SAE / "sae_weights.safetensors").is_file(), reason="the shipped SAE is not trained")
def test_shipped_sae_through_the_default_config(capsys):
    code, out, err = run_cli(capsys, "sae", "features", "--prompt", "The capital of France is", "--json")
    assert code == 0, err
    data = json.loads(out)
    assert data["layer"] == 12 and data["hook_in"] == "blocks.12.hook_resid_post"
    assert 1 <= data["l0"] <= 32 and len(data["features"]) == min(10, data["l0"])
    assert 0.0 <= data["fvu"] < 2.0
    assert all(f["label"] for f in data["features"])  # the feature index labels every active feature
    ref = data["reference_variance"]  # stored with the shipped SAE
    assert ref["value"] > 0 and ref["tokens"] > 1000 and "held-out" in ref["source"]
    assert data["reference_fvu"] == pytest.approx(data["sq_error"] / ref["value"], rel=1e-6)
