"""Building an AnalysisContext for a wrapper and a token list (shared by the analyses tests)."""

from __future__ import annotations

from explorer.analyses.base import AnalysisContext
from explorer.config import Config, DisplaySection
from explorer.engine.session import Session

# A prompt of the tiny word-level tokenizer, BOS first, longer than Gemma's sliding window of 4.
TINY_IDS = [1, 4, 5, 6, 7, 4, 8, 9, 10, 5, 6, 7, 11, 12]


def make_ctx(wrapper, ids, cursor=None, params=None, cache=None, config=None) -> AnalysisContext:
    session = Session(wrapper, Config(display=DisplaySection(tokens_to_show=5, cache_size=8)), prompts=[list(ids)])
    view = session.compute()
    cursor = len(ids) - 1 if cursor is None else cursor
    return AnalysisContext(view=view, wrapper=wrapper, cursor=cursor, params=dict(params or {}), cache=cache,
                           config=config)


def make_comparison_view(wrapper, ids, other=None):
    """The ComparisonView of ``wrapper`` against ``other`` (default: its own bfloat16 copy) over ``ids``."""
    from explorer.engine.compare import Comparison
    from explorer.engine.compare_load import precision_copy

    other = other if other is not None else precision_copy(wrapper, "bfloat16")
    session = Session(wrapper, Config(display=DisplaySection(tokens_to_show=5, cache_size=8)), prompts=[list(ids)])
    session.comparison = Comparison(wrapper, other)
    session.compute()
    return session.comparison.view(session)
