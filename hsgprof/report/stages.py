"""The analyses a report needs, run or reused from cache.

Each stage calls an ``analyses/`` script's entry point: ``(out_dir, profile) -> [paths]``
(stages that train take ``device=`` too: only the theory experiments do). A stage's results are
reused when its cache key (profile, stage name, code fingerprint, and the device for stages that
take one) is unchanged and its files are intact; otherwise it is recomputed. The cache index
``.stages.json`` is written after each stage, so an interrupted report resumes where it stopped;
it also records which files each stage produced, and a report reads only those files.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from hsgprof.errors import HsgprofError
from hsgprof.provenance import REPO_ROOT
from hsgprof.results import atomic_write_text, read_results

PROFILES = ("smoke", "quick", "full")
CODE_DIRS = ("hsgprof", "model", "analyses")


@dataclass(frozen=True)
class Stage:
    name: str
    run: Callable[[Path, str], list[Path]]      # (out_dir, profile) -> files written
    description: str = ""
    profiles: tuple[str, ...] = PROFILES         # the profiles the stage takes part in
    uses_device: bool = False                    # run(out, profile, device=...): trains on that device


def _analysis(script: str):
    """The module of an ``analyses/`` script (they are scripts, not an installed package)."""
    path = REPO_ROOT / "analyses" / script
    if not path.is_file():
        raise HsgprofError(f"analysis script analyses/{script} is missing; run the report from a clone "
                           "of the repository")
    spec = importlib.util.spec_from_file_location(f"hsgprof_analysis_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _model(out: Path, profile: str) -> list[Path]:
    return _analysis("model_shapes.py").run(out, profile)


def _counting(out: Path, profile: str) -> list[Path]:
    paths = _analysis("count_hsgdet.py").run(quick=profile != "full", out_dir=out)
    return [p for k, p in paths.items() if not k.startswith("_")]


def _counting_smoke(out: Path, profile: str) -> list[Path]:
    """Test-sized: only the per-component tables (meta device, seconds)."""
    return _analysis("count_hsgdet.py").component_results(out)


def _readings(out: Path, profile: str) -> list[Path]:
    """Every reading: premise scores, counts, memory estimates and the 16 GB max batch, the matrix."""
    return list(_analysis("readings.py").run(out, quick=False).values())


def _fit(out: Path, profile: str) -> list[Path]:
    """The budget fit over the default space (the full space is hours on 2 cores: run it by hand)."""
    paths = _analysis("fit_hsgdet.py").run(out, "default", command=f"hsgprof report ({profile}): budget fit")
    return [p for k, p in paths.items() if k != "summary"]


def _memory(out: Path, profile: str) -> list[Path]:
    return _analysis("memory_hsgdet.py").run(out, profile)


def _experiments(out: Path, profile: str, device: str = "cpu") -> list[Path]:
    """The theory experiments of the profile's preset, trained on ``device``, plus their figures (PNG)."""
    import matplotlib
    matplotlib.use("Agg")
    from hsgprof.experiments import get_preset, run_experiment
    from hsgprof.experiments import plots
    from hsgprof.experiments.notebook import load

    folder = out / f"experiments-{profile}"
    paths = list(run_experiment(get_preset(profile), folder, progress=True, device=device).values())   # bar over runs
    tables, meta = load(results_dir=folder)
    figures = {"controls": lambda: plots.plot_controls(tables, meta["known"]),
               "entropy": lambda: plots.plot_entropy(tables, meta["known"]),
               "delta_occlusion": lambda: plots.plot_delta_occlusion(tables),
               "capacity": lambda: plots.plot_capacity(tables),
               "gradients": lambda: plots.plot_gradients(tables),
               "convergence": lambda: plots.plot_convergence(tables),
               "ap_density": lambda: plots.plot_ap_bins(tables)}
    (out / "figures").mkdir(parents=True, exist_ok=True)
    for name, make in figures.items():
        fig = make()
        path = out / "figures" / f"experiments_{name}.png"
        fig.savefig(path, dpi=110, bbox_inches="tight")
        matplotlib.pyplot.close(fig)
        paths.append(path)
    return [Path(p) for p in paths]


