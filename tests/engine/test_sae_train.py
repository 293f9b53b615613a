"""Training an SAE on the tiny model: FVU goes down, files load back, runs resume; the feature index round-trips."""

from __future__ import annotations

import random
import sqlite3

import numpy as np
import pytest

from explorer.engine.sae.feature_index import INDEX_FILE, FeatureIndex, TopContexts, write_index
from explorer.engine.sae.formats.loader import load_sae
from explorer.engine.sae.training.train import Trainer, TrainSettings
from explorer.errors import InputError
from tests.conftest import WORDS


@pytest.fixture
def corpus(tmp_path):
    rng = random.Random(0)
    words = WORDS[4:30]
    path = tmp_path / "corpus" / "text.txt"
    path.parent.mkdir()
    path.write_text(" ".join(rng.choice(words) for _ in range(4000)))
    return path.parent


def settings(corpus, **kw):
    base = dict(layer=1, k=4, width=64, max_tokens=1500, context=16, batch=256, heldout_tokens=200,
                corpus=(str(corpus),), epochs=20, l0_coeff=0.01, bandwidth=0.05)
    return TrainSettings(**(base | kw))


class Quiet:
    def show(self, *a, **k):
        pass

    def end(self):
        pass


@pytest.mark.parametrize("kind", ["topk", "jumprelu"])
def test_training_lowers_fvu_and_writes_loadable_saelens_files(tiny_wrapper, corpus, tmp_path, kind):
    untrained = Trainer(tiny_wrapper, settings(corpus, kind=kind, epochs=0.001), tmp_path / "a", progress=Quiet()).run()
    trained = Trainer(tiny_wrapper, settings(corpus, kind=kind), tmp_path / "b", progress=Quiet()).run()
    assert untrained.steps == 1 and trained.steps > 50
    assert trained.fvu < 0.6 * untrained.fvu
    assert trained.heldout_tokens >= 150 and trained.train_tokens >= 1500  # 13 held-out windows of 15 tokens
    if kind == "topk":
        assert trained.l0 <= 4
    sae = load_sae(tmp_path / "b")
    assert sae.hook_in == "blocks.1.hook_resid_post" and sae.activation == kind and sae.d_sae == 64
    assert sae.metadata["trained_by"] == "token-explorer sae train"
    assert not (tmp_path / "b" / "checkpoint").exists()
    index = FeatureIndex(tmp_path / "b" / INDEX_FILE)
    assert index.meta["hook"] == "blocks.1.hook_resid_post" and int(index.meta["tokens_scanned"]) > 1500
    live = [f for f in range(64) if index.stats(f)[0] > 0]
    assert live and index.top_contexts(live[0])  # a live feature has examples
    assert 0.0 <= trained.dead_fraction < 1.0


def test_training_resumes_from_its_checkpoint(tiny_wrapper, corpus, tmp_path, monkeypatch):
    straight = Trainer(tiny_wrapper, settings(corpus, epochs=2), tmp_path / "s", progress=Quiet()).run()
    real_finish = Trainer._finish

    def crash(self):
        raise KeyboardInterrupt

    monkeypatch.setattr(Trainer, "_finish", crash)
    with pytest.raises(KeyboardInterrupt):
        Trainer(tiny_wrapper, settings(corpus, epochs=2), tmp_path / "r", progress=Quiet()).run()
    assert (tmp_path / "r" / "checkpoint" / "state.json").is_file()
    with pytest.raises(InputError, match="--resume"):
        Trainer(tiny_wrapper, settings(corpus, epochs=2), tmp_path / "r", progress=Quiet())
    with pytest.raises(InputError, match="other settings"):
        Trainer(tiny_wrapper, settings(corpus, epochs=2, width=32), tmp_path / "r", resume=True, progress=Quiet())
    monkeypatch.setattr(Trainer, "_finish", real_finish)
    resumed = Trainer(tiny_wrapper, settings(corpus, epochs=2), tmp_path / "r", resume=True, progress=Quiet()).run()
    assert resumed.steps == straight.steps
    assert abs(resumed.fvu - straight.fvu) < 1e-4  # same data, same steps, same weights


def test_bad_settings_are_one_sentence(tiny_wrapper, corpus, tmp_path):
    with pytest.raises(InputError, match="--layer must be between 0 and 1"):
        Trainer(tiny_wrapper, settings(corpus, layer=7), tmp_path / "x")
    with pytest.raises(InputError, match="--k must be"):
        Trainer(tiny_wrapper, settings(corpus, k=100), tmp_path / "x")
    with pytest.raises(InputError, match="does not exist"):
        Trainer(tiny_wrapper, settings(tmp_path / "nope"), tmp_path / "x")


def test_sampled_source_is_seeded_and_never_ends_early(tiny_wrapper):
    from explorer.engine.sae.training.data import SampledSource

    a = SampledSource(tiny_wrapper, context=8, seed=3, batch=2)
    b = SampledSource(tiny_wrapper, context=8, seed=3, batch=2)
    c = SampledSource(tiny_wrapper, context=8, seed=4, batch=2)
    docs_a = [a.train_doc(i) for i in range(4)]
    assert docs_a == [b.train_doc(i) for i in range(4)]
    assert docs_a != [c.train_doc(i) for i in range(4)]
    assert all(len(d) == 8 for d in docs_a)
    assert not any(t in tiny_wrapper.eos_ids for d in docs_a for t in d[1:])
    assert a.heldout_doc(0) != docs_a[0]


def test_feature_index_round_trip(tmp_path):
    acc = TopContexts(d_sae=5, top_n=2)
    docs = [["The", " cat", " sat", " on", " the", " mat"], ["A", " dog", " ran"]]
    # feature 3 fires on " cat" (0.9), " dog" (0.7) and " mat" (0.2): the two strongest are kept
    acc.add(doc=np.array([0, 1, 0]), pos=np.array([1, 1, 5]), feat=np.array([3, 3, 3]),
            act=np.array([0.9, 0.7, 0.2]), n_tokens=6)
    acc.add(doc=np.array([1]), pos=np.array([2]), feat=np.array([1]), act=np.array([2.5]), n_tokens=3)
    write_index(tmp_path / INDEX_FILE, acc, docs, {"model": "tiny", "hook": "blocks.1.hook_resid_post"},
                window=(2, 1))
    idx = FeatureIndex(tmp_path / INDEX_FILE)
    ctx = idx.top_contexts(3)
    assert [c.token for c in ctx] == [" cat", " dog"]
    assert ctx[0].activation == pytest.approx(0.9) and ctx[0].before == "The" and ctx[0].after == " sat"
    assert ctx[1].before == "A" and ctx[1].after == " ran"
    assert idx.stats(3) == pytest.approx((3 / 9, 0.9))
    assert idx.stats(0) == (0.0, 0.0) and idx.top_contexts(0) == []
    assert idx.summary(3) == "top: ' cat', ' dog'"
    assert idx.meta["model"] == "tiny" and idx.meta["tokens_scanned"] == "9"
    assert "[ cat]" in ctx[0].render()
    # a file that is not an index is one sentence
    bad = tmp_path / "bad.sqlite"
    sqlite3.connect(bad).execute("CREATE TABLE x(y)").connection.commit()
    from explorer.engine.sae.base import SaeLoadError

    with pytest.raises(SaeLoadError, match="not a feature index"):
        FeatureIndex(bad)
