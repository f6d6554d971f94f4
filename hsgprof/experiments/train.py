"""Train one HSG-Det variant on the declared synthetic stream: resumable, logged per branch.

Every variant, seed and capacity point gets the same budget (:class:`~.config.Budget`) and the
same data: the batch at step t is drawn from ``(seed, t)``, so runs of different variants with
one seed see identical images, and a resumed run continues exactly where it stopped.

What is logged:
* every step: total loss, each branch's loss (``loss_dense`` grid branch; ``loss_sparse`` query
  branch incl. the token loss), the total gradient norm (before clipping) and each branch's
  gradient norm on its *own* parameters (grid: PAN + dense head; query: token extractor +
  token fusion + sparse head; these receive gradient only from their own loss);
* every ``grad_every`` steps: each branch loss's gradient on the *shared* parameters (the
  backbone, incl. the global block), computed separately with ``torch.autograd.grad``, their
  norms and cosine;
* every ``eval_every`` steps (and at step 0): COCO AP on the convergence set, every output mode.

Checkpoints (model, optimiser, step, logs) are written atomically and read with
``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import io
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch
from tqdm.auto import tqdm

from hsgprof.errors import HsgprofError
from hsgprof.adapters.hsgdet_experiments import batch_of, build_model, generate_scenes
from hsgprof.experiments import faults
from hsgprof.experiments.config import Curriculum, ExperimentConfig
from hsgprof.experiments.datasource import coco_batch
from hsgprof.experiments.evaluate import MODES_BY_VARIANT, EvalSet, ap_rows
from hsgprof.results import atomic_write_bytes


@dataclass(frozen=True)
class RunSpec:
    """One training run: a variant, a seed, model overrides (capacity sweep, controls) and scene
    overrides (controls: the same scenes with z hidden, or with a z plane)."""

    variant: str
    seed: int
    tag: str = "main"
    overrides: tuple[tuple[str, Any], ...] = ()
    scene: tuple[tuple[str, Any], ...] = ()

    @property
    def is_control(self) -> bool:
        return self.tag.startswith("control-")

    @property
    def key(self) -> str:
        return f"{self.tag}-{self.variant}-s{self.seed}"


def build_run_model(cfg: ExperimentConfig, spec: RunSpec) -> torch.nn.Module:
    """The run's model, initialised from the run's seed."""
    torch.manual_seed(spec.seed)
    try:
        return build_model(cfg.preset, variant=spec.variant, **{**cfg.model_kwargs(), **dict(spec.overrides)})
    except ValueError as exc:
        raise HsgprofError(str(exc)) from None


def branch_parameters(model: torch.nn.Module) -> dict[str, list[torch.nn.Parameter]]:
    """Parameters by branch: ``shared`` (backbone), ``dense`` (grid) and ``sparse`` (query) own."""
    groups: dict[str, list[torch.nn.Parameter]] = {"shared": list(model.backbone.parameters()),
                                                   "dense": [], "sparse": []}
    if model.neck.pan is not None:
        groups["dense"] = list(model.neck.pan.parameters()) + list(model.head.dense.parameters())
    if model.neck.token_extractor is not None:
        groups["sparse"] = (list(model.neck.token_extractor.parameters())
                            + list(model.neck.token_fusion.parameters()) + list(model.head.sparse.parameters()))
    return groups


def _norm(grads: list[torch.Tensor | None]) -> float:
    """L2 norm of a list of gradients, computed on their device with one host read (no per-tensor sync)."""
    gs = [g.detach() for g in grads if g is not None]
    if not gs:
        return 0.0
    return float(torch.linalg.vector_norm(torch.stack(torch._foreach_norm(gs)).double()))


def _cosine(a: list[torch.Tensor | None], b: list[torch.Tensor | None]) -> float:
    pairs = [(x.detach(), y.detach()) for x, y in zip(a, b) if x is not None and y is not None]
    dot = float(torch.stack([(x.double() * y.double()).sum() for x, y in pairs]).sum()) if pairs else 0.0
    na, nb = _norm(a), _norm(b)
    return dot / (na * nb) if na > 0 and nb > 0 else float("nan")


def lr_at(step: int, cfg: ExperimentConfig) -> float:
    b = cfg.budget
    return b.lr * min(1.0, (step + 1) / max(b.warmup_steps, 1))


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    buf = io.BytesIO()
    torch.save(state, buf)
    atomic_write_bytes(path, buf.getvalue())


def load_checkpoint(path: Path) -> dict[str, Any]:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:                                       # corrupt or foreign file
        raise HsgprofError(f"checkpoint {str(path)!r} cannot be read ({type(exc).__name__}: {exc}); "
                           "delete it to retrain") from None


def train_scene(cfg: ExperimentConfig, spec: RunSpec):
    """The scenes this run trains on: the declared training scenes with the run's scene overrides."""
    return cfg.train_scene.replace(**dict(spec.scene)) if spec.scene else cfg.train_scene


