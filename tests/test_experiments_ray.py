"""Scale-out: the executor switch (local pool, Ray), equal results on both, and a Ray task that is
killed mid-run and resumes from its checkpoint.

The Ray tests start one local Ray instance (CPU only, 2 workers, no dashboard, on loopback) and
train a reduced smoke config (3 variants, one seed, 8 steps), so they fit in CI's budget.
"""

from __future__ import annotations

import functools
import json
import os
import shutil

import pytest

# A Ray instance started here serves this machine only: keep it on loopback (read when ray is imported).
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")

from hsgprof.cli import main  # noqa: E402
from hsgprof.errors import HsgprofError  # noqa: E402
from hsgprof.experiments import run_experiment  # noqa: E402
from hsgprof.experiments.config import Budget, get_preset  # noqa: E402
from hsgprof.experiments.executors import LocalExecutor, RayExecutor, get_executor  # noqa: E402
from hsgprof.experiments.faults import ENV as FAULT_ENV  # noqa: E402

TIMING_META = ("wall_s_this_invocation", "train_wall_s_sum", "eval_wall_s_sum", "training_invocation")


def tiny_config():
    """The smoke preset cut to seconds: 3 variants, one seed, 8 steps (checkpoints at 4 and 8),
    small evaluation sets, no capacity sweep, no controls."""
    return get_preset("smoke").replace(
        name="tiny", budget=Budget(steps=8, batch_size=4, warmup_steps=2, grad_every=4, eval_every=8, checkpoint_every=4),
        n_val=8, n_occlusion=8, n_dense_per_bin=1, n_convergence=4, bootstrap=20, capacity=(), controls=(),
        dense_counts=((1, 5),))


def read_tables(folder):
    """{table: (rows, meta without timings)} of every results file in ``folder``."""
    out = {}
    for p in sorted(folder.glob("experiments_*.json")):
        doc = json.loads(p.read_text())
        meta = {k: v for k, v in doc["meta"].items() if k not in TIMING_META}
        out[p.name] = (doc["rows"], meta)
    return out


@pytest.fixture(scope="module")
def local_tiny(tmp_path_factory):
    """The tiny config trained by the local backend (in this process, one torch thread)."""
    base = tmp_path_factory.mktemp("local")
    run_experiment(tiny_config(), base / "out", base / "cache", progress=False, workers=1)
    return base / "out", base / "cache" / tiny_config().key()


@pytest.fixture(scope="module")
def ray_session():
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def test_ray_backend_gives_the_local_results_bitwise_and_shares_the_cache(local_tiny, ray_session, tmp_path,
                                                                          monkeypatch, capsys):
    local_out, local_cache = local_tiny
    monkeypatch.setattr("hsgprof.experiments.get_preset", lambda name: tiny_config())
    # The CLI's Ray executor joins the session the test started (2 CPUs), one task per run.
    assert main(["experiments", "run", "--preset", "smoke", "--backend", "ray", "--quiet",
                 "--out", str(tmp_path / "out"), "--cache", str(tmp_path / "cache")]) == 0
    assert "theorem.entropy" in capsys.readouterr().out
    assert ray_session.is_initialized()                         # an executor never shuts down a session it joined
    cache = tmp_path / "cache" / tiny_config().key()
    ran = json.loads((cache / "training_invocation.json").read_text())
    assert ran["runs_trained"] == 3 and ran["executor"]["backend"] == "ray" and ran["executor"]["cluster_cpus"] == 2
    assert ran["executor"]["num_cpus_per_task"] == 1 and ran["executor"]["num_gpus_per_task"] == 0
    local, remote = read_tables(local_out), read_tables(tmp_path / "out")
    assert len(local) >= 10 and local.keys() == remote.keys()
    for name in local:                                          # every table, row for row, float for float
        assert local[name] == remote[name], name
    # ... and the other way round: the local backend reuses every run Ray finished, training nothing.
    stamps = {p: p.stat().st_mtime_ns for p in cache.glob("*/*")}
    again = []
    run_experiment(tiny_config(), tmp_path / "again", tmp_path / "cache", progress=False, workers=1,
                   on_run_done=lambda *a: again.append(a))
    assert again == [] and {p: p.stat().st_mtime_ns for p in cache.glob("*/*")} == stamps
    assert read_tables(tmp_path / "again") == local