def _info(out: Path, profile: str) -> list[Path]:
    """MI/CMI/entropy estimators against closed-form truths (quick plan, or the full one)."""
    from hsgprof.info import validation

    result = validation.run_validation("full" if profile == "full" else "quick")
    paths = validation.write_validation(result, out / "info_validation.json", out / "figures",
                                        command=f"hsgprof report ({profile}): info validation")
    return [Path(paths["results"]), *(Path(p) for p in paths["figures"])]


STAGES: tuple[Stage, ...] = (
    Stage("model", _model, "feature-map shapes at 1080×1920"),
    Stage("counting", _counting, "FLOPs and parameters per component, sweeps, seed audit", ("quick", "full")),
    Stage("counting-smoke", _counting_smoke, "per-component FLOPs and parameters", ("smoke",)),
    Stage("readings", _readings, "every reading of the seed: primary-reading rule, counts, memory, matrix",
          ("quick", "full")),
    Stage("fit", _fit, "budget fit over the seed's open choices", ("quick", "full")),
    Stage("memory", _memory, "memory estimates and 16 GB max batch", ("quick", "full")),
    Stage("info", _info, "MI estimators validated on known ground truth", ("quick", "full")),
    Stage("experiments", _experiments, "theory experiments (3 variants × seeds; the long stage)", ("quick", "full"),
          uses_device=True),
)


def code_fingerprint(root: Path = REPO_ROOT) -> str:
    """sha256 over every source file the analyses run (a rerun after any code change recomputes)."""
    h = hashlib.sha256()
    for top in CODE_DIRS:
        for path in sorted((root / top).rglob("*.py")):
            h.update(str(path.relative_to(root)).encode())
            h.update(path.read_bytes())
    return h.hexdigest()[:16]


def run_stages(out_dir: Path, profile: str, stages: tuple[Stage, ...] = STAGES,
               progress: Callable[[str], None] | None = None, device: str = "cpu") -> dict[str, list[Path]]:
    """Run (or reuse) every stage of ``profile``; returns the result files per stage (all a report reads).

    ``device`` goes to the stages that train (the experiments); the others run on the CPU or the
    meta device whatever it is.
    """
    if profile not in PROFILES:
        raise HsgprofError(f"profile {profile!r} is not accepted; choose one of {', '.join(PROFILES)}")
    out_dir = Path(out_dir)
    index_path = out_dir / ".stages.json"
    index = json.loads(index_path.read_text()) if index_path.is_file() else {}
    fingerprint = code_fingerprint()
    produced: dict[str, list[Path]] = {}
    for stage in stages:
        if profile not in stage.profiles:
            continue
        key = f"{profile}:{stage.name}:{fingerprint}" + (f":{device}" if stage.uses_device else "")
        cached = index.get(stage.name, {})
        files = [out_dir / f for f in cached.get("files", [])]
        if cached.get("key") == key and files and all(_intact(f) for f in files):
            produced[stage.name] = files
            if progress:
                progress(f"{stage.name}: reused cached results")
            continue
        if progress:
            progress(f"{stage.name}: running ({stage.description})")
        ran = stage.run(out_dir, profile, device=device) if stage.uses_device else stage.run(out_dir, profile)
        paths = [Path(p) for p in ran]
        produced[stage.name] = paths
        index[stage.name] = {"key": key, "files": [str(p.relative_to(out_dir)) for p in paths]}
        atomic_write_text(index_path, json.dumps(index, indent=2) + "\n")
    return produced


def _intact(path: Path) -> bool:
    if path.suffix != ".json":
        return path.is_file()
    try:
        read_results(path)
    except HsgprofError:
        return False
    return True
