"""Caches that never lie: converted models keyed by content and verified; every disk cache within a budget."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from explorer.cli import main
from explorer.engine import converted_cache as cc
from explorer.io import cache_budget


@pytest.fixture(autouse=True)
def _cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("TOKEN_EXPLORER_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture
def gguf(tmp_path):
    """Stands in for a GGUF: only its bytes matter to the cache (the key is their hash)."""
    p = tmp_path / "checkout-a" / "model.gguf"
    p.parent.mkdir()
    p.write_bytes(b"GGUF" + bytes(range(256)) * 64)
    return p


class FakeDequantize:
    """A tiny Llama in place of transformers' GGUF reader; ``nan_first`` poisons the first conversion."""

    def __init__(self, tokenizer, nan_first: bool = False):
        self.tokenizer, self.nan_first, self.calls = tokenizer, nan_first, 0

    def __call__(self, _path):
        from transformers import AutoModelForCausalLM, LlamaConfig

        self.calls += 1
        torch.manual_seed(0)
        cfg = LlamaConfig(vocab_size=len(self.tokenizer), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                          num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=32)
        model = AutoModelForCausalLM.from_config(cfg).eval()
        if self.nan_first and self.calls == 1:
            with torch.no_grad():
                model.lm_head.weight.fill_(float("nan"))
        return model, self.tokenizer


def test_same_gguf_in_two_checkouts_shares_one_entry(gguf, tiny_tokenizer, tmp_path):
    fake = FakeDequantize(tiny_tokenizer)
    other = tmp_path / "checkout-b" / "model.gguf"
    other.parent.mkdir()
    other.write_bytes(gguf.read_bytes())
    first = cc.convert_gguf(gguf, dequantize=fake)
    second = cc.convert_gguf(other, dequantize=fake)
    assert first == second and fake.calls == 1
    assert len(cache_budget.entries("converted")) == 1


def _contents(entry: Path) -> dict:
    """Tensors of the weights (safetensors' header order varies run to run), bytes of the rest."""
    from safetensors.torch import load_file

    return {p.name: {k: v.clone() for k, v in load_file(p).items()} if p.suffix == ".safetensors" else p.read_bytes()
            for p in entry.iterdir() if p.name not in (cc.VERIFIED, cc.MARKER)}


@pytest.mark.parametrize("damage", ["weights", "tokenizer", "config"])
def test_a_damaged_entry_is_rebuilt(gguf, tiny_tokenizer, damage):
    fake = FakeDequantize(tiny_tokenizer)
    entry = cc.convert_gguf(gguf, dequantize=fake)
    good = _contents(entry)
    if damage == "weights":
        with open(entry / "model.safetensors", "r+b") as fh:  # bytes overwritten in place
            fh.seek(-64, os.SEEK_END)
            fh.write(b"\xff" * 64)
    elif damage == "tokenizer":
        (entry / "tokenizer.json").write_text(json.dumps({"version": "1.0", "model": {}}))  # valid JSON, wrong shape
    else:
        (entry / "config.json").write_text("{}")  # a stub config
    assert cc.verify_entry(entry) is not None
    again = cc.convert_gguf(gguf, dequantize=fake)
    assert fake.calls == 2 and cc.verify_entry(again) is None
    rebuilt = _contents(again)
    assert rebuilt.keys() == good.keys()
    for name, value in good.items():
        if isinstance(value, dict):
            assert value.keys() == rebuilt[name].keys() and all(torch.equal(value[k], rebuilt[name][k]) for k in value)
        else:
            assert value == rebuilt[name]


def test_stale_temporaries_are_cleaned_but_not_a_running_conversion(gguf, tiny_tokenizer):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    root = cc.converted_dir()
    stale = root / f"x.tmp-{int(dead.stdout)}-abc"
    running = root / f"y.tmp-{os.getppid()}-abc"  # our parent process is alive
    for d in (stale, running):
        d.mkdir(parents=True)
        (d / "model.safetensors").write_bytes(b"half")
    cc.convert_gguf(gguf, dequantize=FakeDequantize(tiny_tokenizer))
    assert not stale.exists() and running.exists()


