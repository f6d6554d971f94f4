"""hsgprof: measure whether a detector design's numbers and theory hold.

The toolkit works on any ``torch.nn.Module``; HSG-Det is its first subject and is
reached only through :mod:`hsgprof.adapters`.
"""

__version__ = "0.1.0"
