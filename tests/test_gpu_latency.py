"""CUDA checks of the compiled path and the profiler attribution (small inputs; a minute or two on a GPU).

Skipped without CUDA (``gpu`` marker, conftest). Run on a GPU host with
``PYTHONPATH=.:model python3 -m pytest -m gpu tests/test_gpu_latency.py -q``.
"""

from __future__ import annotations

import pandas as pd
import pytest
import torch

from hsgprof.adapters.hsgdet import COMPONENTS, GLOBAL_REASONING
from hsgprof.timing import compiled as C
from hsgprof.timing.profile import OUTSIDE, profile_rows
from hsgprof.timing.runnable import prepare

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA: no CUDA device on this machine")]

SHAPE = (1, 3, 256, 448)


@pytest.mark.parametrize("precision", ["fp16-amp", "bf16"])
def test_reduce_overhead_equals_eager_on_cuda(precision):
    r = prepare("hsgdet-tiny", SHAPE, precision, "cuda", compile="reduce-overhead")
    info = r.compile_info
    assert info["outputs_equal"], info["outputs"]
    assert info["compiled_regions"] >= 1 and info["graph_breaks"] >= 1
    C.reset_compiled()


def test_kernel_time_is_attributed_to_components_on_cuda():
    rows = pd.DataFrame(profile_rows(["hsgdet-tiny"], SHAPE, "fp16-amp", "cuda", compile="reduce-overhead",
                                     calls=3, global_components=GLOBAL_REASONING, warmup=2, repeat=5))
    assert rows[rows.kind == "peak"].tflops.iloc[0] > 1          # any GPU does a 8192³ fp16 matmul above 1 TFLOP/s
    for path in ("eager", "compiled:reduce-overhead,split"):
        part = rows[rows.path == path]
        total = part[part.kind == "profile_total"].iloc[0]
        comps = part[(part.kind == "profile_component") & (part.component != OUTSIDE)]
        assert set(comps.component) == {c.name for c in COMPONENTS.components}
        assert (comps.device_ms > 0).all() and (comps.kernels > 0).all()
        assert comps.device_ms.sum() <= total.device_ms * (1 + 1e-6)
        assert set(total.sdpa) <= {"flash", "efficient", "cudnn"}, total.sdpa      # a fused kernel under AMP
    C.reset_compiled()

