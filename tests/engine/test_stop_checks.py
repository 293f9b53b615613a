"""Long captures stop at the next layer when the user has left (engine.cancel), and leave nothing behind.

Each capture gets a ``should_stop`` that turns True after the first layer has started; the
computation must raise Cancelled before the last layer runs, release the model lock and remove
every hook it installed (a later plain forward pass is unchanged).
"""

from __future__ import annotations

import pytest
import torch

from explorer.engine.cancel import Cancelled
from explorer.engine.capture import capture_attentions, capture_residuals
from explorer.engine.sae.base import Sae
from explorer.engine.sae.features import compute_features
from explorer.engine.sae.hooks import capture

IDS = [1, 4, 5, 6, 7, 8, 9, 10]


class _StopAfterFirstLayer:
    """should_stop: False at the first poll (layer 0 starts), True from the second on."""

    def __init__(self):
        self.polls = 0

    def __call__(self) -> bool:
        self.polls += 1
        return self.polls > 1


def _hook_counts(model) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())


def _tiny_sae(d_model: int, layer: int) -> Sae:
    g = torch.Generator().manual_seed(0)
    return Sae(W_enc=torch.randn(d_model, 16, generator=g), b_enc=torch.zeros(16),
               W_dec=torch.randn(16, d_model, generator=g), b_dec=torch.zeros(d_model),
               hook_in=f"blocks.{layer}.hook_resid_post", hook_out=f"blocks.{layer}.hook_resid_post",
               format="test", source="test")


CAPTURES = {
    "residuals": lambda w, stop: capture_residuals(w, IDS, should_stop=stop),
    "attention": lambda w, stop: capture_attentions(w, IDS, should_stop=stop),
    "sae hooks": lambda w, stop: capture(w, IDS, [f"blocks.{w.n_layers - 1}.hook_resid_post"], should_stop=stop),
    "sae features": lambda w, stop: compute_features(w, _tiny_sae(w.config.hidden_size, w.n_layers - 1), IDS,
                                                     w.n_layers - 1, should_stop=stop),
}


@pytest.mark.parametrize("what", list(CAPTURES))
def test_capture_stops_between_layers_and_cleans_up(tiny_wrapper, what):
    w = tiny_wrapper
    last_layer_ran = []
    probe = w.model.model.layers[-1].register_forward_hook(lambda *a: last_layer_ran.append(1))
    hooks_before = _hook_counts(w.model)
    with torch.no_grad():
        before = w.model(input_ids=torch.tensor([IDS])).logits
    last_layer_ran.clear()
    stop = _StopAfterFirstLayer()
    try:
        with pytest.raises(Cancelled):
            CAPTURES[what](w, stop)
    finally:
        probe.remove()
    assert last_layer_ran == []  # stopped before the last of the two layers ran
    assert stop.polls == 2
    assert _hook_counts(w.model) == hooks_before - 1  # only the probe is gone; nothing left behind
    assert w.lock.acquire(blocking=False)  # the model lock was released
    w.lock.release()
    with torch.no_grad():
        after = w.model(input_ids=torch.tensor([IDS])).logits
    assert torch.equal(before, after)


@pytest.mark.parametrize("what", list(CAPTURES))
def test_capture_runs_to_the_end_when_nobody_stops_it(tiny_wrapper, what):
    CAPTURES[what](tiny_wrapper, lambda: False)
