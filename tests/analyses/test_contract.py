"""Every registered mode: one finite value or None per token, inside its colour bounds, a legend."""

from __future__ import annotations

import math

import pytest

from explorer.analyses import ANALYSES, analysis_names
from explorer.analyses.base import CAPABILITIES, ModeResult, mode_params
from explorer.analyses.cache import ResultCache, compute_mode
from tests.analyses.helpers import TINY_IDS, make_comparison_view, make_ctx

ISSUE_ORDER = ["plain", "probability", "entropy", "energy", "attention", "guiding_tokens", "local_bias",
               "hidden_similarity", "residual", "layer_prob", "layer_correlation", "attribution", "embedding_pca",
               "sae_features", "divergence", "effect"]


@pytest.fixture
def sae_config(tmp_path, monkeypatch):
    """The configuration the context carries: the SAE mode reads a synthetic SAE from it."""
    from explorer.config import Config, DisplaySection, ModelSection, SaeEntry
    from tests.engine.sae_files import write_saelens

    monkeypatch.setattr("explorer.engine.sae.catalog.feature_cache_dir", lambda: tmp_path / "sae_cache")
    write_saelens(tmp_path / "sae", hook="blocks.1.hook_resid_post")
    config = Config(model=ModelSection(enable_sae=True), sae=(SaeEntry(layer=1, path=str(tmp_path / "sae")),),
                    display=DisplaySection(tokens_to_show=5, cache_size=8), source="<test>")

    return config


def inputs_for(analysis, wrapper, ids=TINY_IDS) -> dict:
    """Inputs a mode takes in its params beside the options: the divergence mode's comparison."""
    return {"comparison": make_comparison_view(wrapper, ids)} if analysis.name == "divergence" else {}


def test_registry_order():
    assert analysis_names() == ISSUE_ORDER


def check_result(analysis, result: ModeResult, n: int) -> None:
    assert isinstance(result, ModeResult)
    assert len(result.values) == n
    assert result.lo < result.hi
    assert result.legend, f"{analysis.name} has no legend"
    coloured = result.color_values if result.color_values is not None else result.values
    assert len(coloured) == n
    for v in result.values:
        assert v is None or (isinstance(v, float) and math.isfinite(v))
    for v in coloured:
        assert v is None or result.lo - 1e-9 <= v <= result.hi + 1e-9, (analysis.name, v, result.lo, result.hi)
    for name, series in (result.layers or {}).items():
        assert series, name
        assert all(x is None or math.isfinite(x) for x in series), name
    assert all(math.isfinite(v) for v in result.checks.values())


@pytest.mark.parametrize("analysis", ANALYSES, ids=lambda a: a.name)
@pytest.mark.parametrize("name", ["tiny_wrapper", "tiny_gemma_wrapper"])
def test_contract(request, analysis, name, sae_config):
    w = request.getfixturevalue(name)
    cache = ResultCache(8)
    for cursor in (0, 5, len(TINY_IDS) - 1):
        ctx = make_ctx(w, TINY_IDS, cursor, params=inputs_for(analysis, w), config=sae_config)
        check_result(analysis, compute_mode(analysis, ctx, cache), len(TINY_IDS))
    for spec in mode_params(analysis):
        assert spec.key in {"layer", "head", "method", "steps", "baseline", "reduction", "fix_first", "refine", "feature",
                            "quadrature", "budget", "threshold", "state", "by"}
        assert len(spec.keys) <= 2 and (len(spec.keys) != 2 or spec.options is not None), spec
    assert getattr(analysis, "requires", None) is not None and analysis.requires <= CAPABILITIES


@pytest.mark.parametrize("analysis", ANALYSES, ids=lambda a: a.name)
def test_contract_single_token(tiny_wrapper, analysis, sae_config):
    ctx = make_ctx(tiny_wrapper, [1], params=inputs_for(analysis, tiny_wrapper, [1]), config=sae_config)
    check_result(analysis, compute_mode(analysis, ctx, None), 1)
