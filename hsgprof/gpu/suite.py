"""``hsgprof gpu-suite``: every CUDA measurement in one time-boxed run, steps in order of importance.

Steps (sections in :mod:`hsgprof.gpu.latency_steps` and :mod:`hsgprof.gpu.memory_steps`)::

    latency                 eager, every target, fp16 AMP / bf16 / fp32 at batch 1 and 8
    compiled fp16-amp b1    whole-graph torch.compile beside eager (the ledger's configuration)
    profile                 per-component kernel time and TFLOP/s, eager and compiled split
    compiled fp16-amp b8, bf16 b1, bf16 b8
    memory, snapshot, maxbatch   (the estimator's CPU jobs start here, after the last timed step)

``--max-minutes`` is a global deadline. A step starts only with time left; it may use what is
left minus the time kept for later steps that must not be starved (``FLOORS``), up to its own
cap (``CAPS``); inside a step a compile starts only when the longest compile seen so far fits.
Each measurement is written as soon as it finishes, so a run cut short keeps what it measured.
Files (no sub-folders): ``latency.json``, ``profile.json``, ``memory.json``, ``max_batch.json``,
``snapshot_hsgdet-l_inference_b1.pickle``, ``suite.log``, ``summary.md``.
"""

from __future__ import annotations

import datetime as _dt
import os
import re
import shlex
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from hsgprof.errors import HsgprofError
from hsgprof.gpu import FILES, SECTIONS
from hsgprof.provenance import REPO_ROOT
from hsgprof.memory.cards import card
from hsgprof.results import atomic_write_text, check_writable, write_results

CAPS = {"latency": 90.0, "profile": 120.0, "memory": 45.0, "snapshot": 15.0, "maxbatch": 60.0}
FLOORS = {"profile": 30.0}           # kept for a later profile step while earlier steps run
MiB = 1 << 20
GiB = 1 << 30


@dataclass(frozen=True)
class Step:
    section: str
    args: tuple = ()

    @property
    def label(self) -> str:
        return self.section + ("" if not self.args else f" {self.args[0]} b{self.args[1]}")


def gpu_slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "gpu"


def command_line(args: Any) -> str:
    """The command line that ran the suite (as typed when run from a shell; rebuilt otherwise)."""
    if "gpu-suite" in sys.argv[1:2]:
        argv = sys.argv[1:]
    else:
        argv = ["gpu-suite"]
        for key, value in sorted(vars(args).items()):
            if key in ("func", "command") or value is None or value is False:
                continue
            flag = "--" + key.replace("_", "-")
            argv += [flag] if value is True else [flag, str(value)]
    prefix = os.environ.get("PYTHONPATH")
    cmd = shlex.join(["python", "-m", "hsgprof.cli", *argv])
    return f"PYTHONPATH={prefix} {cmd}" if prefix else cmd


def plan(sections: list[str], quick: bool) -> list[Step]:
    """The steps of a run in order of importance, restricted to ``sections``."""
    from hsgprof.gpu.latency_steps import COMPILED_CONFIGS

    configs = COMPILED_CONFIGS[:2] if quick else COMPILED_CONFIGS
    steps = [Step("latency"), Step("compiled", configs[0]), Step("profile"),
             *(Step("compiled", c) for c in configs[1:]), Step("memory"), Step("snapshot"), Step("maxbatch")]
    return [s for s in steps if s.section in sections]