def test_non_finite_first_step_rebuilds(gguf, tiny_tokenizer, monkeypatch):
    from explorer.engine.loading import load_model

    fake = FakeDequantize(tiny_tokenizer, nan_first=True)
    monkeypatch.setattr(cc, "_dequantize", fake)
    loaded = load_model(str(gguf), device="cpu")
    assert fake.calls == 2
    logits = loaded.model(torch.tensor([[1, 5, 6]])).logits  # [1, 3, vocab]
    assert torch.isfinite(logits).all()


def test_lru_eviction_keeps_the_budget_and_the_entry_in_use(tmp_path):
    root = cache_budget.area_path("converted")
    paths = []
    for i in range(4):
        d = root / f"m{i}"
        d.mkdir(parents=True)
        (d / "model.safetensors").write_bytes(b"x" * 1000)
        os.utime(d, (1000 + i, 1000 + i))  # m0 least recently used
        paths.append(d)
    removed = cache_budget.enforce_budget("converted", keep={paths[0]}, budget=2500)
    assert removed == [paths[1], paths[2]]  # m0 is in use, so the next oldest go
    assert sum(e.bytes for e in cache_budget.entries("converted")) <= 2500


def _features(n: int):
    from explorer.engine.sae.features import PromptFeatures, SparseRows

    offsets = np.arange(n + 1, dtype=np.int64) * 8  # 8 features per token
    rows = SparseRows(offsets, np.arange(8 * n, dtype=np.int64) % 64, np.ones(8 * n, dtype=np.float32))
    return PromptFeatures(layer=0, hook_in="h", hook_out="h", d_sae=64, rows=rows, l0=np.full(n, 8),
                          sq_err=np.zeros(n, dtype=np.float32), variance=1.0, prompt_fvu=0.5)


def test_sae_feature_cache_stays_within_its_budget(tmp_path):
    from explorer.engine.sae.cache import FeatureCache

    budget = 60_000
    cache = FeatureCache(capacity=2, directory=tmp_path / "sae", budget=budget)
    for n in range(1, 80):  # stepping a prompt token by token: entries of growing size
        cache.put(f"{n:064x}", _features(n))
    sizes = [e.bytes for e in cache_budget.entries("sae_features", tmp_path / "sae")]
    assert sum(sizes) <= budget + budget / 20 + max(sizes)  # checked every budget/20 bytes written
    assert cache.get(f"{79:064x}") is not None  # the newest survives


def test_cache_command_shows_and_clears(capsys):
    d = cache_budget.area_path("converted") / "m"
    d.mkdir(parents=True)
    (d / "model.safetensors").write_bytes(b"x" * 2**20)
    assert main(["cache", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)["caches"]}
    assert rows["converted"]["bytes"] == 2**20 and rows["converted"]["entries"] == 1
    assert main(["cache", "--clear"]) == 0
    assert "Freed 1.0 MB" in capsys.readouterr().out and not d.exists()
    assert main(["cache", "--clear", "nope"]) == 2


def test_old_format_entries_go_once_unused(gguf, tiny_tokenizer):
    root = cc.converted_dir()
    old, recent = root / "SmolLM2-per-path-1", root / "SmolLM2-per-path-2"
    for d in (old, recent):
        d.mkdir(parents=True)
        (d / cc.MARKER).write_text(json.dumps({"source": "/a/checkout/model.gguf", "files": []}))  # format 1
    os.utime(old, (time.time() - 2 * cc.STALE_FORMAT_SECONDS,) * 2)
    cc.convert_gguf(gguf, dequantize=FakeDequantize(tiny_tokenizer))
    assert not old.exists() and recent.exists()


def test_sae_cache_write_failure_costs_the_disk_level_only(tmp_path, monkeypatch):
    """A full disk makes safetensors raise SafetensorError (not OSError): the mode still works."""
    import safetensors.torch
    from safetensors import SafetensorError

    from explorer.engine.sae.cache import FeatureCache

    def full_disk(*_a, **_k):
        raise SafetensorError("Error while serializing: IoError(No space left on device)")

    monkeypatch.setattr(safetensors.torch, "save_file", full_disk)
    cache = FeatureCache(capacity=2, directory=tmp_path / "sae")
    cache.put("ab" * 32, _features(3))
    assert cache.get("ab" * 32) is not None  # served from memory
    assert not list((tmp_path / "sae").rglob("*.tmp"))  # no half-written temporaries left
