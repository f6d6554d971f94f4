"""Theory experiments on HSG-Det: the entropy theorem, the occlusion corollary, stability and
convergence, dense scenes and NMS (docs/experiments.md).

>>> from hsgprof.experiments import get_preset, run_experiment, run_quick_set
>>> paths = run_quick_set("reports/results/experiments-quick")     # CPU default, cached and resumable

The declared config (:class:`ExperimentConfig`, presets ``smoke``/``quick``/``full``) fixes the
data, budget, metrics and verdict rules before anything is trained.
"""

from hsgprof.experiments.config import PRESETS, Budget, Capacity, ExperimentConfig, TrendRule, get_preset
from hsgprof.experiments.runner import default_cache_dir, run_experiment, run_quick_set, run_specs

__all__ = ["ExperimentConfig", "Budget", "Capacity", "TrendRule", "PRESETS", "get_preset", "run_experiment",
           "run_quick_set", "run_specs", "default_cache_dir"]
