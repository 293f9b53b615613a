"""`main.py analyze`: the JSON shape of the issue, the same numbers as the app's code, bad input -> exit 2."""

from __future__ import annotations

import json

import pytest

from explorer.cli import main

pytestmark = pytest.mark.integration  # every test here loads the bundled model

PROMPT = "The capital of France is Paris"


def run_json(capsys, *args):
    code = main(["analyze", "--prompt", PROMPT, "--json", *args])
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out)


@pytest.mark.usefixtures("bundled_wrapper")  # converts the bundled model once if needed
def test_layer_prob_json_shape(capsys):
    data = run_json(capsys, "--mode", "layer_prob", "--position", "3")
    assert set(data) == {"schema_version", "mode", "tokens", "layers", "checks", "extra"}
    assert data["schema_version"] == 1
    assert data["mode"] == "layer_prob"
    assert [t["index"] for t in data["tokens"]] == list(range(len(data["tokens"])))
    assert set(data["tokens"][0]) == {"index", "id", "text", "value"}
    assert data["tokens"][0]["value"] is None  # nothing predicts the first token
    assert len(data["layers"]["prob"]) == 31  # SmolLM2: 30 blocks -> residual layers 0..30
    assert data["checks"]["lens_kl_last"] < 1e-5
    assert data["extra"]["position"] == 3
    assert "".join(t["text"] for t in data["tokens"]) == PROMPT


@pytest.mark.usefixtures("bundled_wrapper")
def test_cheap_and_attention_modes(capsys):
    prob = run_json(capsys, "--mode", "probability")
    assert prob["layers"] is None and prob["checks"] == {}
    att = run_json(capsys, "--mode", "attention", "--method", "raw", "--layer", "-1", "--head", "0")
    n = len(att["tokens"])
    assert sum(t["value"] for t in att["tokens"]) == pytest.approx(1.0, abs=1e-5)
    assert len(att["layers"]["row_entropy_bits"]) == 30
    assert att["extra"]["setting"] == {"method": "raw", "layer": 29, "head": 0}
    assert n == len(prob["tokens"])


@pytest.mark.parametrize("args, says", [
    (["--mode", "importance"], "Unknown mode"),
    (["--mode", "attention", "--position", "99"], "outside the prompt"),
    (["--mode", "attention", "--method", "raw", "--layer", "40"], "out of range"),
    (["--mode", "attribution", "--steps", "0"], "--steps"),
])
def test_bad_input_is_one_sentence_and_exit_2(capsys, bundled_wrapper, args, says):
    code = main(["analyze", "--prompt", PROMPT, *args])
    out, err = capsys.readouterr()
    assert code == 2
    assert says in err and "Traceback" not in err
