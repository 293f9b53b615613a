"""The SAE features mode on the tiny models with synthetic SAEs: numbers, selection, layers, cache, unavailability."""

from __future__ import annotations

import json

import pytest
import torch

from explorer.analyses.base import AnalysisContext
from explorer.analyses.registry import get_analysis
from explorer.analyses.sae_features import SaeFeaturesMode
from explorer.config import Config, DisplaySection, ModelSection, PromptSection, SaeEntry
from explorer.engine.sae.hooks import capture
from explorer.engine.sae.formats.loader import load_sae
from explorer.errors import AnalysisUnavailable, InputError
from tests.engine.sae_files import write_clt, write_saelens


@pytest.fixture(autouse=True)
def _cache_dir(tmp_path, monkeypatch):
    """Feature caches go to a temporary folder (the converted bundled model stays where it is)."""
    monkeypatch.setattr("explorer.engine.sae.catalog.feature_cache_dir", lambda: tmp_path / "cache" / "sae_features")


def make_config(*entries, enable=True):
    return Config(model=ModelSection(enable_sae=enable), sae=tuple(entries),
                  prompt=PromptSection(example_prompt="once upon a time there was a big red cat", max_prompts=4),
                  display=DisplaySection(tokens_to_show=10, cache_size=8), source="<test>")


def context(session, config, cursor, **params):
    view = session.compute()
    return AnalysisContext(view=view, wrapper=session.wrapper, cursor=cursor, params=params, config=config)


def session_for(wrapper, config):
    from explorer.engine.session import Session

    return Session(wrapper, config, seed=0)


class ForwardCounter:
    def __init__(self, model):
        self.calls = 0
        self.handle = model.model.register_forward_pre_hook(self._count)

    def _count(self, *_):
        self.calls += 1

    def close(self):
        self.handle.remove()


def test_registered_and_lazy():
    mode = get_analysis("sae_features")
    assert isinstance(mode, SaeFeaturesMode) and mode.lazy


def test_features_of_the_cursor_token_match_a_direct_computation(tiny_wrapper, tmp_path):
    write_saelens(tmp_path / "sae")
    config = make_config(SaeEntry(layer=1, path=str(tmp_path / "sae")))
    session = session_for(tiny_wrapper, config)
    result = SaeFeaturesMode().compute(context(session, config, cursor=3))
    ids = list(session.current.ids)
    sae = load_sae(tmp_path / "sae")
    x = capture(tiny_wrapper, ids, ["blocks.1.hook_resid_post"])["blocks.1.hook_resid_post"]
    f, x_hat = sae.forward(x)
    row = f[3]
    order = torch.argsort(row, descending=True)[: int((row > 0).sum())][:10]
    assert [item["index"] for item in result.extra["features"]] == order.tolist()
    assert [item["activation"] for item in result.extra["features"]] == pytest.approx(row[order].tolist(), rel=1e-5)
    assert result.extra["l0"] == int((row > 0).sum()) == result.checks["l0"]
    rows = x[1:]
    var = float(((rows - rows.mean(0)) ** 2).sum(-1).mean())
    assert result.extra["fvu"] == pytest.approx(float(((x[3] - x_hat[3]) ** 2).sum()) / var, rel=1e-4)
    prompt_fvu = float(((x[1:] - x_hat[1:]) ** 2).sum() / ((rows - rows.mean(0)) ** 2).sum())
    assert result.extra["prompt_fvu"] == pytest.approx(prompt_fvu, rel=1e-4)
    top = int(order[0])
    assert result.extra["feature"] == top and not result.extra["feature_selected"]
    assert list(result.values) == pytest.approx(f[:, top].tolist(), abs=1e-6)
    assert result.hi == pytest.approx(float(f[:, top].max()))
    assert any("FVU" in line for line in result.details)


def test_selecting_a_feature_colours_the_prompt_by_it(tiny_wrapper, tmp_path):
    write_saelens(tmp_path / "sae")
    config = make_config(SaeEntry(layer=1, path=str(tmp_path / "sae")))
    session = session_for(tiny_wrapper, config)
    ids = list(session.current.ids)
    sae = load_sae(tmp_path / "sae")
    f = sae.encode(capture(tiny_wrapper, ids, ["blocks.1.hook_resid_post"])["blocks.1.hook_resid_post"])
    j = int(f.sum(0).argmax())
    result = SaeFeaturesMode().compute(context(session, config, cursor=0, feature=j))
    assert list(result.values) == pytest.approx(f[:, j].tolist(), abs=1e-6)
    assert result.extra["feature"] == j and result.extra["feature_selected"]
    assert f"#{j}" in result.legend
    with pytest.raises(InputError, match="features 0..63"):
        SaeFeaturesMode().compute(context(session, config, cursor=0, feature=64))


