"""Provenance: where a number came from (command, commit, date, machine, versions).

Every results file written by hsgprof carries one of these blocks, so a reader can
re-run the command that produced it and knows which device and library versions it ran on.
"""

from __future__ import annotations

import datetime as _dt
import importlib.metadata as _md
import os
import platform
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent

_CODE_PATHS = ("hsgprof", "model", "analyses", "notebooks", "pyproject.toml")
_LIBRARIES = ("torch", "torchvision", "numpy", "scipy", "pandas", "fvcore", "ultralytics-thop", "scikit-learn",
              "ennemi", "hsgprof")


def git_commit(repo: Path = REPO_ROOT) -> str:
    """The checkout's HEAD commit, ``+dirty`` when its code differs from it; ``unknown`` outside git.

    ``HSGPROF_COMMIT`` overrides it (for copies of the tree without .git, e.g. on a GPU host).
    """
    if os.environ.get("HSGPROF_COMMIT"):
        return os.environ["HSGPROF_COMMIT"]
    try:
        sha = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True,
                             text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(repo), "status", "--porcelain", "--", *_CODE_PATHS],
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return sha + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


# The commit of the code this process imported: taken once, when hsgprof first needs provenance
# (every results writer imports this module at start-up), so a long run that writes its file after
# someone commits again still names the code it ran, not the newer HEAD.
_PROCESS_COMMIT = git_commit()


def process_commit() -> str:
    """The commit (``+dirty`` if so) of the checkout when this process started using hsgprof."""
    return os.environ.get("HSGPROF_COMMIT") or _PROCESS_COMMIT


def cpu_model() -> str:
    """The CPU's marketing name (from /proc/cpuinfo on Linux), else ``platform.processor()``."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def library_versions() -> dict[str, str]:
    """Installed versions of the libraries whose behaviour a result depends on."""
    out: dict[str, str] = {}
    for name in _LIBRARIES:
        try:
            out[name] = _md.version(name)
        except _md.PackageNotFoundError:
            out[name] = "not installed"
    return out


def device_info() -> dict[str, Any]:
    """CPU model, core count, and (when CUDA is available) GPU name, memory, driver and CUDA version."""
    import torch

    info: dict[str, Any] = {"cpu": cpu_model(), "cpu_count": os.cpu_count(),
                            "torch_threads": torch.get_num_threads(),
                            "cuda_available": torch.cuda.is_available()}
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        info.update(gpu=props.name, gpu_total_memory_bytes=int(props.total_memory),
                    cuda_runtime=torch.version.cuda, cudnn=torch.backends.cudnn.version(),
                    driver=_nvidia_driver())
    return info


def _nvidia_driver() -> str:
    try:
        return subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                              capture_output=True, text=True, timeout=20).stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def provenance(config: dict[str, Any] | None = None, command: str | None = None) -> dict[str, Any]:
    """The provenance block stored beside every result table."""
    return {
        "command": command if command is not None else " ".join(shlex.quote(a) for a in sys.argv),
        "commit": process_commit(),
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "hostname_class": platform.machine(),
        "python": platform.python_version(),
        "libraries": library_versions(),
        "device": device_info(),
        "config": config or {},
    }
