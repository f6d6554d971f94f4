"""Names the counting tools accept, importable without torch (``hsgprof count --help`` lists them).

:mod:`hsgprof.counting.backends` builds one backend per name here and checks at import that the
two lists agree, so a backend added there and not here (or the reverse) fails loudly.
"""

# A name may carry @cpu (real tensors) or @meta; plain names use meta where the model allows.
BACKENDS = ("analytic", "analytic@meta", "analytic@cpu", "fcm", "fcm@meta", "fcm@cpu", "fvcore", "thop", "thop@cpu",
            "ptflops", "ptflops-aten", "calflops", "torchprofile")
ALIASES = {"referee": "analytic"}
ALL = ("analytic", "fcm", "fcm@cpu", "fvcore", "thop")          # what "all" expands to
PEERS = ("ptflops", "ptflops-aten", "calflops", "torchprofile")   # optional (.[peers]); "peers" expands to them
DEFAULT = ("analytic", "fcm")
MODES = ("native", "padded")                                      # input modes (DESIGN.md, "Input size")