def train_run(cfg: ExperimentConfig, spec: RunSpec, run_dir: str | Path, conv_set: EvalSet | None = None,
              resume: bool = True, progress: bool = True, device: str | torch.device = "cpu",
              on_eval: Callable[[torch.nn.Module, int], dict[str, Any]] | None = None
              ) -> tuple[torch.nn.Module, dict[str, Any]]:
    """Train (or resume, or load if finished) one run; returns the model and its logs.

    Logs: ``{"train": [...], "grad": [...], "eval": [...], "wall_s": float, "steps": int}``.
    ``on_eval(model, step)``, if given, is called at every evaluation point and its dict is
    logged under ``"extra"`` (the pilots log the bit NLL during training this way).
    """
    run_dir = Path(run_dir)
    ckpt = run_dir / "checkpoint.pt"
    b = cfg.budget
    device = torch.device(device)
    model = build_run_model(cfg, spec).to(device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=b.lr, weight_decay=b.weight_decay,
                            foreach=device.type != "cpu" or None)     # multi-tensor kernels on a GPU
    log: dict[str, Any] = {"train": [], "grad": [], "eval": [], "wall_s": 0.0, "steps": b.steps}
    step = 0
    if resume and ckpt.exists():
        state = load_checkpoint(ckpt)
        if state.get("config_key") != cfg.key() or state.get("run") != spec.key:
            raise HsgprofError(f"checkpoint {str(ckpt)!r} belongs to another config or run; delete it or use "
                               "another cache folder")
        model.load_state_dict({k: v.to(device) for k, v in state["model"].items()})
        opt.load_state_dict(state["optim"])
        step, log = int(state["step"]), state["log"]
    if step >= b.steps:
        return model.train(), log

    groups = branch_parameters(model)
    params = [p for p in model.parameters() if p.requires_grad]
    modes = MODES_BY_VARIANT[spec.variant]

    scene = train_scene(cfg, spec)
    log.setdefault("extra", [])

    def evaluate(at_step: int) -> None:
        if on_eval is not None:
            log["extra"].append({"step": at_step, **on_eval(model, at_step)})
        if conv_set is None:
            return
        for r in ap_rows(model, conv_set, modes, cfg):
            log["eval"].append({"step": at_step, "mode": r["mode"], "AP": r["AP"], "AP50": r["AP50"],
                                "AP75": r["AP75"]})

    def checkpoint() -> None:
        save_checkpoint(ckpt, {"model": model.state_dict(), "optim": opt.state_dict(), "step": step,
                               "log": log, "config_key": cfg.key(), "run": spec.key})

    if step == 0 and not log["eval"]:
        evaluate(0)
    bar = tqdm(total=b.steps, initial=step, desc=spec.key, disable=not progress, leave=False)
    t0 = time.perf_counter()
    # On a GPU the next batch is drawn on the CPU in a background thread while this step runs (the
    # same (seed, step) batches as without it, so results do not depend on it).
    batches = training_batches(cfg, spec.seed, step, b.steps, enabled=device.type != "cpu", scene=scene)
    try:
        while step < b.steps:
            images, targets = batches.get(step)
            images = images.to(device, non_blocking=True)
            targets = [{k: v.to(device) for k, v in t.items()} for t in targets]
            row, grad = train_step(model, opt, spec, cfg, step, images, targets, params, groups)
            if grad is not None:
                log["grad"].append(grad)
            log["train"].append(row)
            step += 1
            bar.update(1)
            if step % b.eval_every == 0 or step == b.steps:
                evaluate(step)
            if step % b.checkpoint_every == 0 or step == b.steps:
                log["wall_s"] += time.perf_counter() - t0
                t0 = time.perf_counter()
                checkpoint()
                faults.after_checkpoint(spec.key, step)
    finally:
        bar.close()
        batches.close()
    return model, log


