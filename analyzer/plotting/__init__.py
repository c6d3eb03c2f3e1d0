"""Figures: one private module per figure; each function takes fitted objects (or their ``to_dict()``) plus
optional precomputed coordinates, accepts ``width``/``height``, returns a ``plotly.graph_objects.Figure`` and
never shows it -- so the dashboard, the notebook and the HTML report share one code path.

Importing this package pulls no plotly; each function imports it when called."""

from __future__ import annotations

from .._lazy import lazy_getattr

_LAZY = {
    "plot_prompt_map": "._map",
    "plot_trajectory": "._trajectory",
    "plot_training_curves": "._training",
    "plot_training_dynamics": "._dynamics",
    "plot_norms": "._norms",
    "plot_projection_gap": "._projection_gap",
    "plot_evaluation": "._evaluation",
    "plot_tightness": "._tightness",
    "plot_geometry": "._geometry",
    "plot_relatedness": "._relatedness",
    "plot_logit_lens": "._logit_lens",
    "plot_description": "._description",
    "plot_waywardness": "._waywardness",
    "plot_prompt_similarity": "._similarity",
    "plot_transfer": "._similarity",
    "plot_importance": "._importance",
    "plot_projection_curve": "._importance",
    "plot_decode_frontier": "._frontier",
}

__all__ = sorted(_LAZY)


__getattr__ = lazy_getattr(__name__, globals(), _LAZY)


def __dir__():
    return __all__
