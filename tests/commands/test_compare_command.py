"""`main.py compare`: the issue's JSON, numbers equal to two independent full passes, bad input -> exit 2."""

from __future__ import annotations

import json

import pytest
import torch

from explorer.cli import main

TEXT = "once upon a time there was a big red dog and the cat sat on the mat . the dog ran"


def _save_tiny(path, tokenizer, seed: int) -> str:
    from transformers import AutoModelForCausalLM, LlamaConfig

    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=len(tokenizer.get_vocab()), hidden_size=32, intermediate_size=64,
                      num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                      max_position_embeddings=64, bos_token_id=1, eos_token_id=2, pad_token_id=3)
    AutoModelForCausalLM.from_config(cfg).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return str(path)


@pytest.fixture(scope="module")
def model_dirs(tmp_path_factory, tiny_sp_tokenizer, tiny_tokenizer):
    root = tmp_path_factory.mktemp("compare-models")
    return {"a": _save_tiny(root / "a", tiny_sp_tokenizer, 0), "b": _save_tiny(root / "b", tiny_sp_tokenizer, 1),
            "other_vocab": _save_tiny(root / "word", tiny_tokenizer, 2)}


@pytest.fixture
def text_file(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text(TEXT)
    return str(path)


def run_json(capsys, *args):
    code = main(["compare", "--json", "--device", "cpu", *args])
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out), err


def _full_log_softmax(model_dir: str, ids: list[int]) -> torch.Tensor:
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    with torch.no_grad():
        return torch.log_softmax(model(input_ids=torch.tensor([ids])).logits[0].double(), -1)  # [n, vocab]


def test_json_shape_and_numbers(capsys, model_dirs, text_file):
    data, err = run_json(capsys, "--model", model_dirs["a"], "--compare", model_dirs["b"], "--input", text_file)
    assert set(data) == {"model_a", "model_b", "summary", "tokens"}
    assert set(data["summary"]) == {"tokens", "mean_kl", "p90_kl", "p99_kl", "p999_kl", "max_kl", "same_top"}
    tokens = data["tokens"]
    assert set(tokens[0]) == {"index", "id", "text", "kl", "logp_a", "logp_b", "top_a", "top_b"}
    assert tokens[0]["kl"] is None and tokens[0]["logp_a"] is None
    assert "compared" in err  # progress on stderr
    ids = [t["id"] for t in tokens]
    la, lb = _full_log_softmax(model_dirs["a"], ids), _full_log_softmax(model_dirs["b"], ids)
    kl = (la.exp() * (la - lb)).sum(-1)
    for t in tokens[1:]:
        p = t["index"] - 1
        assert t["kl"] == pytest.approx(float(kl[p]), abs=1e-5)
        assert t["logp_a"] == pytest.approx(float(la[p, t["id"]]), abs=1e-4)
        assert t["logp_b"] == pytest.approx(float(lb[p, t["id"]]), abs=1e-4)
        assert (t["top_a"], t["top_b"]) == (int(la[p].argmax()), int(lb[p].argmax()))
    scored = kl[:-1]
    assert data["summary"]["tokens"] == len(ids) - 1
    assert data["summary"]["mean_kl"] == pytest.approx(float(scored.mean()), abs=1e-6)
    assert data["summary"]["max_kl"] == pytest.approx(float(scored.max()), abs=1e-6)
    same = sum(int(la[p].argmax()) == int(lb[p].argmax()) for p in range(len(ids) - 1))
    assert data["summary"]["same_top"] == pytest.approx(same / (len(ids) - 1))


def test_self_compare_and_windows(capsys, model_dirs, text_file):
    data, _ = run_json(capsys, "--model", model_dirs["a"], "--compare", model_dirs["a"], "--input", text_file,
                       "--window", "7")
    s = data["summary"]
    assert (s["mean_kl"], s["max_kl"], s["same_top"]) == (0.0, 0.0, 1.0)
    assert [t["kl"] is None for t in data["tokens"]] == [i % 7 == 0 for i in range(len(data["tokens"]))]


def test_precision_flag_and_text_output(capsys, model_dirs):
    code = main(["compare", "--model", model_dirs["a"], "--compare-bf16", "--prompt", TEXT, "--device", "cpu"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "B: a @bf16" in out and "same top token" in out and "KL(A‖B)" in out


@pytest.mark.parametrize("extra, says", [
    ([], "Say what to compare with"),
    (["--compare", "/no/such/model"], "does not exist"),
    (["--compare-bf16", "--window", "1"], "--window must be at least 2"),
])
def test_bad_input_is_one_sentence_and_exit_2(capsys, model_dirs, text_file, extra, says):
    code = main(["compare", "--model", model_dirs["a"], "--input", text_file, "--device", "cpu", *extra])
    out, err = capsys.readouterr()
    assert code == 2
    assert says in err.splitlines()[-1] and "Traceback" not in err and err.count("error:") == 1


def test_other_vocabulary_is_refused(capsys, model_dirs, text_file):
    code = main(["compare", "--model", model_dirs["a"], "--compare", model_dirs["other_vocab"],
                 "--input", text_file, "--device", "cpu"])
    err = capsys.readouterr().err
    assert code == 2
    assert "vocabularies differ" in err.splitlines()[-1] and "Traceback" not in err


def test_out_of_memory_on_load_is_one_sentence(capsys, model_dirs, text_file, monkeypatch):
    import explorer.engine.loading as loading

    real = loading.load_model

    def second_runs_out(name, **kw):
        if name == "huge":
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 80.00 GiB")
        return real(name, **kw)

    monkeypatch.setattr(loading, "load_model", second_runs_out)
    code = main(["compare", "--model", model_dirs["a"], "--compare", "huge", "--input", text_file, "--device", "cpu"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.splitlines()[-1].startswith("error: Not enough memory to open huge beside a")


def test_analyze_divergence_mode_uses_the_same_numbers(capsys, model_dirs):
    code = main(["analyze", "--mode", "divergence", "--model", model_dirs["a"], "--compare", model_dirs["b"],
                 "--prompt", TEXT, "--device", "cpu", "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    data = json.loads(out)
    ids = [t["id"] for t in data["tokens"]]
    la, lb = _full_log_softmax(model_dirs["a"], ids), _full_log_softmax(model_dirs["b"], ids)
    kl = (la.exp() * (la - lb)).sum(-1)
    assert data["tokens"][0]["value"] is None
    assert [t["value"] for t in data["tokens"][1:]] == pytest.approx(kl[:-1].tolist(), abs=1e-5)
    assert data["extra"]["summary"]["tokens"] == len(ids) - 1 and data["extra"]["by"] == "kl"
    code = main(["analyze", "--mode", "divergence", "--model", model_dirs["a"], "--prompt", TEXT, "--device", "cpu"])
    err = capsys.readouterr().err
    assert code == 2 and "No second model is open" in err.splitlines()[-1]
