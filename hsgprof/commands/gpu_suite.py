"""``hsgprof gpu-suite``: every CUDA measurement of the memory/latency issue, in one time-boxed run.

Sections, in order (each one's rows are written as soon as a measurement finishes, so a run
that is cut short still leaves its data):

1. ``memory``   per-phase ``max_memory_allocated`` / ``max_memory_reserved`` of hsgdet-l steps
                after warm-up, beside the estimator's prediction -> ``memory.json``
2. ``snapshot`` allocator history of one hsgdet-l inference step (batch 1, fp32), a pickle that
                https://pytorch.org/memory_viz opens -> ``snapshot_hsgdet-l_inference_b1.pickle``
3. ``latency``  hsgdet-l, hsgdet-l-grid, its family's YOLO-l reference and yolov8l-ref timed side by side (CUDA events, median
                and IQR), batch 1 and a throughput batch; per-component times and the
                global-reasoning share of time beside its FLOP share -> ``latency.json``
4. ``maxbatch`` a 16 GB card emulated with ``set_per_process_memory_fraction``; the largest batch
                at the input size for inference and training, fp32 and fp16 AMP, searched on
                the GPU (OOM-safe) and predicted by the estimator -> ``max_batch.json``

Plus ``suite.log`` and ``summary.md``: at most 6 files, no sub-folders. The estimator's
predictions run in worker processes (CPU only, ``CUDA_VISIBLE_DEVICES`` cleared) while the GPU
measures. ``--max-minutes`` is a global deadline: a section starts only with time left, shares
what is left with the sections after it, and skips (and says so) what would not fit.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import os
import re
import shlex
import sys
import time
import traceback
from concurrent.futures import Future, ProcessPoolExecutor, wait
from pathlib import Path
from typing import Any, Callable

from hsgprof.errors import HsgprofError
from hsgprof.provenance import REPO_ROOT
from hsgprof.results import atomic_write_text, render_table, write_results

SECTIONS = ("memory", "snapshot", "latency", "maxbatch")
SHARES = {"memory": 0.2, "snapshot": 0.05, "latency": 0.35, "maxbatch": 0.4}
MiB = 1 << 20
GiB = 1 << 30


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("gpu-suite", help="run every CUDA measurement (memory, snapshot, latency, 16 GB max batch)",
                       description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default=None, help="output folder (default reports/measurements/<gpu>-<date>/)")
    p.add_argument("--quick", action="store_true", help="fewer configurations and repeats")
    p.add_argument("--max-minutes", type=float, default=8.0, help="global time budget in minutes (default 8)")
    p.add_argument("--sections", default=",".join(SECTIONS),
                   help=f"comma-separated subset of {','.join(SECTIONS)} (default all)")
    p.add_argument("--input", default="1080x1920", help="HxW of every measurement (default 1080x1920)")
    p.add_argument("--card", default="V100-16GB", help="16 GB card to emulate: V100-16GB or T4 (default V100-16GB)")
    p.add_argument("--jobs", type=int, default=None,
                   help="estimator worker processes (default: min(6, CPUs - 2); 0 runs them in this process)")
    p.add_argument("--device", default="cuda", help=argparse.SUPPRESS)       # tests run the latency part on cpu
    p.set_defaults(func=run)


def gpu_slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "gpu"


def _command(args: argparse.Namespace) -> str:
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


# ------------------------------------------------------------------------------------ estimator jobs
def _worker_init() -> None:
    os.environ["CUDA_VISIBLE_DEVICES"] = ""          # workers never touch the GPU being measured
    import torch

    torch.set_num_threads(1)


def job_estimate(target: str, shape: tuple[int, int, int, int], mode: str, precision: str,
                 optimizer: str | None) -> dict[str, Any]:
    from hsgprof.memory.estimate import estimate_memory

    return estimate_memory(target, shape, mode=mode, optimizer=optimizer, precision=precision,
                           device="cuda").summary()


def job_predict_max_batch(target: str, hw: tuple[int, int], mode: str, precision: str, limit: int,
                          optimizer: str | None, max_batch: int) -> dict[str, Any]:
    from hsgprof.memory.budget import predict_max_batch

    t0 = time.perf_counter()
    res, _ = predict_max_batch(target, hw, mode, precision, limit, optimizer, max_batch)
    return {**res.row(), "seconds": round(time.perf_counter() - t0, 1),
            "trial_list": [{"batch": t.batch, "ok": t.ok, **t.info} for t in res.trials]}


class _Inline:
    """A stand-in for a process pool that runs jobs when their result is asked for."""

    def submit(self, fn: Callable[..., Any], *args: Any) -> Any:
        class _Lazy:
            def result(self, timeout: float | None = None) -> Any:
                return fn(*args)
        return _Lazy()

    def shutdown(self, wait: bool = True, cancel_futures: bool = False) -> None:
        return None


# ------------------------------------------------------------------------------------ the suite
class Suite:
    def __init__(self, args: argparse.Namespace) -> None:
        import torch

        self.args = args
        self.t0 = time.monotonic()
        if args.max_minutes <= 0:
            raise HsgprofError(f"--max-minutes {args.max_minutes} is not accepted; it must be > 0")
        self.deadline = self.t0 + args.max_minutes * 60
        self.sections = [s.strip() for s in args.sections.split(",") if s.strip()]
        bad = [s for s in self.sections if s not in SECTIONS]
        if bad or not self.sections:
            raise HsgprofError(f"--sections {args.sections!r} is not accepted; choose from {', '.join(SECTIONS)}")
        try:
            h, w = (int(v) for v in args.input.lower().split("x"))
            if h < 32 or w < 32:
                raise ValueError
        except ValueError:
            raise HsgprofError(f"--input {args.input!r} is not accepted; give HxW with H, W >= 32, "
                               "e.g. 1080x1920") from None
        self.hw = (h, w)
        self.quick = args.quick
        self.device = args.device
        self.gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
        date = _dt.date.today().isoformat()
        self.out = Path(args.out) if args.out else REPO_ROOT / "reports" / "measurements" / f"{gpu_slug(self.gpu)}-{date}"
        self.command = _command(args)
        self.config = {"input_hw": list(self.hw), "quick": self.quick, "max_minutes": args.max_minutes,
                       "sections": self.sections, "card": args.card}
        self.rows: dict[str, list[dict[str, Any]]] = {"memory": [], "latency": [], "maxbatch": []}
        self.meta: dict[str, dict[str, Any]] = {"memory": {}, "latency": {}, "maxbatch": {}}
        self.status: dict[str, str] = {}
        self.out.mkdir(parents=True, exist_ok=True)
        self._log = open(self.out / "suite.log", "a", encoding="utf-8")

    # -------------------------------------------------------------------------- helpers
    def log(self, msg: str) -> None:
        line = f"[{time.monotonic() - self.t0:7.1f}s] {msg}"
        print(line, flush=True)
        self._log.write(line + "\n")
        self._log.flush()

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def section_budget(self, name: str) -> float:
        left = [s for s in SECTIONS if s in self.sections and s not in self.status]
        share = SHARES[name] / sum(SHARES[s] for s in left)
        return max(self.remaining(), 0.0) * share

    def write(self, kind: str) -> None:
        files = {"memory": ("memory.json", "memory-cuda"), "latency": ("latency.json", "latency-cuda"),
                 "maxbatch": ("max_batch.json", "max-batch-16gb")}
        name, result_kind = files[kind]
        from hsgprof.adapters.hsgdet import config_fingerprint, presets

        # which config each preset name meant when measured (hsgdet-l follows the primary reading)
        names = sorted({r["target"] for r in self.rows[kind] if r.get("target") in presets()})
        meta = {**self.meta[kind], "config_fingerprints": {t: config_fingerprint(t) for t in names}}
        write_results(self.out / name, result_kind, self.rows[kind], config=self.config, meta=meta,
                      command=self.command)

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

    # -------------------------------------------------------------------------- setup
    def setup(self) -> None:
        import torch

        from hsgprof.memory import cuda as cuda_mem
        from hsgprof.memory.budget import card

        self.log(f"hsgprof gpu-suite on {self.gpu}; out={self.out}; budget {self.args.max_minutes} min; "
                 f"sections {','.join(self.sections)}; input {self.hw[0]}x{self.hw[1]}")
        info: dict[str, Any] = {"gpu": self.gpu, "torch": torch.__version__, "cuda": torch.version.cuda,
                                "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
                                "allow_tf32_matmul": torch.backends.cuda.matmul.allow_tf32,
                                "allow_tf32_cudnn": torch.backends.cudnn.allow_tf32,
                                "cudnn_benchmark": torch.backends.cudnn.benchmark,
                                "alloc_conf": os.environ.get("PYTORCH_CUDA_ALLOC_CONF", "")}
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
        self.info = info
        for m in self.meta.values():
            m["device"] = info
        self.log(f"context {info['context_bytes'] / MiB:.0f} MiB; emulated card {self.card.name}: "
                 f"{self.card.usable_bytes / GiB:.2f} GiB usable = fraction {info['fraction']:.4f} of "
                 f"{self.total / GiB:.2f} GiB")

    # -------------------------------------------------------------------------- planned work
    def memory_configs(self) -> list[tuple[str, str, str, int]]:
        cfg = [("hsgdet-l", "inference", "fp32", 1), ("hsgdet-l", "inference", "fp16-amp", 1),
               ("hsgdet-l", "train", "fp32", 1), ("hsgdet-l", "train", "fp16-amp", 1)]
        if not self.quick:
            cfg += [("hsgdet-l", "inference", "fp32", 4), ("hsgdet-l", "train", "fp16-amp", 2),
                    ("hsgdet-l", "train", "bf16", 1), ("yolov8l-ref", "train", "fp16-amp", 1)]
        return cfg

    def maxbatch_configs(self) -> list[tuple[str, str, int]]:
        return [("inference", "fp32", 64), ("inference", "fp16-amp", 64), ("train", "fp32", 32),
                ("train", "fp16-amp", 32)]

    def start_estimates(self) -> None:
        jobs = self.args.jobs
        if jobs is None:
            jobs = max(1, min(6, (os.cpu_count() or 2) - 2))
        self.pool: Any = _Inline()
        if jobs > 0:
            try:
                import multiprocessing as mp

                self.pool = ProcessPoolExecutor(max_workers=jobs, mp_context=mp.get_context("spawn"),
                                                initializer=_worker_init)
            except Exception as exc:    # noqa: BLE001 - fall back to running them here
                self.log(f"estimator pool unavailable ({type(exc).__name__}); estimating in-process")
        self.futures: dict[tuple, Any] = {}
        h, w = self.hw
        if "memory" in self.sections:
            for target, mode, prec, b in self.memory_configs():
                key = ("est", target, mode, prec, b)
                self.futures[key] = self.pool.submit(job_estimate, target, (b, 3, h, w), mode, prec, "adamw")
        if "maxbatch" in self.sections:
            for mode, prec, cap in self.maxbatch_configs():
                key = ("maxb", mode, prec)
                self.futures[key] = self.pool.submit(job_predict_max_batch, "hsgdet-l", self.hw, mode, prec,
                                                     self.card.usable_bytes, "adamw", cap)
        self.log(f"estimator: {len(self.futures)} jobs on {jobs if jobs > 0 else 'no'} worker processes")

    def result(self, key: tuple, timeout: float) -> Any:
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

    # -------------------------------------------------------------------------- sections
    def section_memory(self, budget: float) -> None:
        from hsgprof.memory import cuda as cuda_mem

        end = time.monotonic() + budget
        h, w = self.hw
        configs = self.memory_configs()
        for i, (target, mode, prec, b) in enumerate(configs):
            if time.monotonic() > end:
                self.log(f"memory: skipping {len(configs) - i} configurations (time budget)")
                for t2, m2, p2, b2 in configs[i:]:
                    self.rows["memory"].append({"target": t2, "mode": m2, "precision": p2, "batch": b2,
                                                "phase": "step", "status": "skipped: time budget"})
                break
            label = f"{target} {mode} {prec} b{b}"
            self.log(f"memory: {label}")
            meas = self.guarded(f"memory {label}", lambda: cuda_mem.measure_step_memory(
                target, (b, 3, h, w), mode, prec, "adamw", warmup=2))
            pred = self.result(("est", target, mode, prec, b), end - time.monotonic())
            self.rows["memory"].extend(memory_rows(target, mode, prec, b, self.hw, meas, pred))
            self.write("memory")
            step = [r for r in self.rows["memory"] if r.get("phase") == "step" and r.get("target") == target
                    and r.get("mode") == mode and r.get("precision") == prec and r.get("batch") == b]
            if step:
                r = step[-1]
                self.log(f"  measured peak allocated {fmt_mib(r.get('measured_peak_allocated_bytes'))}, "
                         f"predicted {fmt_mib(r.get('predicted_peak_allocated_bytes'))}, "
                         f"ratio {r.get('allocated_ratio')}")

    def section_snapshot(self, budget: float) -> None:
        from hsgprof.memory import cuda as cuda_mem

        h, w = self.hw
        path = self.out / "snapshot_hsgdet-l_inference_b1.pickle"
        res = self.guarded("snapshot", lambda: cuda_mem.record_snapshot("hsgdet-l", (1, 3, h, w), path,
                                                                         mode="inference", precision="fp32"))
        if isinstance(res, dict):
            self.meta["memory"]["snapshot"] = {**res, "path": path.name,
                                               "open_with": "https://pytorch.org/memory_viz"}
            self.log(f"snapshot: {path.name}, {res['bytes'] / MiB:.1f} MiB, {res['events']} events")
            if res["bytes"] > 16 * MiB:
                self.log("snapshot: larger than 16 MiB (may not be copied back from the GPU host)")
            self.write("memory")

    def section_latency(self, budget: float) -> None:
        from hsgprof.adapters.hsgdet import GLOBAL_REASONING
        from hsgprof.timing.latency import latency_rows

        end = time.monotonic() + budget
        h, w = self.hw
        precisions = ["fp32", "fp16-amp"] + ([] if self.quick else ["bf16"])
        batches = [1, 8]
        warmup, repeat = (5, 15) if self.quick else (10, 30)
        if self.device == "cpu":
            warmup, repeat = 1, 2
        from hsgprof.adapters.hsgdet import primary
        from hsgprof.claims.readings import FAMILIES, READINGS

        yolo_l = FAMILIES[READINGS[primary()].family]["l"]      # hsgdet-l's "YOLO-l": its family's reference
        targets = ["hsgdet-l", "hsgdet-l-grid", *dict.fromkeys((yolo_l, "yolov8l-ref"))]
        plan = [(p, b) for p in precisions for b in batches]
        # CPU estimator jobs compete with the host side of kernel launches: let them finish first
        # (batch-1 timings are launch-bound), waiting at most a fifth of this section's budget.
        running = [f for f in self.futures.values() if isinstance(f, Future) and not f.done()]
        if running:
            self.log(f"latency: waiting for {len(running)} estimator jobs to finish on the CPU")
            wait(running, timeout=budget / 5)
        pending = sum(1 for f in running if not f.done())
        self.meta["latency"]["estimator_jobs_running_at_start"] = pending
        if pending:
            self.log(f"latency: {pending} estimator jobs still running on the CPU (timings may be perturbed)")
        self.meta["latency"].update(targets=targets, reference=yolo_l, warmup=warmup, repeat=repeat,
                                    timer="CUDA events" if self.device == "cuda" else "perf_counter",
                                    global_reasoning=list(GLOBAL_REASONING),
                                    note="end-to-end = the network without post-processing (raw head outputs)")
        for i, (prec, b) in enumerate(plan):
            left = end - time.monotonic()
            if left < 5:
                self.log(f"latency: skipping {len(plan) - i} configurations (time budget)")
                for p2, b2 in plan[i:]:
                    self.rows["latency"].append({"precision": p2, "batch": b2, "kind": "skipped",
                                                 "status": "skipped: time budget"})
                break
            per = left / (len(plan) - i)
            self.log(f"latency: {prec} batch {b} ({per:.0f} s)")
            rows = self.guarded(f"latency {prec} b{b}", lambda: latency_rows(
                targets, (b, 3, h, w), prec, self.device, warmup=warmup, repeat=repeat, components=True,
                reference=yolo_l, global_components=GLOBAL_REASONING, time_budget_s=per * 0.4))
            if isinstance(rows, list):
                self.rows["latency"].extend(rows)
                for r in rows:
                    if r["kind"] == "end_to_end":
                        self.log(f"  {r['target']}: median {r['median_ms']:.2f} ms (IQR {r['iqr_ms']:.2f})")
                    elif r["kind"] == "ratio":
                        self.log(f"  {r['target']} / {yolo_l} = {r['ratio_median_of_rounds']:.3f}")
            else:
                self.rows["latency"].append({"precision": prec, "batch": b, "kind": "error", "status": repr(rows)})
            self.write("latency")
            _free()

    def section_maxbatch(self, budget: float) -> None:
        from hsgprof.memory import cuda as cuda_mem

        end = time.monotonic() + budget
        configs = self.maxbatch_configs()
        self.meta["maxbatch"].update(card=self.card.describe(), fraction=self.info["fraction"],
                                     target="hsgdet-l", input_hw=list(self.hw), optimizer="adamw",
                                     note="training trials run two full steps; reserved memory is what the "
                                          "limit applies to; only batches that ran are reported as fitting")
        for i, (mode, prec, cap) in enumerate(configs):
            left = end - time.monotonic()
            if left < 5:
                self.log(f"maxbatch: skipping {len(configs) - i} searches (time budget)")
                for m2, p2, _ in configs[i:]:
                    self.rows["maxbatch"].append({"mode": m2, "precision": p2, "status": "skipped: time budget"})
                break
            per = left / (len(configs) - i)
            self.log(f"maxbatch: {mode} {prec} (cap {cap}, {per:.0f} s)")
            meas = self.guarded(f"maxbatch {mode} {prec}", lambda: cuda_mem.search_cuda_max_batch(
                "hsgdet-l", self.hw, mode, prec, self.card.usable_bytes, "adamw", cap, time_budget_s=per * 0.85))
            pred = self.result(("maxb", mode, prec), end - time.monotonic())
            row = maxbatch_row(mode, prec, cap, self.hw, self.card, self.info["fraction"], meas, pred)
            self.rows["maxbatch"].append(row)
            self.meta["maxbatch"].setdefault("trials", []).append({
                "mode": mode, "precision": prec,
                "measured": [{"batch": t.batch, "ok": t.ok, "seconds": round(t.seconds, 2), **t.info}
                             for t in getattr(meas, "trials", [])],
                "predicted": (pred or {}).get("trial_list", [])})
            self.write("maxbatch")
            self.log(f"  measured max batch {row.get('measured_max_batch')} (first fail "
                     f"{row.get('measured_first_failing_batch')}), predicted {row.get('predicted_max_batch')}")

    # -------------------------------------------------------------------------- run
    def run(self) -> int:
        self.setup()
        self.start_estimates()
        try:
            for name in SECTIONS:
                if name not in self.sections:
                    continue
                if self.remaining() < 5:
                    self.log(f"{name}: skipped (global time budget spent)")
                    self.status[name] = "skipped"
                    continue
                budget = self.section_budget(name)
                self.log(f"== {name} (up to {budget:.0f} s)")
                r = self.guarded(name, lambda: getattr(self, f"section_{name}")(budget))
                self.status[name] = "error" if isinstance(r, Exception) else "done"
        finally:
            _stop_pool(self.pool)
            text = summary_markdown(self)
            atomic_write_text(self.out / "summary.md", text)
            self.log(f"done in {time.monotonic() - self.t0:.0f} s; files in {self.out}")
            print()
            print(text)
            self._log.close()
        return 0


def _stop_pool(pool: Any) -> None:
    """Cancel what has not started and end the workers (a late estimate must not hold the exit)."""
    try:
        pool.shutdown(wait=False, cancel_futures=True)
        for proc in list(getattr(pool, "_processes", {}).values() or []):
            if proc.is_alive():
                proc.terminate()
    except Exception:                   # noqa: BLE001 - best effort at the end of the run
        pass


def _free() -> None:
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def fmt_mib(v: Any) -> str:
    return "n/a" if v is None else f"{v / MiB:.0f} MiB"


def _ratio(pred: Any, meas: Any) -> float | None:
    if pred is None or not meas:
        return None
    return round(pred / meas, 4)


def memory_rows(target: str, mode: str, prec: str, batch: int, hw: tuple[int, int], meas: Any,
                pred: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Predicted vs measured, one row per phase plus the whole step and the static baseline."""
    base = {"target": target, "mode": mode, "precision": prec, "batch": batch, "input": f"{batch}x3x{hw[0]}x{hw[1]}",
            "optimizer": "adamw" if mode == "train" else None}
    meas_ok = isinstance(meas, dict)
    status = "ok" if meas_ok else f"measurement failed: {type(meas).__name__}: {meas}"[:300]
    pphase = {r["phase"]: r for r in (pred or {}).get("per_phase", [])}
    rows = []
    phases = list(meas["phases"]) if meas_ok else list(pphase) or ["forward"]
    for ph in phases + ["step"]:
        if ph == "step":
            ma = meas["peak_allocated_bytes"] if meas_ok else None
            mr = meas["peak_reserved_bytes"] if meas_ok else None
            pa = pred.get("peak_bytes") if pred else None
            pr = pred.get("peak_reserved_bytes") if pred else None
        else:
            ma = meas["phases"][ph]["peak_allocated_bytes"] if meas_ok else None
            mr = meas["phases"][ph]["peak_reserved_bytes"] if meas_ok else None
            pa = pphase.get(ph, {}).get("peak_allocated_bytes")
            pr = pphase.get(ph, {}).get("peak_reserved_bytes")
        ra = _ratio(pa, ma)
        rows.append({**base, "phase": ph, "measured_peak_allocated_bytes": ma, "measured_peak_reserved_bytes": mr,
                     "predicted_peak_allocated_bytes": pa, "predicted_peak_reserved_bytes": pr,
                     "allocated_ratio": ra, "reserved_ratio": _ratio(pr, mr),
                     "within_10pct_allocated": None if ra is None else abs(ra - 1) <= 0.10,
                     "measured_peak_allocated_MiB": None if ma is None else round(ma / MiB, 1),
                     "predicted_peak_allocated_MiB": None if pa is None else round(pa / MiB, 1),
                     "measured_peak_reserved_MiB": None if mr is None else round(mr / MiB, 1),
                     "predicted_peak_reserved_MiB": None if pr is None else round(pr / MiB, 1),
                     "status": status if pred else f"{status}; no prediction"})
    mb = meas.get("baseline_allocated_bytes") if meas_ok else None
    pb = pred.get("static_bytes") if pred else None
    rows.append({**base, "phase": "baseline (static: params, buffers, optimizer state, input)",
                 "measured_peak_allocated_bytes": mb, "predicted_peak_allocated_bytes": pb,
                 "allocated_ratio": _ratio(pb, mb),
                 "unmodelled_persistent_bytes": None if mb is None or pb is None else mb - pb,
                 "status": status})
    if pred:
        for k in ("params_bytes", "grads_bytes", "optimizer_bytes", "saved_bytes", "activations_bytes",
                  "estimator_seconds"):
            rows[-1][f"predicted_{k}"] = pred.get(k)
    return rows


