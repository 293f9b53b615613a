"""The weights hash: the same weights give the same hash; any change of a value or dtype changes it."""

from __future__ import annotations

import copy

import torch

from explorer.engine.provenance import weights_sha256


def test_hash_is_stable_and_sees_every_change(tiny_llama):
    first = weights_sha256(tiny_llama)
    assert weights_sha256(tiny_llama) == first
    clone = copy.deepcopy(tiny_llama)
    assert weights_sha256(clone) == first
    with torch.no_grad():
        clone.model.layers[1].mlp.down_proj.weight[0, 0] += 1e-3
    assert weights_sha256(clone) != first
    assert weights_sha256(copy.deepcopy(tiny_llama).to(torch.bfloat16)) != first
