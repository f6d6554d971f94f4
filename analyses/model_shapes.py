"""Feature-map shapes of HSG-Det at 1080×1920 in both input modes (meta device, no compute).

Writes ``model_shapes.json`` (kind ``model.shapes``): one row per (mode, module, output tensor).
Usage: python analyses/model_shapes.py [--out reports/results]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from hsgprof.results import write_results
from hsgprof.shapes import module_output_shapes
from hsgprof.targets import load_target

MODULES = ("backbone.stem", "backbone.p3", "backbone.p4", "backbone.p5", "backbone.global_block",
           "neck.pan", "neck.token_fusion")


def run(out_dir: Path, profile: str = "quick", preset: str = "hsgdet-l",
        size: tuple[int, int] = (1080, 1920)) -> list[Path]:
    """Shapes on the meta device: the same work in every report profile."""
    rows = []
    for mode in ("native", "padded"):
        target = load_target(preset, device="meta", input_mode=mode)
        x = torch.empty(1, 3, *size, device="meta")
        shapes = module_output_shapes(target.model.eval(), target.forward, x, MODULES)
        for module, tensors in shapes.items():
            for i, shape in enumerate(tensors):
                rows.append({"preset": preset, "mode": mode, "input_hw": list(size), "module": module,
                             "output": i, "shape": list(shape),
                             "channels": shape[1] if len(shape) == 4 else None,
                             "hw": list(shape[-2:]) if len(shape) == 4 else None})
    return [write_results(Path(out_dir) / "model_shapes.json", "model.shapes", rows,
                          config={"preset": preset, "input_hw": list(size), "modules": list(MODULES)})]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("reports/results"))
    print("\n".join(str(p) for p in run(ap.parse_args().out)))


if __name__ == "__main__":
    main()
