"""A trained SAE is never replaced by a second `sae train`, unless --overwrite says so."""

from __future__ import annotations

import random

import pytest

from explorer.cli import main
from explorer.engine.sae.training.train import Trainer, TrainSettings
from explorer.errors import InputError
from tests.conftest import WORDS


class Quiet:
    def show(self, *a, **k):
        pass

    def end(self):
        pass


def test_second_training_refuses_unless_overwrite(tiny_wrapper, tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    rng = random.Random(0)
    (corpus / "t.txt").write_text(" ".join(rng.choice(WORDS[4:30]) for _ in range(800)))
    settings = TrainSettings(layer=1, k=4, width=32, max_tokens=300, context=16, batch=128, heldout_tokens=64,
                             corpus=(str(corpus),), epochs=1)
    out = tmp_path / "sae"
    Trainer(tiny_wrapper, settings, out, progress=Quiet()).run()
    weights = (out / "sae_weights.safetensors").read_bytes()
    with pytest.raises(InputError, match="already holds a trained SAE.*--overwrite"):
        Trainer(tiny_wrapper, settings, out, progress=Quiet())
    assert (out / "sae_weights.safetensors").read_bytes() == weights
    again = TrainSettings(**{**settings.__dict__, "seed": 1})
    Trainer(tiny_wrapper, again, out, progress=Quiet(), overwrite=True).run()
    assert (out / "sae_weights.safetensors").read_bytes() != weights


def test_command_refuses_before_loading_the_model(tmp_path, capsys):
    out = tmp_path / "sae"
    out.mkdir()
    (out / "cfg.json").write_text("{}")
    assert main(["sae", "train", "--layer", "1", "--out", str(out), "--model", "/no/such/model"]) == 2
    err = capsys.readouterr().err
    assert "already holds a trained SAE" in err and err.count("\n") == 1
