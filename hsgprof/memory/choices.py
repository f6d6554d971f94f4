"""Names the memory tools accept, importable without torch (``hsgprof memory --help`` lists them).

:mod:`hsgprof.memory.steps` keys its precision table by :data:`PRECISIONS` and checks the two
agree at import.
"""

MODES = ("inference", "train")
OPTIMIZERS = ("sgd", "adam", "adamw")                             # sgd: SGD with momentum 0.9
PRECISIONS = ("fp32", "bf16", "fp16", "fp16-amp", "bf16-amp")
DEVICES = ("cuda", "cpu")                                         # devices the estimate predicts for
