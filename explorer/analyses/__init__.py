"""Visualization modes: one module per mode behind the Analysis protocol, one ordered registry.

Never imports Textual or Rich: a mode returns numbers, a colour scale and a legend; the
UI paints them and the ``analyze`` command prints them. ``compute_mode`` with a
``ResultCache`` is the entry point for lazy modes (run it in a worker thread).
"""

from explorer.analyses.base import Analysis, AnalysisContext, Heatmap, ModeResult, ParamSpec, Scatter, mode_params
from explorer.analyses.cache import ResultCache, compute_mode
from explorer.analyses.registry import ANALYSES, analysis_names, get_analysis, register, unregister

__all__ = ["ANALYSES", "Analysis", "AnalysisContext", "Heatmap", "ModeResult", "ParamSpec", "ResultCache", "Scatter",
           "analysis_names", "compute_mode", "get_analysis", "mode_params", "register", "unregister"]
