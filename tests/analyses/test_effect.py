"""The effect mode: KL(intervened ‖ baseline) per token, checked against two independent full passes."""

from __future__ import annotations

import pytest
import torch

from explorer.analyses.base import AnalysisContext
from explorer.analyses.effect import EffectMode
from explorer.engine.interventions.hooks import InterventionHooks
from explorer.engine.interventions.spec import Steer


@pytest.fixture
def session(tiny_session):
    """The tiny session; its interventions are switched off afterwards (the model fixture is shared)."""
    yield tiny_session
    tiny_session.set_interventions([])


def test_effect_mode_is_the_per_token_kl(session):
    s = session
    w = s.wrapper
    off = EffectMode().compute(AnalysisContext(view=s.compute(), wrapper=w, cursor=0))
    assert all(v is None for v in off.values) and "No intervention" in off.legend
    d = w.model.config.hidden_size
    items = [Steer(0, tuple(torch.linspace(-2, 2, d).tolist()), 1.5, start=3)]
    s.set_interventions(items)
    view = s.compute()
    result = EffectMode().compute(AnalysisContext(view=view, wrapper=w, cursor=0))
    s.set_interventions([])  # the session's hooks off: an untouched pass
    ids = torch.tensor([list(view.ids)])
    with torch.no_grad():
        base = torch.log_softmax(w.model(input_ids=ids).logits[0].double(), -1)  # [n, V]
        with InterventionHooks(w.model, items):
            inter = torch.log_softmax(w.model(input_ids=ids).logits[0].double(), -1)
    kl = (inter.exp() * (inter - base)).sum(-1)  # [n]
    assert list(result.values) == pytest.approx(kl.tolist(), abs=1e-5)
    assert result.values[:3] == pytest.approx((0.0, 0.0, 0.0), abs=1e-7)  # steering from position 3 on: nothing before it
    assert result.values[-1] == pytest.approx(view.effect.kl_next)
    assert result.hi == pytest.approx(max(result.values))