def test_layers_cycle_with_p(tiny_wrapper, tmp_path):
    write_saelens(tmp_path / "l0", hook="blocks.0.hook_resid_post")
    write_saelens(tmp_path / "l1")
    config = make_config(SaeEntry(layer=1, path=str(tmp_path / "l1")), SaeEntry(layer=0, path=str(tmp_path / "l0")))
    assert SaeFeaturesMode.layers(config, tiny_wrapper) == [0, 1]
    assert SaeFeaturesMode.next_layer(config, tiny_wrapper, 0) == 1
    assert SaeFeaturesMode.next_layer(config, tiny_wrapper, 1) == 0
    assert SaeFeaturesMode.next_layer(config, tiny_wrapper, None) == 0
    session = session_for(tiny_wrapper, config)
    for layer in (0, 1):
        result = SaeFeaturesMode().compute(context(session, config, cursor=2, layer=layer))
        assert result.extra["layer"] == layer and result.extra["hook_in"] == f"blocks.{layer}.hook_resid_post"


def test_two_level_cache_and_corrupt_entries(tiny_wrapper, tiny_llama, tmp_path):
    from explorer.engine.sae.catalog import catalog_for

    write_saelens(tmp_path / "sae")
    config = make_config(SaeEntry(layer=1, path=str(tmp_path / "sae")))
    session = session_for(tiny_wrapper, config)
    mode = SaeFeaturesMode()
    first = mode.compute(context(session, config, cursor=4))
    counter = ForwardCounter(tiny_llama)
    try:
        again = mode.compute(context(session, config, cursor=2))  # a cursor move: no model work
        assert counter.calls == 0
        catalog = catalog_for(config, tiny_wrapper)
        catalog.cache.clear_memory()
        from_disk = mode.compute(context(session, config, cursor=4))
        assert counter.calls == 0 and catalog.cache.hits["disk"] == 1
        assert from_disk.values == first.values and from_disk.extra["fvu"] == first.extra["fvu"]
        for entry in (tmp_path / "cache" / "sae_features").rglob("*.safetensors"):
            entry.write_bytes(b"\x00garbage")
        catalog.cache.clear_memory()
        recomputed = mode.compute(context(session, config, cursor=4))
        assert counter.calls == 1 and catalog.cache.hits["corrupt"] == 1
        assert recomputed.values == first.values
    finally:
        counter.close()
    assert again.extra["position"] == 2


def test_unavailable_without_saes_and_one_sentence_on_mismatch(tiny_wrapper, tmp_path):
    mode = SaeFeaturesMode()
    write_saelens(tmp_path / "sae")
    session = session_for(tiny_wrapper, make_config())
    with pytest.raises(AnalysisUnavailable, match="enable_sae"):
        mode.compute(context(session, make_config(SaeEntry(layer=1, path=str(tmp_path / "sae")), enable=False), 0))
    with pytest.raises(AnalysisUnavailable, match="No SAE is configured"):
        mode.compute(context(session, make_config(), 0))
    with pytest.raises(AnalysisUnavailable, match="configuration"):
        mode.compute(AnalysisContext(view=session.compute(), wrapper=tiny_wrapper, cursor=0, params={}))
    config = make_config(SaeEntry(layer=1, path=str(tmp_path / "sae")))
    with pytest.raises(AnalysisUnavailable, match="configured layers: 1"):
        mode.compute(context(session, config, 0, layer=0))
    write_saelens(tmp_path / "wide", d_in=48)
    bad = make_config(SaeEntry(layer=1, path=str(tmp_path / "wide")))
    with pytest.raises(AnalysisUnavailable) as exc:
        mode.compute(context(session, bad, 0))
    assert "expected W_enc [32, d_sae]" in str(exc.value) and "\n" not in str(exc.value)


def test_neuronpedia_labels_name_the_features(tiny_wrapper, tmp_path):
    write_saelens(tmp_path / "sae")
    labels = tmp_path / "sae" / "explanations.jsonl"
    labels.write_text("\n".join(json.dumps({"index": str(i), "description": f"feature number {i}"}) for i in range(64)))
    config = make_config(SaeEntry(layer=1, path=str(tmp_path / "sae"), labels="explanations.jsonl"))
    result = SaeFeaturesMode().compute(context(session_for(tiny_wrapper, config), config, cursor=3))
    assert result.extra["features"]
    assert all(item["label"] == f"feature number {item['index']}" for item in result.extra["features"])
    assert result.extra["feature_label"] == f"feature number {result.extra['feature']}"


