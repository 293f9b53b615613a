"""Visualization modes: one module per mode behind the Analysis protocol, one ordered registry.

Never imports Textual or Rich: a mode returns numbers, a colour scale and a legend; the
UI paints them and the ``analyze`` command prints them.
"""

from explorer.analyses.base import Analysis, AnalysisContext, ModeResult
from explorer.analyses.registry import ANALYSES, analysis_names, get_analysis

__all__ = ["ANALYSES", "Analysis", "AnalysisContext", "ModeResult", "analysis_names", "get_analysis"]
