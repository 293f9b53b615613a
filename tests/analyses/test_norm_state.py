"""Local bias and hidden similarity: pre- and post-final-norm states, checked against transformers' own states."""

from __future__ import annotations

import pytest
import torch

from explorer.analyses.hidden_similarity import HiddenSimilarityMode
from explorer.analyses.local_bias import LocalBiasMode
from explorer.errors import InputError
from tests.analyses.helpers import TINY_IDS, make_ctx

WRAPPERS = ["tiny_wrapper", "tiny_gemma_wrapper"]


def _cos(a, b):
    a, b = a.double(), b.double()
    return (a * b).sum(-1) / (a.norm(dim=-1) * b.norm(dim=-1))


@pytest.mark.parametrize("name", WRAPPERS)
def test_local_bias_post_norm_uses_transformers_last_hidden_state(request, name):
    w = request.getfixturevalue(name)
    t = 5
    with torch.no_grad():
        out = w.model(torch.tensor([TINY_IDS]), output_hidden_states=True)
    normed = out.hidden_states[-1][0]  # [n, d]: transformers 5 puts the post-norm state last
    post = LocalBiasMode().compute(make_ctx(w, TINY_IDS, t, {"state": "post_norm"}))
    assert post.values == pytest.approx(_cos(normed, normed[t].expand_as(normed)).tolist(), abs=1e-5)
    assert post.extra["state"] == "post_norm" and "after the final norm" in post.legend
    pre = LocalBiasMode().compute(make_ctx(w, TINY_IDS, t))
    assert pre.extra["state"] == "pre_norm" and "before the final norm" in pre.legend
    with pytest.raises(InputError):
        LocalBiasMode().compute(make_ctx(w, TINY_IDS, t, {"state": "middle"}))


@pytest.mark.parametrize("name", WRAPPERS)
def test_hidden_similarity_post_norm(request, name):
    w = request.getfixturevalue(name)
    t = 4
    with torch.no_grad():
        out = w.model(torch.tensor([TINY_IDS]), output_hidden_states=True)
    final = out.hidden_states[-1][0]  # [n, d] post-norm
    first = w.model.model.norm(out.hidden_states[0][0])  # layer 0 (embeddings) through the final norm
    r = HiddenSimilarityMode().compute(make_ctx(w, TINY_IDS, t, {"state": "post_norm", "layer": 0}))
    assert r.values == pytest.approx(_cos(first, final).tolist(), abs=1e-5)
    assert r.layers["cosine_to_final"][-1] == pytest.approx(1.0, abs=1e-9)
    assert r.extra["state"] == "post_norm"
