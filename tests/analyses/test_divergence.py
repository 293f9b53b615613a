"""The divergence mode: KL or Δ log p per token, llama.cpp's summary, ranked tokens, a reason without a model B."""

from __future__ import annotations

import pytest
import torch

from explorer.analyses.divergence import DivergenceMode
from explorer.errors import AnalysisUnavailable, InputError
from tests.analyses.helpers import TINY_IDS, make_comparison_view, make_ctx


def _full_kl(wrapper_a, wrapper_b, ids) -> torch.Tensor:
    """KL(A‖B) per position from two independent full forward passes, float64 ``[n]``."""
    with torch.no_grad():
        la = torch.log_softmax(wrapper_a.model(input_ids=torch.tensor([ids])).logits[0].double(), -1)
        lb = torch.log_softmax(wrapper_b.model(input_ids=torch.tensor([ids])).logits[0].double(), -1)
    return (la.exp() * (la - lb)).sum(-1)


def test_without_a_second_model_it_says_how(tiny_wrapper):
    with pytest.raises(AnalysisUnavailable, match="--compare"):
        DivergenceMode().compute(make_ctx(tiny_wrapper, TINY_IDS))


def test_kl_values_summary_and_ranking(tiny_wrapper):
    from explorer.engine.compare_load import precision_copy

    other = precision_copy(tiny_wrapper, "float16")
    cmp = make_comparison_view(tiny_wrapper, TINY_IDS, other)
    result = DivergenceMode().compute(make_ctx(tiny_wrapper, TINY_IDS, cursor=5, params={"comparison": cmp}))
    kl = _full_kl(tiny_wrapper, other, TINY_IDS)
    assert result.values[0] is None
    assert list(result.values[1:]) == pytest.approx(kl[:-1].tolist(), abs=1e-6)
    assert result.hi == pytest.approx(max(result.values[1:]))
    summary = result.extra["summary"]
    assert summary["tokens"] == len(TINY_IDS) - 1
    assert summary["mean_kl"] == pytest.approx(float(kl[:-1].mean()), abs=1e-6)
    assert summary["max_kl"] == pytest.approx(float(kl[:-1].max()), abs=1e-6)
    ranked = result.extra["ranked"]
    assert ranked[0]["index"] == max(range(1, len(TINY_IDS)), key=lambda i: result.values[i])
    assert any(line.startswith("KL(A‖B) over") and "same top token" in line for line in result.details)
    assert result.extra["next"]["kl"] == pytest.approx(float(kl[-1]), abs=1e-6)


def test_by_logp_is_symmetric_and_signed(tiny_wrapper):
    cmp = make_comparison_view(tiny_wrapper, TINY_IDS)
    result = DivergenceMode().compute(make_ctx(tiny_wrapper, TINY_IDS, params={"comparison": cmp, "by": "logp"}))
    assert result.lo == -result.hi
    assert list(result.values[1:]) == [t.logp_a - t.logp_b for t in cmp.tokens[1:]]
    with pytest.raises(InputError, match="choose one of"):
        DivergenceMode().compute(make_ctx(tiny_wrapper, TINY_IDS, params={"comparison": cmp, "by": "tv"}))


def test_stale_comparison_is_not_shown(tiny_wrapper):
    cmp = make_comparison_view(tiny_wrapper, TINY_IDS[:-1])
    with pytest.raises(AnalysisUnavailable, match="still being computed"):
        DivergenceMode().compute(make_ctx(tiny_wrapper, TINY_IDS, params={"comparison": cmp}))