def test_ray_task_killed_mid_run_resumes_from_its_checkpoint(local_tiny, ray_session, tmp_path):
    """The hybrid run's worker dies right after its step-4 checkpoint; Ray retries the task, which
    resumes at step 4 (never from scratch), and the results equal the uninterrupted local ones."""
    local_out, local_cache = local_tiny
    cache = tmp_path / "cache" / tiny_config().key()
    shutil.copytree(local_cache, cache)                         # finished local runs are reused on Ray ...
    shutil.rmtree(cache / "main-hybrid-s0")                     # ... except this one, trained on Ray
    fault = {"run": "main-hybrid-s0", "step": 4, "dir": str(tmp_path)}
    trained = []
    with RayExecutor(max_retries=2, runtime_env={"env_vars": {FAULT_ENV: json.dumps(fault)}}) as ex:
        run_experiment(tiny_config(), tmp_path / "out", tmp_path / "cache", progress=False, backend=ex,
                       on_run_done=lambda *a: trained.append(a[2]))
    assert trained == ["main-hybrid-s0"]
    assert (tmp_path / "main-hybrid-s0.died").exists()          # the first attempt's process exited ...
    # ... after the step-4 checkpoint; the retry's next checkpoint is step 8 (a fresh start would log 4 again).
    assert (tmp_path / "main-hybrid-s0.trace").read_text().split() == ["4", "8"]
    assert read_tables(tmp_path / "out") == read_tables(local_out)


def test_executor_map_keeps_order_and_raises_task_errors(ray_session):
    from hsgprof.experiments.datasource import parse_size

    square = functools.partial(pow, exp=2)
    seen = []
    assert LocalExecutor(1).map(square, range(5), progress=False, on_done=lambda i, r: seen.append(i)) == [0, 1, 4, 9, 16]
    assert seen == [0, 1, 2, 3, 4] and LocalExecutor(1).in_process
    assert LocalExecutor(2).map(square, range(5), progress=False) == [0, 1, 4, 9, 16]
    with RayExecutor() as ex:
        assert ex.map(square, range(5), progress=False) == [0, 1, 4, 9, 16]
        assert ex.map(parse_size, ["64", "96x128"], progress=False) == [(64, 64), (96, 128)]
        with pytest.raises(HsgprofError, match="--image-size 'bad' is not accepted"):   # the task's own error
            ex.map(parse_size, ["64", "bad"], progress=False)
    with pytest.raises(HsgprofError, match="--image-size 'bad'"):
        LocalExecutor(1).map(parse_size, ["64", "bad"], progress=False)


def test_backend_switch_refuses_bad_combinations(tmp_path, capsys, monkeypatch):
    with pytest.raises(HsgprofError, match="backend 'dask' is not accepted; choose local or ray"):
        get_executor("dask")
    with pytest.raises(HsgprofError, match="--address 'auto' needs --backend ray"):
        get_executor("local", address="auto")
    with pytest.raises(HsgprofError, match="--workers sizes a local Ray instance"):
        get_executor("ray", workers=2, address="auto")
    with pytest.raises(HsgprofError, match="--gpus-per-run 0"):
        get_executor("ray", device="cuda", gpus_per_task=0)
    assert isinstance(get_executor("local", device="cuda"), LocalExecutor)
    assert get_executor("local", device="cuda").workers == 1
    cache = tmp_path / "cache"
    for argv, msg in ((["--address", "auto"], "--address 'auto' needs --backend ray"),
                      (["--backend", "ray", "--max-retries", "-1"], "--max-retries -1 is not accepted"),
                      (["--backend", "spark"], None)):
        rc = main(["experiments", "run", "--preset", "smoke", "--out", str(tmp_path / "out"), "--cache", str(cache),
                   *argv]) if msg else None
        if msg is None:
            with pytest.raises(SystemExit):                     # argparse refuses an unknown choice
                main(["experiments", "run", "--preset", "smoke", *argv])
            continue
        assert rc == 2 and msg in capsys.readouterr().err
    # Without Ray installed, --backend ray says how to get it (and writes nothing).
    monkeypatch.setitem(__import__("sys").modules, "ray", None)
    assert main(["experiments", "run", "--preset", "smoke", "--backend", "ray", "--cache", str(cache),
                 "--out", str(tmp_path / "out")]) == 2
    assert "pip install 'hsgprof[ray]'" in capsys.readouterr().err
    assert not cache.exists() and not (tmp_path / "out").exists()
