"""`intervene`, `patch`, `steer-vector` on the tiny Llama: the issue's JSON, the same numbers as the engine, bad input -> exit 2."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from explorer.cli import main


@pytest.fixture
def tiny_commands(monkeypatch, tiny_wrapper, test_config):
    """Every intervention command opens the tiny Llama instead of the bundled model."""
    from explorer.engine.session import Session

    def open_session(args, cfg=None):
        return Session(tiny_wrapper, test_config, prompts=[[1]], seed=0)

    for mod in ("intervene", "patch", "steer_vector"):
        monkeypatch.setattr(f"explorer.commands.{mod}.open_session", open_session)
    return tiny_wrapper


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_intervene_json_shape_and_numbers(capsys, tmp_path, tiny_commands):
    w = tiny_commands
    v = torch.linspace(-1, 1, 32)
    np.save(tmp_path / "v.npy", v.numpy())
    code, out, err = run(capsys, "intervene", "--prompt", "the cat sat on the", "--steer",
                         f"layer=0,vector={tmp_path / 'v.npy'},alpha=4", "--ablate", "head=1.2,how=mean",
                         "--top", "5", "--generate", "3", "--json")
    assert code == 0, err
    data = json.loads(out)
    assert set(data) >= {"baseline", "intervened", "kl", "interventions", "generated"}
    assert set(data["baseline"]["top"][0]) == {"token", "id", "p", "logprob"}
    assert set(data["intervened"]["top"][0]) == {"token", "id", "p", "logprob", "delta_p"}
    assert [i["kind"] for i in data["interventions"]] == ["steer", "ablate"]
    assert data["interventions"][1]["reference"].startswith("mean over the")
    # baseline numbers = a plain forward pass; KL recomputed here
    ids = w.encode("the cat sat on the")
    with torch.no_grad():
        base = torch.log_softmax(w.model(input_ids=torch.tensor([ids])).logits[0, -1].double(), -1)
    top = data["baseline"]["top"][0]
    assert top["id"] == int(base.argmax()) and top["logprob"] == pytest.approx(float(base.max()), abs=1e-5)
    from explorer.engine.interventions.hooks import InterventionHooks
    from explorer.engine.interventions.spec import from_json

    with InterventionHooks(w.model, from_json(data["interventions"])), torch.no_grad():
        inter = torch.log_softmax(w.model(input_ids=torch.tensor([ids])).logits[0, -1].double(), -1)
    kl = float((inter.exp() * (inter - base)).sum())
    assert data["kl"] == pytest.approx(kl, abs=1e-5)
    row = data["intervened"]["top"][0]
    assert row["delta_p"] == pytest.approx(float(inter[row["id"]].exp() - base[row["id"]].exp()), abs=1e-5)
    assert len(data["generated"]["baseline"]) == len(data["generated"]["intervened"]) == 3
    assert data["generated"]["baseline"][0]["id"] == int(base.argmax())


def test_steer_vector_writes_what_intervene_reads(capsys, tmp_path, tiny_commands):
    (tmp_path / "pos.txt").write_text("the cat sat\na dog ran\n")
    (tmp_path / "neg.txt").write_text("the mat\n\n")
    out_file = tmp_path / "vec.safetensors"
    code, out, err = run(capsys, "steer-vector", "--layer", "1", "--positive", str(tmp_path / "pos.txt"),
                         "--negative", str(tmp_path / "neg.txt"), "--out", str(out_file), "--json")
    assert code == 0, err
    summary = json.loads(out)
    assert summary["n_positive"] == 2 and summary["n_negative"] == 1 and summary["width"] == 32
    code, out, err = run(capsys, "intervene", "--prompt", "the cat", "--steer",
                         f"layer=1,diff={tmp_path / 'pos.txt'}:{tmp_path / 'neg.txt'},alpha=1", "--steer",
                         f"layer=1,vector={out_file},alpha=-1", "--json")
    assert code == 0, err
    data = json.loads(out)
    # the same vector added and subtracted: no effect at all
    assert data["kl"] <= 1e-7  # float32 rounding of h + v − v
    assert data["interventions"][0]["vector"] == pytest.approx(data["interventions"][1]["vector"], abs=1e-6)


def test_patch_json_shape_and_self_patch(capsys, tiny_commands):
    code, out, err = run(capsys, "patch", "--clean", "the cat sat on", "--corrupt", "the dog sat on",
                         "--target", "mat", "--contrast", "the", "--json")
    assert code == 0, err
    data = json.loads(out)
    assert data["metric"] == "logit_diff"
    assert len(data["grid"]) == len(data["layers"]) == 2
    assert all(len(row) == len(data["positions"]) == len(data["tokens"]) for row in data["grid"])
    assert data["grid"][0][1] == pytest.approx(data["clean"], abs=1e-4)  # the differing token, block 0 input
    code, out, err = run(capsys, "patch", "--clean", "the cat sat", "--corrupt", "the cat sat", "--target", "mat",
                         "--method", "attribution", "--site", "attn", "--json")
    assert code == 0, err
    data = json.loads(out)
    assert data["metric"] == "logprob" and data["clean"] == data["corrupt"]
    assert all(abs(c - data["clean"]) < 1e-6 for row in data["grid"] for c in row)


@pytest.mark.parametrize("argv, says", [
    (["intervene", "--prompt", "the cat", "--steer", "layer=9,vector={V},alpha=1"], "out of range"),
    (["intervene", "--prompt", "the cat", "--ablate", "head=0.9"], "heads 0..3"),
    (["intervene", "--prompt", "the cat", "--ablate", "neuron=0.640"], "neurons 0..63"),
    (["intervene", "--prompt", "the cat", "--steer", "layer=0,vector={V},alpha=nan"], "finite"),
    (["intervene", "--prompt", "the cat", "--steer", "layer=0,vector={V},alpha=inf"], "finite"),
    (["intervene", "--prompt", "the cat", "--steer", "layer=0,vector={NARROW},alpha=1"], "width 5, but the model's width is 32"),
    (["intervene", "--prompt", "the cat", "--steer", "layer=0,vector={TXT},alpha=1"], "no vector format"),
    (["intervene", "--prompt", "the cat", "--steer", "layer=0,diff={EMPTY}:{EMPTY}"], "holds no prompts"),
    (["intervene", "--prompt", "the cat", "--clamp", "layer=0,feature=1,value=2"], "needs --sae"),
    (["intervene", "--prompt", "the cat"], "at least one intervention"),
    (["patch", "--clean", "the cat", "--corrupt", "a dog", "--target", "the cat"], "exactly one token"),
    (["patch", "--clean", "the cat", "--corrupt", " ", "--target", "mat"], "--corrupt is empty"),
    (["steer-vector", "--layer", "0", "--positive", "{EMPTY}", "--negative", "{EMPTY}", "--out", "o.safetensors"], "holds no prompts"),
    (["steer-vector", "--layer", "5", "--positive", "{POS}", "--negative", "{POS}", "--out", "o.safetensors"], "out of range"),
])
def test_bad_input_is_one_sentence_and_exit_2(capsys, tmp_path, tiny_commands, argv, says):
    np.save(tmp_path / "v.npy", np.ones(32, dtype=np.float32))
    np.save(tmp_path / "narrow.npy", np.ones(5, dtype=np.float32))
    (tmp_path / "v.txt").write_text("1 2")
    (tmp_path / "empty.txt").write_text("\n  \n")
    (tmp_path / "pos.txt").write_text("the cat\n")
    paths = {"V": tmp_path / "v.npy", "NARROW": tmp_path / "narrow.npy", "TXT": tmp_path / "v.txt",
             "EMPTY": tmp_path / "empty.txt", "POS": tmp_path / "pos.txt"}

    code, out, err = run(capsys, *[a.format(**paths) for a in argv])
    assert code == 2
    assert says in err, err
    lines = err.strip().splitlines()
    assert "Traceback" not in err and lines[-1].startswith("error: ") and sum(l.startswith("error") for l in lines) == 1


def test_text_output_of_intervene_and_patch(capsys, tmp_path, tiny_commands):
    np.save(tmp_path / "v.npy", np.ones(32, dtype=np.float32))
    code, out, err = run(capsys, "intervene", "--prompt", "the cat", "--steer", f"layer=1,vector={tmp_path / 'v.npy'}",
                         "--generate", "2")
    assert code == 0, err
    assert "KL(intervened ‖ baseline) = " in out and "baseline: " in out and "intervened: " in out
    code, out, err = run(capsys, "patch", "--clean", "the cat sat", "--corrupt", "a dog ran on", "--target", "mat")
    assert code == 0, err
    assert "aligned from the end" in out and "aligned from the end" in err