def train_step(model: torch.nn.Module, opt: torch.optim.Optimizer, spec: RunSpec, cfg: ExperimentConfig,
               step: int, images: torch.Tensor, targets: list[dict[str, torch.Tensor]],
               params: list[torch.nn.Parameter], groups: dict[str, list[torch.nn.Parameter]]
               ) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """One optimisation step of training, with what it logs: the step's row (losses, branch gradient
    norms, total norm before clipping) and, every ``grad_every`` steps, the branch gradients on the
    shared parameters (else None). ``images`` (B, C, H, W) and ``targets`` are on the model's device.
    The one place a step is defined: training calls it, and the GPU estimate profiles it."""
    b = cfg.budget
    both = model.head.dense is not None and model.head.sparse is not None
    for g in opt.param_groups:
        g["lr"] = lr_at(step, cfg)
    losses = model(images, targets)
    opt.zero_grad(set_to_none=True)
    row: dict[str, Any] = {"step": step, "loss": float(losses["loss"].detach())}
    for k in ("loss_dense", "loss_sparse"):
        row[k] = float(losses[k].detach()) if k in losses else float("nan")
    grad: dict[str, Any] | None = None
    if step % b.grad_every == 0:
        grad = {"step": step}
        per: dict[str, list] = {}
        for name in ("loss_dense", "loss_sparse"):
            if name in losses:
                gs = torch.autograd.grad(losses[name], params, retain_graph=True, allow_unused=True)
                per[name] = list(gs)
        # Set .grad to the sum of the branch gradients (== the gradient of the total loss).
        for i, p in enumerate(params):
            parts = [per[n][i] for n in per if per[n][i] is not None]
            p.grad = sum(parts) if parts else None
        index = {id(p): i for i, p in enumerate(params)}
        shared_idx = [index[id(p)] for p in groups["shared"]]
        for name, short in (("loss_dense", "dense"), ("loss_sparse", "sparse")):
            grad[f"shared_{short}"] = (_norm([per[name][i] for i in shared_idx])
                                       if name in per else float("nan"))
        grad["shared_cosine"] = (_cosine([per["loss_dense"][i] for i in shared_idx],
                                         [per["loss_sparse"][i] for i in shared_idx])
                                 if both else float("nan"))
    else:
        losses["loss"].backward()
    for short in ("dense", "sparse"):
        row[f"grad_{short}"] = _norm([p.grad for p in groups[short]]) if groups[short] else float("nan")
    row["grad_shared"] = _norm([p.grad for p in groups["shared"]])
    row["grad_total"] = float(torch.nn.utils.clip_grad_norm_(params, b.grad_clip))
    _check_finite(spec, step, row)                   # before the step corrupts the weights
    opt.step()
    return row, grad


def _check_finite(spec: RunSpec, step: int, row: dict[str, Any]) -> None:
    """A non-finite loss or gradient norm stops the run with one line, before the optimizer step.

    Training on would only fail later and obscurely (NaN boxes reach the Hungarian matching). Seen on
    flat-colour images, where BatchNorm sees zero variance and the backbone's gradient explodes.
    """
    bad = [k for k in ("loss", "grad_total") if not math.isfinite(row[k])]
    if bad:
        raise HsgprofError(f"run {spec.key}: {' and '.join(bad)} became non-finite at step {step} "
                           f"(loss {row['loss']}, gradient norm {row['grad_total']}); the checkpoint before "
                           "this step is intact. Check the data (e.g. flat-colour images) or lower the learning rate")


def training_batches(cfg: ExperimentConfig, seed: int, start: int, stop: int, enabled: bool = False,
                     scene: Any = None) -> "Prefetch":
    """The training batches of ``cfg`` for ``seed`` (its batch size, data source and curriculum), by
    step; ``scene`` replaces the declared training scenes (a run's overrides: :func:`train_scene`)."""
    return Prefetch(scene or cfg.train_scene, cfg.budget.batch_size, seed, start, stop, enabled, data=cfg.data,
                    curriculum=cfg.curriculum)


class Prefetch:
    """Training batches by step; with ``enabled``, the next one is drawn in a background thread."""

    def __init__(self, scene: Any, batch_size: int, seed: int, start: int, stop: int, enabled: bool,
                 data: Any = None, curriculum: Curriculum | None = None) -> None:
        self.scene, self.batch_size, self.seed, self.stop = scene, batch_size, seed, stop
        self.data = data                                    # a CocoSource: the user's images instead of scenes
        self.curriculum = curriculum or Curriculum()
        self.near_scene = scene.replace(**dict(self.curriculum.scene)) if self.curriculum.share else None
        self.pool = None
        self.pending: dict[int, Any] = {}
        if enabled:
            from concurrent.futures import ThreadPoolExecutor

            self.pool = ThreadPoolExecutor(1, thread_name_prefix="scene-prefetch")
            self._submit(start)

    def _draw(self, step: int) -> tuple[torch.Tensor, list[dict[str, torch.Tensor]]]:
        if self.data is not None:
            images, targets = coco_batch(self.data, self.batch_size, (self.seed, step))
        else:
            near = self.curriculum.near_count(self.batch_size, step)
            scenes = generate_scenes(self.scene, self.batch_size - near, (self.seed, step))
            if near:                                        # the curriculum's share, from its own stream
                scenes += generate_scenes(self.near_scene, near, (self.seed, step, 1))
            images, targets = batch_of(scenes, self.scene)                # (B, C, H, W), stacked once
        if self.pool is not None:
            images = images.pin_memory() if torch.cuda.is_available() else images
        return images, targets

    def _submit(self, step: int) -> None:
        if self.pool is not None and step < self.stop and step not in self.pending:
            self.pending[step] = self.pool.submit(self._draw, step)

    def get(self, step: int) -> tuple[torch.Tensor, list[dict[str, torch.Tensor]]]:
        if self.pool is None:
            return self._draw(step)
        fut = self.pending.pop(step, None)
        batch = fut.result() if fut is not None else self._draw(step)
        self._submit(step + 1)
        return batch

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)
