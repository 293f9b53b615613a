"""Issue 13 §3: the attention-sink token (position 0) is left out of the colour scale of the
attention views; the numbers themselves stay the model's exact weights."""

from __future__ import annotations

import pytest
import torch

from explorer.analyses.attention import AttentionMode
from explorer.analyses.guiding_tokens import GuidingTokensMode
from tests.analyses.helpers import TINY_IDS, make_ctx


def eager_last_row(model, ids, layer):
    with torch.no_grad():
        out = model(torch.tensor([ids]), output_attentions=True)
    return out.attentions[layer][0].float().mean(0)[-1]  # heads averaged, last query row


@pytest.mark.parametrize("mode, params", [(GuidingTokensMode, {}), (AttentionMode, {"method": "raw", "layer": -1})])
def test_scale_leaves_out_token_1_and_the_numbers_stay_exact(tiny_wrapper, mode, params):
    ref = eager_last_row(tiny_wrapper.model, TINY_IDS, -1)
    r = mode().compute(make_ctx(tiny_wrapper, TINY_IDS, params=params))
    assert r.values == pytest.approx(ref.tolist(), abs=1e-6)  # exact weights, token 1 included
    assert r.hi == pytest.approx(float(ref[1:].max()), abs=1e-6)  # the scale's top ignores token 1
    assert "without token 1, the attention sink" in r.legend


def test_cursor_on_token_1_has_nothing_to_leave_out(tiny_wrapper):
    r = GuidingTokensMode().compute(make_ctx(tiny_wrapper, TINY_IDS, cursor=0))
    assert "attention sink" not in r.legend and r.hi == pytest.approx(r.values[0])
