"""The bundled model beside its own bfloat16 copy: small but real KL, equal to two independent full passes."""

from __future__ import annotations

import pytest
import torch

from explorer.engine.compare import Comparison
from explorer.engine.compare_load import precision_copy
from explorer.engine.session import Session

pytestmark = pytest.mark.integration

PROMPT = "The capital of France is Paris, and the capital of Italy is"


@pytest.fixture(scope="module")
def bf16_copy(bundled_wrapper):
    return precision_copy(bundled_wrapper, "bfloat16")


def _log_softmax_full(wrapper, ids) -> torch.Tensor:
    with torch.no_grad():
        return torch.log_softmax(wrapper.model(input_ids=torch.tensor([ids])).logits[0].double(), -1)  # [n, vocab]


def test_bf16_copy_kl_equals_full_passes(bundled_wrapper, bf16_copy, test_config):
    session = Session(bundled_wrapper, test_config, prompts=[bundled_wrapper.encode(PROMPT)])
    session.comparison = Comparison(bundled_wrapper, bf16_copy)
    step = session.compute()
    session.append(step.candidates[0].id)  # one incremental step in each model
    step = session.compute()
    view = session.comparison.view(session)
    ids = list(step.ids)
    la, lb = _log_softmax_full(bundled_wrapper, ids), _log_softmax_full(bf16_copy, ids)
    kl = (la.exp() * (la - lb)).sum(-1)  # [n]
    got = torch.tensor([t.kl for t in view.tokens[1:]] + [view.next_kl], dtype=torch.float64)
    # Measured: equal to ~1e-8; the last (incremental) step may round differently in bfloat16.
    assert torch.allclose(got, kl, rtol=1e-3, atol=1e-6), (got, kl)
    assert 0 < view.summary.mean_kl < 0.5  # a precision change, not another model
    best_a = max(view.candidates, key=lambda c: c.p_a)
    assert best_a.id == int(la[-1].argmax())
    assert step.tokens[-1].text.text == " Rome"  # the appended token was A's top choice


def test_bundled_self_compare_is_exact(bundled_wrapper, test_config):
    session = Session(bundled_wrapper, test_config, prompts=[bundled_wrapper.encode(PROMPT)])
    session.comparison = Comparison(bundled_wrapper, bundled_wrapper)
    session.compute()
    view = session.comparison.view(session)
    assert view.summary.mean_kl == 0.0 and view.summary.max_kl == 0.0 and view.summary.same_top == 1.0