def maxbatch_row(mode: str, prec: str, cap: int, hw: tuple[int, int], card: Any, fraction: float, meas: Any,
                 pred: dict[str, Any] | None) -> dict[str, Any]:
    row: dict[str, Any] = {"target": "hsgdet-l", "mode": mode, "precision": prec, "input_hw": f"{hw[0]}x{hw[1]}",
                           "optimizer": "adamw" if mode == "train" else None, "search_cap": cap,
                           "card": card.name, "usable_bytes": card.usable_bytes,
                           "usable_GiB": round(card.usable_bytes / GiB, 3), "fraction": round(fraction, 5)}
    if hasattr(meas, "row"):
        r = meas.row()
        row.update({f"measured_{k}": v for k, v in r.items()})
        row["status"] = "ok"
    else:
        row["status"] = f"measurement failed: {type(meas).__name__}: {meas}"[:300]
    if pred:
        row.update({f"predicted_{k}": v for k, v in pred.items() if k != "trial_list"})
    if hasattr(meas, "row") and pred:
        row["agree"] = row["measured_max_batch"] == row["predicted_max_batch"]
    return row


def md_table(df: Any) -> str:
    """A Markdown table; without ``tabulate`` (absent on some GPU hosts) a plain pipe table."""
    try:
        return render_table(df, "md")
    except ImportError:
        def cell(v: Any) -> str:
            if isinstance(v, float):
                return "" if v != v else f"{v:.4g}"
            return "" if v is None else str(v).replace("|", "/")

        cols = [str(c) for c in df.columns]
        lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
        lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in df.itertuples(index=False)]
        return "\n".join(lines)