def test_cross_layer_transcoder_contributions(tiny_wrapper, tmp_path):
    write_clt(tmp_path / "clt", n_layers=2, jumprelu=False)
    config = make_config(SaeEntry(layer=1, path=str(tmp_path / "clt"), format="circuit_tracer_clt"))
    session = session_for(tiny_wrapper, config)
    result = SaeFeaturesMode().compute(context(session, config, cursor=3, cross_layer=True))
    cross = result.extra["cross_layer"]
    assert cross and {c["layer"] for c in cross} <= {0, 1} and any(c["layer"] == 0 for c in cross)
    assert sum(c["share"] for c in cross) + result.extra["bias_share"] == pytest.approx(1.0, abs=1e-4)
    assert result.extra["hook_out"] == "blocks.1.hook_mlp_out" and result.extra["fvu"] is not None
    # a plain SAE has no cross-layer part, but --cross_layer keeps its ordinary features view
    write_saelens(tmp_path / "sae")
    plain = make_config(SaeEntry(layer=1, path=str(tmp_path / "sae")))
    with_flag = SaeFeaturesMode().compute(context(session, plain, cursor=3, cross_layer=True))
    without = SaeFeaturesMode().compute(context(session, plain, cursor=3))
    assert with_flag.values == without.values and with_flag.extra["cross_layer"] == []
    assert any("not a cross-layer transcoder" in line for line in with_flag.details)


def test_gemma_transcoder_reads_and_predicts_the_sandwiched_mlp(tiny_gemma_wrapper, tmp_path):
    t = write_saelens(tmp_path / "tc", arch="transcoder", hook="blocks.1.ln2.hook_normalized",
                      hook_out="blocks.1.hook_mlp_out", apply_b_dec=False)
    config = make_config(SaeEntry(layer=1, path=str(tmp_path / "tc")))
    session = session_for(tiny_gemma_wrapper, config)
    result = SaeFeaturesMode().compute(context(session, config, cursor=2))
    ids = list(session.current.ids)
    acts = capture(tiny_gemma_wrapper, ids, ["blocks.1.ln2.hook_normalized", "blocks.1.hook_mlp_out"])
    f = torch.relu(acts["blocks.1.ln2.hook_normalized"] @ t["W_enc"] + t["b_enc"])
    y_hat = f @ t["W_dec"] + t["b_dec"]
    y = acts["blocks.1.hook_mlp_out"]
    rows = y[1:]
    var = float(((rows - rows.mean(0)) ** 2).sum(-1).mean())
    assert result.extra["l0"] == int((f[2] > 0).sum())
    assert result.extra["fvu"] == pytest.approx(float(((y[2] - y_hat[2]) ** 2).sum()) / var, rel=1e-4)


def test_reference_fvu_divides_by_the_stored_reference_variance(tiny_wrapper, tmp_path):
    from explorer.engine.sae.reference import reference_variance, store

    write_saelens(tmp_path / "sae")
    config = make_config(SaeEntry(layer=1, path=str(tmp_path / "sae")))
    session = session_for(tiny_wrapper, config)
    without = SaeFeaturesMode().compute(context(session, config, cursor=3))
    assert without.extra["reference_fvu"] is None and "reference_fvu" not in without.checks
    assert any("stores no reference variance" in line for line in without.details)
    store(tmp_path / "sae", 2.5, 4000, "a test")
    config = make_config(SaeEntry(layer=1, path=str(tmp_path / "sae2")))
    (tmp_path / "sae").rename(tmp_path / "sae2")  # a new path: the catalog loads the stored figure afresh
    session = session_for(tiny_wrapper, config)
    result = SaeFeaturesMode().compute(context(session, config, cursor=3))
    ids = list(session.current.ids)
    x = capture(tiny_wrapper, ids, ["blocks.1.hook_resid_post"])["blocks.1.hook_resid_post"]
    _, x_hat = load_sae(tmp_path / "sae2").forward(x)
    assert result.extra["reference_fvu"] == pytest.approx(float(((x[3] - x_hat[3]) ** 2).sum()) / 2.5, rel=1e-4)
    assert result.checks["reference_fvu"] == result.extra["reference_fvu"]
    assert result.extra["reference_variance"] == {"value": 2.5, "tokens": 4000, "source": "a test"}
    assert any("reference FVU" in line and "σ²_ref = 2.5" in line for line in result.details)
    # the figure itself: mean squared distance to the mean over ordinary rows
    y = torch.randn(50, 8, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    value, used = reference_variance(y)
    assert used == 50 and value == pytest.approx(float(((y - y.mean(0)) ** 2).sum(-1).mean()), rel=1e-9)
