"""The real converted cache of the bundled model: damaged bytes are caught and rebuilt (slow: two conversions)."""

from __future__ import annotations

import os

import pytest
import torch

pytestmark = pytest.mark.integration


def test_bundled_conversion_is_verified_and_rebuilt(tmp_path, monkeypatch):
    from explorer.engine import converted_cache as cc
    from explorer.engine.loading import bundled_gguf_path, load_model

    monkeypatch.setenv("TOKEN_EXPLORER_CACHE_DIR", str(tmp_path / "cache"))
    loaded = load_model("bundled", device="cpu")
    entry = cc.entry_for(bundled_gguf_path())
    assert cc.verify_entry(entry) is None
    del loaded
    with open(entry / "model.safetensors", "r+b") as fh:  # overwrite weights in place with NaN bytes
        fh.seek(os.path.getsize(entry / "model.safetensors") // 2)
        fh.write(b"\xff" * 4096)
    assert "does not match" in cc.verify_entry(entry)
    again = load_model("bundled", device="cpu")
    assert cc.verify_entry(entry) is None
    ids = again.tokenizer("The capital of France is", return_tensors="pt").input_ids
    with torch.no_grad():
        logits = again.model(ids).logits[0, -1]  # [vocab]
    assert torch.isfinite(logits).all()
    assert again.tokenizer.decode(int(logits.argmax())) == " Paris"