def summary_markdown(suite: Suite) -> str:
    import pandas as pd

    lines = [f"# hsgprof gpu-suite on {suite.gpu}", "",
             f"- command: `{suite.command}`", f"- date: {_dt.datetime.now(_dt.timezone.utc).isoformat(timespec='seconds')}",
             f"- input: {suite.hw[0]}x{suite.hw[1]}; sections: {', '.join(f'{k}={v}' for k, v in suite.status.items())}",
             f"- emulated card: {suite.card.name}, {suite.card.usable_bytes / GiB:.2f} GiB usable "
             f"(context {suite.card.context_bytes / MiB:.0f} MiB)" if hasattr(suite, "card") else "- card: n/a",
             "- memory in MiB (2^20 bytes); times in ms (median and IQR over repeated runs after warm-up)", ""]
    mem = [r for r in suite.rows["memory"] if r.get("phase") == "step"]
    if mem:
        df = pd.DataFrame(mem)
        cols = [c for c in ("target", "mode", "precision", "batch", "measured_peak_allocated_MiB",
                            "predicted_peak_allocated_MiB", "allocated_ratio", "measured_peak_reserved_MiB",
                            "predicted_peak_reserved_MiB", "status") if c in df]
        lines += ["## Memory: predicted vs measured peak (whole step)", "", md_table(df[cols]), ""]
    mb = suite.rows["maxbatch"]
    if mb:
        df = pd.DataFrame(mb)
        cols = [c for c in ("mode", "precision", "measured_max_batch", "measured_first_failing_batch",
                            "predicted_max_batch", "predicted_first_failing_batch", "agree", "status") if c in df]
        lines += ["## Largest batch on an emulated 16 GB card", "", md_table(df[cols]), ""]
    lat = [r for r in suite.rows["latency"] if r.get("kind") in ("end_to_end", "ratio", "global_share")]
    if lat:
        df = pd.DataFrame(lat)
        cols = [c for c in ("target", "precision", "batch", "component", "median_ms", "iqr_ms",
                            "ratio_median_of_rounds", "time_share", "flops_share") if c in df]
        lines += ["## Latency", "", md_table(df[cols]), ""]
    return "\n".join(lines) + "\n"


def run(args: argparse.Namespace) -> int:
    import torch

    if args.device == "cuda" and not torch.cuda.is_available():
        raise HsgprofError("gpu-suite needs a CUDA GPU and none is available here (torch.cuda.is_available() "
                           "is False); the estimates run without one: `hsgprof memory TARGET --max-batch 64`")
    if args.jobs is not None and args.jobs < 0:
        raise HsgprofError(f"--jobs {args.jobs} is not accepted; it must be >= 0")
    return Suite(args).run()
