"""How long the ``hsgprof`` command takes, before and after the lazy CLI, beside a bare ``import torch``.

    python analyses/cli_bench.py [--repeats 5] [--before-ref main | --before-dir DIR]

Targets (issue 16): ``hsgprof --help`` under 0.5 s; ``hsgprof count hsgdet-l --mode native
--backend referee`` within 1.5 s of ``python -c "import torch"``. Every figure is a whole process
(``subprocess``, wall clock, plus the child's user+system CPU time), run from the same interpreter
with ``PYTHONPATH=<tree>:<tree>/model``. BEFORE is the code at ``--before-ref`` (``git archive`` into
a temporary folder) or ``--before-dir``; AFTER is this checkout. The commands are interleaved: each
round runs every command once, in an order rotated from round to round, after one untimed warm-up
round (file cache); medians over the rounds. A second baseline, ``import torch, torch._dynamo``,
is the floor of any count on the meta device: torch imports ``torch._dynamo`` on the first call of
a meta reference kernel (batch norm's) or of a ``TorchDispatchMode`` (the referee's counting mode).

Timings on a shared machine are noisy: the 1-minute load average is recorded before and after each
round; rerun on a quiet machine before reading absolute figures. Writes
``reports/benchmarks/cli_bench.json`` (tidy rows: one per command and round, with provenance).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from hsgprof.results import check_writable, write_results  # noqa: E402

HELP_TARGET_S = 0.5
COUNT_OVER_TORCH_TARGET_S = 1.5
COUNT_ARGS = ["count", "hsgdet-l", "--mode", "native", "--backend", "referee"]


def commands(before: Path, after: Path) -> dict[str, tuple[list[str], Path | None]]:
    """name -> (argv after the interpreter, tree put on PYTHONPATH or None)."""
    cli = ["-m", "hsgprof.cli"]
    return {
        "import torch": (["-c", "import torch"], None),
        "import torch, torch._dynamo": (["-c", "import torch, torch._dynamo"], None),
        "help before": ([*cli, "--help"], before),
        "help after": ([*cli, "--help"], after),
        "count before": ([*cli, *COUNT_ARGS], before),
        "count after": ([*cli, *COUNT_ARGS], after),
    }


def run_once(argv: list[str], tree: Path | None) -> dict[str, float]:
    """Wall seconds and the child's CPU seconds (user + system) of one whole process."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    if tree is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(tree), str(tree / "model")])
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, *argv], env=env, cwd=tree or REPO, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} (tree {tree}) exited {proc.returncode}: {proc.stderr[-500:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall_s": wall, "cpu_s": cpu}


def export_tree(ref: str, into: Path) -> str:
    """``git archive`` of ``ref`` into ``into``; returns the commit it names."""
    commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", ref], check=True, capture_output=True,
                            text=True).stdout.strip()
    archive = subprocess.run(["git", "-C", str(REPO), "archive", commit], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return commit


def benchmark(before: Path, repeats: int) -> tuple[list[dict], dict]:
    cmds = commands(before, REPO)
    names = list(cmds)
    for name in names:                                      # warm-up: file cache, .pyc files
        run_once(*cmds[name])
    rows = []
    for r in range(repeats):
        order = names[r % len(names):] + names[:r % len(names)]
        load = os.getloadavg()[0]
        for name in order:
            rows.append({"command": name, "round": r, **run_once(*cmds[name]), "load_avg_1m_before_round": load})
    med = {n: statistics.median(x["wall_s"] for x in rows if x["command"] == n) for n in names}
    cpu = {n: statistics.median(x["cpu_s"] for x in rows if x["command"] == n) for n in names}
    summary = {
        "median_wall_s": med, "median_cpu_s": cpu,
        "help_after_s": med["help after"], "help_target_s": HELP_TARGET_S,
        "help_meets_target": med["help after"] < HELP_TARGET_S,
        "count_after_minus_torch_s": med["count after"] - med["import torch"],
        "count_before_minus_torch_s": med["count before"] - med["import torch"],
        "count_after_minus_torch_dynamo_s": med["count after"] - med["import torch, torch._dynamo"],
        "count_over_torch_target_s": COUNT_OVER_TORCH_TARGET_S,
        "count_meets_target": med["count after"] - med["import torch"] <= COUNT_OVER_TORCH_TARGET_S,
        # the same differences in CPU time (user + system of the child), which a loaded machine inflates less
        "help_after_cpu_s": cpu["help after"],
        "count_after_minus_torch_cpu_s": cpu["count after"] - cpu["import torch"],
        "count_before_minus_torch_cpu_s": cpu["count before"] - cpu["import torch"],
        "count_after_minus_torch_dynamo_cpu_s": cpu["count after"] - cpu["import torch, torch._dynamo"],
        "help_speedup": med["help before"] / med["help after"],
        "count_speedup": med["count before"] / med["count after"],
        "load_avg_1m_min": min(x["load_avg_1m_before_round"] for x in rows),
        "load_avg_1m_max": max(x["load_avg_1m_before_round"] for x in rows),
        "load_avg_1m_after": os.getloadavg()[0], "cpus": os.cpu_count(), "repeats": repeats,
        "nice": os.nice(0),                     # the niceness every timed process inherited
    }
    return rows, summary


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=5, help="timed rounds (median), after one warm-up round")
    p.add_argument("--before-ref", default="main", help="git ref whose tree is BEFORE (default main)")
    p.add_argument("--before-dir", default=None, help="a tree to use as BEFORE instead of --before-ref")
    p.add_argument("--out", default=str(REPO / "reports" / "benchmarks" / "cli_bench.json"))
    args = p.parse_args(argv)
    if args.repeats < 1:
        p.error(f"--repeats {args.repeats} is not accepted; give 1 or more")
    check_writable(args.out)
    with tempfile.TemporaryDirectory(prefix="hsgprof-before-") as tmp:
        if args.before_dir:
            before, before_commit = Path(args.before_dir).resolve(), "(a folder, not a commit)"
        else:
            before, before_commit = Path(tmp), export_tree(args.before_ref, Path(tmp))
        rows, summary = benchmark(before, args.repeats)
    meta = {**summary, "before": args.before_dir or args.before_ref, "before_commit": before_commit,
            "count_command": "hsgprof " + " ".join(COUNT_ARGS),
            "method": "whole processes from one interpreter, interleaved rounds (order rotated), one warm-up round, "
                      "medians; wall clock and the child's user+system CPU time"}
    path = write_results(args.out, "cli-bench", rows, config={"repeats": args.repeats, "before": meta["before"]},
                         meta=meta)
    for name, s in summary["median_wall_s"].items():
        print(f"{name:<30} median wall {s:6.2f} s   cpu {summary['median_cpu_s'][name]:6.2f} s")
    print(f"help after {summary['help_after_s']:.2f} s (target < {HELP_TARGET_S} s); count after - import torch = "
          f"{summary['count_after_minus_torch_s']:.2f} s (target <= {COUNT_OVER_TORCH_TARGET_S} s); "
          f"count after - import torch+dynamo = {summary['count_after_minus_torch_dynamo_s']:.2f} s; load average "
          f"{summary['load_avg_1m_min']:.2f}-{summary['load_avg_1m_max']:.2f} on {summary['cpus']} CPUs")
    print(f"in CPU time: help after {summary['help_after_cpu_s']:.2f} s; count after - import torch = "
          f"{summary['count_after_minus_torch_cpu_s']:.2f} s; count after - import torch+dynamo = "
          f"{summary['count_after_minus_torch_dynamo_cpu_s']:.2f} s")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