class Suite:
    def __init__(self, args: Any) -> None:
        import torch

        from hsgprof.gpu.latency_steps import suite_targets
        from hsgprof.timing.compiled import COMPILE_MODES

        self.args = args
        self.t0 = time.monotonic()
        if args.max_minutes <= 0:
            raise HsgprofError(f"--max-minutes {args.max_minutes} is not accepted; it must be > 0")
        self.deadline = self.t0 + args.max_minutes * 60
        self.sections = [s.strip() for s in args.sections.split(",") if s.strip()]
        bad = [s for s in self.sections if s not in SECTIONS]
        if bad or not self.sections:
            raise HsgprofError(f"--sections {args.sections!r} is not accepted; choose from {', '.join(SECTIONS)}")
        if args.compile_mode not in COMPILE_MODES[1:]:
            raise HsgprofError(f"--compile-mode {args.compile_mode!r} is not accepted; choose one of "
                               f"{', '.join(COMPILE_MODES[1:])}")
        if args.compile_estimate <= 0:
            raise HsgprofError(f"--compile-estimate {args.compile_estimate} is not accepted; it must be > 0 seconds")
        try:
            h, w = (int(v) for v in args.input.lower().split("x"))
            if h < 32 or w < 32:
                raise ValueError
        except ValueError:
            raise HsgprofError(f"--input {args.input!r} is not accepted; give HxW with H, W >= 32, "
                               "e.g. 1080x1920") from None
        self.hw = (h, w)
        card(args.card)                          # an unknown --card fails here, before anything is measured
        self.quick = args.quick
        self.device = args.device
        self.compile_mode = args.compile_mode
        if self.device == "cpu" and self.compile_mode != "default":
            self.compile_mode = "default"        # the CPU dry run: CUDA graphs do not exist there
        self.targets = suite_targets()
        self.plan = plan(self.sections, self.quick)
        self.gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
        date = _dt.date.today().isoformat()
        self.out = Path(args.out) if args.out else REPO_ROOT / "reports" / "measurements" / f"{gpu_slug(self.gpu)}-{date}"
        self.command = command_line(args)
        self.config = {"input_hw": list(self.hw), "quick": self.quick, "max_minutes": args.max_minutes,
                       "sections": self.sections, "card": args.card, "compile_mode": self.compile_mode,
                       "targets": self.targets, "plan": [s.label for s in self.plan]}
        self.rows: dict[str, list[dict[str, Any]]] = {k: [] for k in FILES}
        self.meta: dict[str, dict[str, Any]] = {k: {} for k in FILES}
        self.status: dict[str, str] = {}
        self.compile_times: dict[str, list[float]] = {}
        self.compile_problem: str | None = None
        self._peaks: dict[str, dict[str, Any] | None] = {}
        self.pool: Any = None
        self.futures: dict[tuple, Any] = {}
        self.current_step = ""
        check_writable(self.out, "--out", folder=True)       # before anything is measured or written
        self.out.mkdir(parents=True, exist_ok=True)
        if args.resume:
            from hsgprof.gpu.resume import load_previous

            load_previous(self)
        self._log = open(self.out / "suite.log", "a", encoding="utf-8")

    # -------------------------------------------------------------------------- helpers
    def log(self, msg: str) -> None:
        line = f"[{time.monotonic() - self.t0:7.1f}s] {msg}"
        print(line, flush=True)
        self._log.write(line + "\n")
        self._log.flush()

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def step_budget(self, index: int) -> float:
        """What step ``index`` may use: the time left minus later steps' floors, up to its cap."""
        step = self.plan[index]
        later = {s.section for s in self.plan[index + 1:]} - {step.section}
        keep = sum(FLOORS.get(s, 0.0) for s in later)
        return min(CAPS.get(step.section, float("inf")), max(self.remaining() - keep, 0.0))

    def write(self, kind: str) -> None:
        from hsgprof.adapters.hsgdet import config_fingerprint, presets

        name, result_kind = FILES[kind]
        # which config each preset name meant when measured (hsgdet-l follows the primary reading)
        names = sorted({r["target"] for r in self.rows[kind] if r.get("target") in presets()})
        meta = {**self.meta[kind], "config_fingerprints": {t: config_fingerprint(t) for t in names}}
        write_results(self.out / name, result_kind, self.rows[kind], config=self.config, meta=meta,
                      command=self.command)

    def add_rows(self, kind: str, rows: Any, defaults: dict[str, Any] | None = None) -> None:
        """Append rows (or an error row when ``rows`` is the exception a measurement raised) and write."""
        defaults = {"step": self.current_step, **(defaults or {})}
        if isinstance(rows, Exception):
            rows = [{**defaults, "kind": "error", "status": f"{type(rows).__name__}: {rows}"[:300]}]
        self.rows[kind].extend({**defaults, **r} for r in rows)
        self.write(kind)

    def skip(self, kind: str, configs: list[tuple[str, int]], what: str, **labels: Any) -> None:
        self.log(f"{what}: skipping {len(configs)} configuration(s) (time budget)")
        self.add_rows(kind, [{"precision": p, "batch": b, **labels, "kind": "skipped",
                              "status": "skipped: time budget"} for p, b in configs])

    def guarded(self, what: str, fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except KeyboardInterrupt:
            raise
        except Exception as exc:        # noqa: BLE001 - one failed measurement must not end the suite
            self.log(f"ERROR in {what}: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
            self._log.write(traceback.format_exc() + "\n")
            self._log.flush()
            return exc

    def free(self) -> None:
        import gc

        import torch

        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    def compile_estimate(self, target: str) -> float:
        """Seconds the next compile of ``target`` is expected to take: the longest seen so far."""
        own = self.compile_times.get(target)
        seen = [t for ts in self.compile_times.values() for t in ts]
        return max(own) if own else max(seen) if seen else self.args.compile_estimate

    def peak(self, precision: str) -> dict[str, Any] | None:
        """The measured matmul rate for ``precision`` (measured once per run, recorded in profile.json)."""
        if precision not in self._peaks:
            from hsgprof.timing.clock import base_labels
            from hsgprof.timing.peak import matmul_peak
            from hsgprof.timing.profile import peak_row

            res = self.guarded(f"matmul peak {precision}", lambda: matmul_peak(
                self.device, precision, n=None if self.device == "cuda" else 256))
            self._peaks[precision] = res if isinstance(res, dict) else None
            if isinstance(res, dict):
                self.rows["profile"].append(peak_row(res, base_labels((1, 3, *self.hw), precision, self.device)))
                self.write("profile")
                self.log(f"matmul peak {precision}: {res['tflops']:.1f} TFLOP/s ({res['dtype']}, n = {res['n']})")
        return self._peaks[precision]

    def jobs_running(self) -> int:
        from hsgprof.gpu.estimates import running

        return running(self.futures)

    # -------------------------------------------------------------------------- setup
    def setup(self) -> None:
        import torch

        from hsgprof.memory import cuda as cuda_mem

        self.log(f"hsgprof gpu-suite on {self.gpu}; out={self.out}; budget {self.args.max_minutes} min; "
                 f"steps {', '.join(s.label for s in self.plan)}; input {self.hw[0]}x{self.hw[1]}; "
                 f"targets {', '.join(self.targets)}")
        info: dict[str, Any] = {"gpu": self.gpu, "torch": torch.__version__, "cuda": torch.version.cuda,
                                "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
                                "allow_tf32_matmul": torch.backends.cuda.matmul.allow_tf32,
                                "allow_tf32_cudnn": torch.backends.cudnn.allow_tf32,
                                "cudnn_benchmark": torch.backends.cudnn.benchmark,
                                "alloc_conf": os.environ.get("PYTORCH_CUDA_ALLOC_CONF", ""),
                                **_compiler_info()}
        if self.device == "cuda":
            # Initialise the context, cuBLAS and cuDNN before reading what they take.
            a = torch.randn(256, 256, device="cuda")
            c = torch.nn.functional.conv2d(torch.randn(1, 8, 32, 32, device="cuda"), torch.randn(8, 8, 3, 3, device="cuda"))
            (a @ a).sum().item()
            del a, c
            cuda_mem.free_cuda_memory()
            props = torch.cuda.get_device_properties(0)
            info["total_memory_bytes"] = int(props.total_memory)
            info["context_bytes"] = max(cuda_mem.context_bytes(), 0)
            try:
                q = torch.randn(1, 8, 2040, 32, device="cuda")
                info["sdpa_backend_fp32_global_block"] = int(torch._fused_sdp_choice(q, q, q))
                qh = q.half()
                info["sdpa_backend_fp16_global_block"] = int(torch._fused_sdp_choice(qh, qh, qh))
                info["sdpa_backend_codes"] = "0 math, 1 flash, 2 efficient, 3 cudnn"
                del q, qh
            except Exception as exc:    # noqa: BLE001 - informational only
                info["sdpa_backend"] = f"unknown ({type(exc).__name__})"
            cuda_mem.free_cuda_memory()
        else:
            info["total_memory_bytes"], info["context_bytes"] = 80 * GiB, 512 * MiB
        self.card = card(self.args.card, info["context_bytes"])
        self.total = info["total_memory_bytes"]
        info.update(self.card.describe())
        info["fraction"] = self.card.usable_bytes / self.total
        if {"compiled", "profile"} & set(self.sections):
            from hsgprof.gpu.latency_steps import compile_available

            t0 = time.perf_counter()
            self.compile_problem = compile_available(self)
            info["compile_probe_s"] = round(time.perf_counter() - t0, 2)
            info["compile_problem"] = self.compile_problem
            self.log("torch.compile works here" if self.compile_problem is None else
                     f"torch.compile unavailable: {self.compile_problem} (compiled steps will be skipped)")
        self.info = info
        for m in self.meta.values():
            m["device"] = info
        self.log(f"context {info['context_bytes'] / MiB:.0f} MiB; emulated card {self.card.name}: "
                 f"{self.card.usable_bytes / GiB:.2f} GiB usable = fraction {info['fraction']:.4f} of "
                 f"{self.total / GiB:.2f} GiB")

    def start_estimates(self) -> None:
        """Start the estimator's CPU jobs (called before the first memory step: nothing is timed after)."""
        from hsgprof.gpu.estimates import make_pool
        from hsgprof.gpu.memory_steps import submit_estimates

        try:
            self.pool, jobs = make_pool(self.args.jobs)
        except Exception as exc:        # noqa: BLE001 - fall back to running them here
            from hsgprof.gpu.estimates import Inline

            self.log(f"estimator pool unavailable ({type(exc).__name__}); estimating in-process")
            self.pool, jobs = Inline(), 0
        submit_estimates(self)
        self.log(f"estimator: {len(self.futures)} jobs on {jobs if jobs > 0 else 'no'} worker processes")

    def result(self, key: tuple, timeout: float) -> Any:
        from concurrent.futures import Future

        fut = self.futures.get(key)
        if fut is None:
            return None
        try:
            return fut.result(timeout=max(timeout, 1.0))
        except Exception as exc:        # noqa: BLE001 - a missing prediction is reported, not fatal
            if isinstance(fut, Future) and not fut.done():
                self.log(f"estimate {key} not ready in time")
                return None
            self.log(f"estimate {key} failed: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
            return None

    # -------------------------------------------------------------------------- run
    def run_step(self, step: Step, budget: float) -> None:
        from hsgprof.gpu import latency_steps as L
        from hsgprof.gpu import memory_steps as M

        if step.section in ("memory", "maxbatch") and self.pool is None:
            self.start_estimates()
        fn = {"latency": L.section_latency, "compiled": L.section_compiled, "profile": L.section_profile,
              "memory": M.section_memory, "snapshot": M.section_snapshot, "maxbatch": M.section_maxbatch}
        fn[step.section](self, budget, *step.args)

    def run(self) -> int:
        from hsgprof.gpu.estimates import stop_pool
        from hsgprof.gpu.resume import already_done, forget_skipped
        from hsgprof.gpu.summary import summary_markdown

        self.setup()
        try:
            for i, step in enumerate(self.plan):
                if self.args.resume and already_done(self, step):
                    self.log(f"{step.label}: already measured in {self.out.name} (--resume)")
                    self.status[step.label] = "done earlier"
                    continue
                if self.args.resume:
                    forget_skipped(self, step)
                budget = self.step_budget(i)
                if budget < 5:
                    self.log(f"{step.label}: skipped (time budget: {max(self.remaining(), 0):.0f} s left)")
                    self.status[step.label] = "skipped"
                    if step.section == "compiled":
                        self.skip("latency", [step.args], step.label, compile=self.compile_mode)
                    continue
                self.log(f"== {step.label} (up to {budget:.0f} s)")
                self.current_step = step.label
                r = self.guarded(step.label, lambda: self.run_step(step, budget))
                self.status[step.label] = "error" if isinstance(r, Exception) else "done"
        finally:
            if self.pool is not None:
                stop_pool(self.pool)
            text = summary_markdown(self)
            atomic_write_text(self.out / "summary.md", text)
            self.log(f"done in {time.monotonic() - self.t0:.0f} s; files in {self.out}")
            print()
            print(text)
            self._log.close()
        return 0


def _compiler_info() -> dict[str, Any]:
    """What the compiled path ran with: Triton, Inductor's cache folder and whether it was warm."""
    info: dict[str, Any] = {}
    try:
        import triton

        info["triton"] = triton.__version__
    except Exception:                   # noqa: BLE001 - informational only
        info["triton"] = None
    try:
        from torch._inductor import config as inductor_config
        from torch._inductor.runtime.cache_dir_utils import cache_dir

        folder = Path(cache_dir())
        info["inductor_cache_dir"] = str(folder)
        info["inductor_cache_warm_at_start"] = folder.is_dir() and any(folder.iterdir())
        info["inductor_layout_optimization"] = bool(inductor_config.layout_optimization)
    except Exception as exc:            # noqa: BLE001 - informational only
        info["inductor_cache_dir"] = f"unknown ({type(exc).__name__})"
    return info
