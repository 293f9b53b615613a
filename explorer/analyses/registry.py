"""The ordered list of modes: the order `e` cycles through.

Add a mode with one module (a class with name, label, lazy, requires and compute; see base.py)
and one line in ANALYSES below. Code outside the package (a plugin, a test) calls ``register``.
"""

from __future__ import annotations

from explorer.analyses.attention import AttentionMode
from explorer.analyses.attribution import AttributionMode
from explorer.analyses.base import Analysis
from explorer.analyses.divergence import DivergenceMode
from explorer.analyses.effect import EffectMode
from explorer.analyses.embedding_pca import EmbeddingPcaMode
from explorer.analyses.energy import EnergyMode
from explorer.analyses.entropy import EntropyMode
from explorer.analyses.guiding_tokens import GuidingTokensMode
from explorer.analyses.hidden_similarity import HiddenSimilarityMode
from explorer.analyses.layer_correlation import LayerCorrelationMode
from explorer.analyses.layer_prob import LayerProbMode
from explorer.analyses.local_bias import LocalBiasMode
from explorer.analyses.plain import PlainMode
from explorer.analyses.probability import ProbabilityMode
from explorer.analyses.residual import ResidualMode
from explorer.analyses.sae_features import SaeFeaturesMode
from explorer.errors import InputError

ANALYSES: list[Analysis] = [
    PlainMode(),
    ProbabilityMode(),
    EntropyMode(),
    EnergyMode(),
    AttentionMode(),
    GuidingTokensMode(),
    LocalBiasMode(),
    HiddenSimilarityMode(),
    ResidualMode(),
    LayerProbMode(),
    LayerCorrelationMode(),
    AttributionMode(),
    EmbeddingPcaMode(),
    SaeFeaturesMode(),
    DivergenceMode(),
    EffectMode(),
]


def register(analysis: Analysis) -> Analysis:
    """Add a mode at the end of the cycle (the app's e, its panel and ``analyze --mode`` see it)."""
    if analysis.name in analysis_names():
        raise ValueError(f'A mode named "{analysis.name}" is already registered.')
    ANALYSES.append(analysis)
    return analysis


def unregister(name: str) -> None:
    """Remove a mode added with ``register`` (tests clean up with it)."""
    ANALYSES[:] = [a for a in ANALYSES if a.name != name]


def analysis_names() -> list[str]:
    return [a.name for a in ANALYSES]


def get_analysis(name: str) -> Analysis:
    for a in ANALYSES:
        if a.name == name:
            return a
    raise InputError(f'Unknown mode "{name}"; choose one of: {", ".join(analysis_names())}.')
