"""HSG-Det: the hybrid sparse-global detector of the seed, in pure PyTorch.

``build_model(preset="hsgdet-l", **overrides)`` builds any preset in ``PRESETS``.
This package never imports hsgprof.
"""

from .config import INPUT_MODES, OUTPUT_MODES, PRESETS, VARIANTS, HSGDetConfig, get_config
from .detector import HSGDet, build_model

__all__ = ["HSGDet", "HSGDetConfig", "build_model", "get_config", "PRESETS", "VARIANTS",
           "INPUT_MODES", "OUTPUT_MODES"]
