"""ResultCache / compute_mode: a hit does not recompute, captures are shared, the LRU is bounded."""

from __future__ import annotations

from explorer.analyses.cache import ResultCache, compute_mode, result_key
from explorer.analyses.hidden_similarity import HiddenSimilarityMode
from explorer.analyses.local_bias import LocalBiasMode
from explorer.analyses.probability import ProbabilityMode
from tests.analyses.helpers import TINY_IDS, make_ctx


class Counting:
    """A lazy mode that counts its computations."""

    name, label, lazy = "counting", "Counting", True

    def __init__(self):
        self.calls = 0

    def compute(self, ctx):
        self.calls += 1
        return ProbabilityMode().compute(ctx)


def test_hit_does_not_recompute_and_lru_is_bounded(tiny_wrapper):
    cache = ResultCache(maxsize=2)
    mode = Counting()
    ctx = make_ctx(tiny_wrapper, TINY_IDS)
    first = compute_mode(mode, ctx, cache)
    assert compute_mode(mode, ctx, cache) is first and mode.calls == 1
    for cursor in (1, 2, 3):
        compute_mode(mode, make_ctx(tiny_wrapper, TINY_IDS, cursor), cache)
    assert len(cache) == 2
    compute_mode(mode, ctx, cache)  # evicted: computed again
    assert mode.calls == 5


def test_key_holds_model_ids_mode_cursor_params(tiny_wrapper):
    a = result_key(Counting(), make_ctx(tiny_wrapper, TINY_IDS, 3, {"layer": 1}))
    b = result_key(Counting(), make_ctx(tiny_wrapper, TINY_IDS, 3, {"layer": 2}))
    c = result_key(Counting(), make_ctx(tiny_wrapper, TINY_IDS, 4, {"layer": 1}))
    assert len({a, b, c}) == 3
    assert a[0] == "tiny-llama" and a[1] == tuple(TINY_IDS) and a[2] == "counting"


def test_cursor_moves_share_one_capture(tiny_wrapper):
    cache = ResultCache(maxsize=10)
    for cursor in (2, 5, 9):
        compute_mode(LocalBiasMode(), make_ctx(tiny_wrapper, TINY_IDS, cursor), cache)
        compute_mode(HiddenSimilarityMode(), make_ctx(tiny_wrapper, TINY_IDS, cursor), cache)
    assert cache.capture_builds == 1


def test_cheap_modes_bypass_the_cache(tiny_wrapper):
    cache = ResultCache(maxsize=4)
    compute_mode(ProbabilityMode(), make_ctx(tiny_wrapper, TINY_IDS), cache)
    assert len(cache) == 0
