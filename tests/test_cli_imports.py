"""A fast CLI: ``hsgprof --help`` imports no torch; each subcommand's help works; ``count`` imports
only what counting needs (the pattern is in ``hsgprof/commands/__init__.py``).

Each check runs in a fresh interpreter (``python -X importtime`` or ``sys.modules``), since this
test process has long imported torch.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# What neither the parser nor any --help may import (the heavy libraries and the model package).
HEAVY = ("torch", "pandas", "numpy", "scipy", "matplotlib", "sympy", "tqdm", "torchvision", "hsgdet", "fvcore",
         "thop", "sklearn", "pypdf", "reportlab", "ray")
# What counting hsgdet-l (native, referee) needs no part of.
NOT_FOR_COUNT = ("scipy", "torchvision", "matplotlib", "fvcore", "thop", "sklearn", "ennemi", "reportlab", "pypdf",
                 "PIL", "pycocotools", "ray")


def _python(code: str, *flags: str, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "model"),
                                                         os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, *flags, "-c", code], capture_output=True, text=True, timeout=timeout,
                          env=env, cwd=ROOT)


def _imported_by_importtime(stderr: str) -> set[str]:
    """Top-level packages named in ``-X importtime`` output (one line per imported module)."""
    names = set()
    for line in stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            name = line.rsplit("|", 1)[1].strip()
            if name and name != "package":
                names.add(name.split(".")[0])
    return names


def test_help_imports_no_torch():
    out = _python("from hsgprof.cli import main; main(['--help'])", "-X", "importtime")
    assert out.returncode == 0, out.stderr[-2000:]
    assert "count" in out.stdout and "memory" in out.stdout
    imported = _imported_by_importtime(out.stderr)
    assert "hsgprof" in imported                      # the parse of -X importtime output found something
    assert not imported & set(HEAVY), sorted(imported & set(HEAVY))


def test_every_subcommand_help_works_and_imports_nothing_heavy():
    code = """
import contextlib, io, json, sys
from hsgprof.cli import build_parser, main
parser = build_parser()
sub = next(a for a in parser._actions if a.__class__.__name__ == '_SubParsersAction')
argvs = []
for name, p in sub.choices.items():
    argvs.append([name, '--help'])
    for a in p._actions:
        if a.__class__.__name__ == '_SubParsersAction':
            argvs += [[name, action, '--help'] for action in a.choices]
codes = {}
for argv in argvs:
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        try:
            main(argv)
            codes[' '.join(argv)] = ('returned', buf.getvalue()[:80])
        except SystemExit as exc:
            codes[' '.join(argv)] = (exc.code, buf.getvalue()[:80])
print(json.dumps({'codes': codes, 'modules': sorted({m.split('.')[0] for m in sys.modules})}))
"""
    out = _python(code)
    assert out.returncode == 0, out.stderr[-2000:]
    doc = json.loads(out.stdout.strip().splitlines()[-1])
    codes = doc["codes"]
    for cmd in ("count --help", "memory --help", "latency --help", "gpu-suite --help", "report --help",
                "info validate --help", "experiments run --help", "model summary --help", "version --help"):
        assert cmd in codes
    for argv, (code_, text) in codes.items():
        assert code_ == 0 and text.startswith("usage: hsgprof"), (argv, code_, text)
    assert not set(doc["modules"]) & set(HEAVY), sorted(set(doc["modules"]) & set(HEAVY))


def test_light_modules_and_lazy_packages_import_no_torch():
    code = """
import json, sys
import hsgprof.counting, hsgprof.memory, hsgprof.counting.choices, hsgprof.memory.choices, hsgprof.memory.cards
import hsgprof.results
light = sorted({m.split('.')[0] for m in sys.modules})
from hsgprof.counting import count, BACKEND_NAMES
from hsgprof.memory import estimate_memory
import hsgprof.counting.api, hsgprof.memory.estimate
print(json.dumps({'light': light, 'count_is_api': count is hsgprof.counting.api.count,
                  'estimate_is': estimate_memory is hsgprof.memory.estimate.estimate_memory,
                  'names': list(BACKEND_NAMES)}))
"""
    out = _python(code)
    assert out.returncode == 0, out.stderr[-2000:]
    doc = json.loads(out.stdout.strip().splitlines()[-1])
    assert not set(doc["light"]) & set(HEAVY), sorted(set(doc["light"]) & set(HEAVY))
    assert doc["count_is_api"] and doc["estimate_is"]            # the lazy names are the real functions
    from hsgprof.counting import backends
    assert tuple(doc["names"]) == backends.NAMES


def test_count_imports_only_what_counting_needs():
    code = """
import json, sys
from hsgprof.cli import main
rc = main(['count', 'hsgdet-l', '--mode', 'native', '--backend', 'referee', '--format', 'json'])
print(json.dumps({'rc': rc, 'modules': sorted({m.split('.')[0] for m in sys.modules})}), file=sys.stderr)
"""
    out = _python(code, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    doc = json.loads(out.stderr.strip().splitlines()[-1])
    assert doc["rc"] == 0 and json.loads(out.stdout)["params"] > 0
    assert {"torch", "pandas", "hsgdet"} <= set(doc["modules"])
    assert not set(doc["modules"]) & set(NOT_FOR_COUNT), sorted(set(doc["modules"]) & set(NOT_FOR_COUNT))


def test_the_model_imports_torchvision_and_scipy_only_where_used():
    """torchvision.ops imports torch._dynamo (seconds) and scipy is for matching: building HSG-Det needs neither."""
    code = ("import json, sys, hsgdet; hsgdet.build_model('hsgdet-tiny'); "
            "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))")
    out = _python(code)
    assert out.returncode == 0, out.stderr[-2000:]
    mods = set(json.loads(out.stdout.strip().splitlines()[-1]))
    assert "torch" in mods and not mods & {"torchvision", "scipy"}, sorted(mods & {"torchvision", "scipy"})
