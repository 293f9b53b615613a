"""Interventions on the bundled SmolLM2-135M: attribution patching against exact patching.

Measured (README "Interventions"): on the capital pair below, the residual grid's
attribution estimates agree in sign with exact patching on every cell whose exact effect
is above 10 % of the largest, and in rank over the whole grid (Spearman ≈ 0.98), but NOT
in rank among those large cells alone (Spearman ≈ 0.6): the early-layer residual cells
saturate, the known failure of the first-order approximation (SCIENCE.md 5.11).
"""

from __future__ import annotations

import numpy as np
import pytest

from explorer.engine.interventions.patching import attribution_patching, exact_patching, make_setup

pytestmark = pytest.mark.integration


def spearman(a, b) -> float:
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1])


def test_attribution_patching_agrees_with_exact_in_sign_and_overall_rank(bundled_wrapper):
    w = bundled_wrapper

    def tid(text):
        [i] = w.tokenizer(text, add_special_tokens=False)["input_ids"]
        return i

    setup = make_setup(w, w.encode("The capital of France is the city of"), w.encode("The capital of Italy is the city of"),
                       tid(" Paris"), tid(" Rome"), "resid")
    exact = exact_patching(w, setup)
    approx = attribution_patching(w, setup)
    assert exact.clean == pytest.approx(approx.clean) and exact.corrupt == pytest.approx(approx.corrupt)
    assert exact.clean > 0 > exact.corrupt  # Paris wins on the clean prompt, Rome on the corrupted one
    e = np.array(exact.grid) - exact.corrupt  # [layers, positions] effects
    a = np.array(approx.grid) - approx.corrupt
    big = np.abs(e) > 0.1 * np.abs(e).max()
    assert (np.sign(e[big]) == np.sign(a[big])).mean() >= 0.95
    assert spearman(e.ravel(), a.ravel()) >= 0.9
    # patching the last layer's input at the last position restores most of the clean metric
    assert e[-1, -1] > 0.5 * (exact.clean - exact.corrupt)
