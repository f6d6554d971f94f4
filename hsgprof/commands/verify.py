"""``hsgprof verify CLAIMS.yaml``: judge a claims file (any model, any claims) by measurement."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

FORMATS = ("md", "json")
OUT_SUFFIXES = (".pdf", ".md", ".json")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "verify", help="judge a claims file (YAML): measure what its claims need, apply their tolerances",
        description="Judge every claim of CLAIMS (a YAML claims file; schema in the docs' Claims files page) by "
                    "its declared tolerance. Measures only what the claims need: meta-device counts, module "
                    "shapes, the memory estimator, and committed GPU results for latency and measured max "
                    "batch. Prints the verdict table; --out also writes it (.pdf in the report's style, .md or "
                    ".json).")
    p.add_argument("claims", type=Path, help="claims file, e.g. examples/claims/resnet50.yaml or "
                                             "hsgprof/claims/hsgdet.yaml")
    p.add_argument("--out", type=Path, default=None,
                   help="also write the verdicts to FILE: .pdf (report style), .md or .json (results file); "
                        "written atomically after every claim is judged")
    p.add_argument("--format", default="md", help="table printed on stdout: md (default) or json")
    p.add_argument("--measurements", type=Path, default=None,
                   help="folder of committed GPU results (default: the repository's reports/measurements)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from hsgprof.claims.verify import verify
    from hsgprof.claims.verify_document import verification_document
    from hsgprof.errors import HsgprofError
    from hsgprof.provenance import REPO_ROOT, provenance
    from hsgprof.report.render import to_markdown, to_pdf
    from hsgprof.results import atomic_write_bytes, atomic_write_text, check_writable, results_json

    if args.format not in FORMATS:
        raise HsgprofError(f"--format {args.format!r} is not accepted; choose one of {', '.join(FORMATS)}")
    if args.out is not None:
        if args.out.suffix.lower() not in OUT_SUFFIXES:
            raise HsgprofError(f"--out {str(args.out)!r} is not accepted; give a file ending in "
                               f"{', '.join(OUT_SUFFIXES)}")
        check_writable(args.out)                               # before anything is measured
    measurements = args.measurements if args.measurements is not None else REPO_ROOT / "reports" / "measurements"
    if args.measurements is not None and not args.measurements.is_dir():
        raise HsgprofError(f"--measurements {str(args.measurements)!r} is not a folder")

    result = verify(args.claims, measurements, progress=lambda line: print(f"[verify] {line}", file=sys.stderr))
    command = shlex.join(["hsgprof", "verify", str(args.claims), "--format", args.format]
                         + (["--out", str(args.out)] if args.out is not None else [])
                         + (["--measurements", str(args.measurements)] if args.measurements is not None else []))
    run_prov = provenance(command=command)
    doc = verification_document(result, run_prov)
    config = {"claims": str(args.claims), "primary_reading": result.claims.primary_reading or None,
              "readings": list(result.claims.reading_names())}
    meta = {"measurements": result.measurements.to_dict(orient="records"), "gpu_folders": result.gpu_folders}
    table = results_json("verify.verdicts", result.verdicts, config, meta, command) if args.format == "json" \
        else to_markdown(doc)
    if args.out is not None:                                   # rendered in full before the file is replaced
        suffix = args.out.suffix.lower()
        if suffix == ".pdf":
            atomic_write_bytes(args.out, to_pdf(doc))
        elif suffix == ".md":
            atomic_write_text(args.out, to_markdown(doc))
        else:
            atomic_write_text(args.out, results_json("verify.verdicts", result.verdicts, config, meta, command))
        print(f"[verify] wrote {args.out}", file=sys.stderr)
    sys.stdout.write(table if table.endswith("\n") else table + "\n")
    return 0
