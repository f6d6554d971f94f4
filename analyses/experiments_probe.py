"""Key probes: can the grid-only model (and the hybrid) read z at the objects' cells, at initialisation?

A design check beside the receptive-field one (:mod:`hsgprof.experiments.probe` says why and how):
for the preset's declared design and for candidate design changes, a linear probe of each
variant's PAN features at every object's centre cell, random weights, scored on held-out images.
Two controls on the declared design come first and must behave, or the probe has no power: the
z plane (grid-only told z at every pixel) must be read, the hidden key (z shown nowhere) must not.

Designs (each a set of scene-field changes on every scene set; ``declared`` changes nothing):
``declared``, ``key16`` (16-px key), ``band16`` (a 16-px-wide band, canvas-high), ``key16-w512``
and ``key8-w512`` (a 512-px-wide canvas with the key 320 px from every object).

Usage: python analyses/experiments_probe.py PRESET [images=2048] [designs=declared,key16,...] [out=FILE]
Results: reports/results/pilots/experiments_probe_<preset>.json (tidy rows + provenance).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from experiments_pilots import command_line, option, pilot_config  # noqa: E402  (analyses/ is not a package)

DESIGNS: dict[str, dict[str, Any]] = {
    "declared": {},
    "key16": {"key_size": 16},
    "band16": {"key_size": 16, "key_height": 62},
    "key16-w512": {"key_size": 16, "width": 512, "key_gap": 320},
    "key8-w512": {"width": 512, "key_gap": 320},
}
CONTROLS: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {   # name: (scene changes, model changes)
    "control-plane": ({"z_plane": True}, {"extra_input_planes": 1}),
    "control-hidden": ({"show_key": False}, {}),
}


def run(preset: str, images: int, designs: list[str], out: Path, command: str) -> Path:
    import torch

    from hsgprof.experiments.probe import CI_LEVEL, key_probe, probe_text
    from hsgprof.results import check_writable, write_results

    check_writable(out)
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    rows, results = [], []
    jobs = [(name, scene, model, ("grid-only",)) for name, (scene, model) in CONTROLS.items()]
    jobs += [(name, DESIGNS[name], {}, ("grid-only", "hybrid")) for name in designs]
    for name, scene, model, variants in jobs:
        cfg = pilot_config(preset, scene=scene)              # the scene changes on every scene set
        for variant in variants:
            r = key_probe(cfg, variant, images=images, extra=model)
            print(f"{name}: {probe_text(r)}", flush=True)
            results.append({"design": name, "scene": scene, "model": model, **r})
            for lv in r["levels"]:
                rows.append({"design": name, "variant": variant, "level": lv["name"], "stride": lv["stride"],
                             "accuracy": lv["accuracy"], "ci_low": lv["ci_low"], "ci_high": lv["ci_high"],
                             "p_value": lv["p_value"], "reads_key": lv["reads_key"],
                             "objects_scored": r["objects_scored"], "key_gap": cfg.val_scene.key_gap,
                             "canvas": f"{cfg.val_scene.height}x{cfg.val_scene.width}",
                             "key": f"{cfg.val_scene.key_size}x{cfg.val_scene.key_height or cfg.val_scene.key_size}"})
    by = {(r["design"], r["variant"]): r["reads_key"] for r in results}
    controls_pass = by[("control-plane", "grid-only")] and not by[("control-hidden", "grid-only")]
    if not controls_pass:
        print("experiments_probe: the controls did not behave (the z plane must be read, the hidden key not): "
              "the probe has no power at this size; give more images", file=sys.stderr)
    meta = {"preset": preset, "images": images, "designs": {n: DESIGNS[n] for n in designs},
            "controls": {n: {"scene": s, "model": m} for n, (s, m) in CONTROLS.items()},
            "controls_pass": bool(controls_pass), "results": results, "wall_s": time.perf_counter() - t0,
            "ci_level": CI_LEVEL,
            "rule": "a level reads the key when the Clopper-Pearson interval (at ci_level: Bonferroni over the "
                    "levels) of the held-out accuracy lies above 1/2; the grid-only variant must read it at no level"}
    return write_results(out, "experiments.probe", rows, meta=meta, command=command)


def main(argv: list[str]) -> int:
    from hsgprof.errors import HsgprofError

    try:
        parsed = command_line(argv, __doc__)
        if parsed is None:
            return 2
        preset, opts = parsed
        unknown = set(opts) - {"images", "designs", "out"}
        if unknown:
            raise ValueError(f"options {sorted(unknown)} not accepted")
        images = option(opts, "images", int, 2048)
        designs = opts.get("designs", ",".join(DESIGNS)).split(",")
        bad = [d for d in designs if d not in DESIGNS]
        if bad:
            raise ValueError(f"design {bad[0]!r} is not known (designs: {', '.join(DESIGNS)})")
    except ValueError as exc:
        print(f"experiments_probe: {exc}; accepted: PRESET [images=N] [designs=NAME,...] [out=FILE]", file=sys.stderr)
        return 2
    out = Path(opts.get("out", f"reports/results/pilots/experiments_probe_{preset}.json"))
    try:
        path = run(preset, images, designs, out, "python analyses/experiments_probe.py " + " ".join(argv))
    except (HsgprofError, ValueError) as exc:
        print(f"experiments_probe: {exc}", file=sys.stderr)
        return 2
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
