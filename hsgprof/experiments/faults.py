"""Test-only fault injection: make a training run's process die right after a checkpoint.

The fault-tolerance test needs a task that dies mid-run, the way a killed worker or a lost node
does, and then proof that the retry resumed from the checkpoint instead of starting over. With
``HSGPROF_TEST_FAULT`` set to a JSON object ``{"run": RUN_KEY, "step": N, "dir": FOLDER}``, every
checkpoint of run ``RUN_KEY`` appends its step to ``FOLDER/RUN_KEY.trace``, and the first time
the checkpoint at step ``N`` is written the process exits at once (``os._exit``, no cleanup,
as a SIGKILL would), leaving ``FOLDER/RUN_KEY.died``. A resumed retry's next trace line is the
next checkpoint after ``N``; a retry from scratch would log ``N`` again. Unset, it costs one
environment look-up per checkpoint.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

ENV = "HSGPROF_TEST_FAULT"
EXIT_CODE = 17


def after_checkpoint(run_key: str, step: int) -> None:
    """Called by the trainer after each checkpoint is on disk."""
    spec = os.environ.get(ENV)
    if not spec:
        return
    fault = json.loads(spec)
    if fault.get("run") != run_key:
        return
    folder = Path(fault["dir"])
    with open(folder / f"{run_key}.trace", "a", encoding="utf-8") as fh:
        fh.write(f"{step}\n")
    marker = folder / f"{run_key}.died"
    if step == int(fault["step"]) and not marker.exists():
        marker.write_text(f"pid {os.getpid()} exited after the checkpoint at step {step}\n")
        os._exit(EXIT_CODE)
