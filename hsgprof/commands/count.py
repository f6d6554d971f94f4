"""``hsgprof count TARGET``: parameters and FLOPs by component, module or op, every backend beside the referee."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any

from hsgprof.counting.choices import BACKENDS as BACKEND_NAMES
from hsgprof.errors import HsgprofError
from hsgprof.results import atomic_write_text, check_writable, render_table

if TYPE_CHECKING:  # pragma: no cover
    from hsgprof.counting.api import CountResult

FORMATS = ("md", "csv", "json", "latex")
BY = ("component", "module", "op")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "count", help="count parameters and FLOPs (referee + fcm/fvcore/thop) by component, module or op",
        description="Count parameters and FLOPs of TARGET. FLOPs = 2 × MACs. The referee (closed-form formulas on "
                    "the meta device, cross-checked op by op with FlopCounterMode) always runs; other backends are "
                    "set beside it with what they skipped.")
    p.add_argument("target", help="HSG-Det preset (hsgdet-l, yolov8l-ref, ...) or package.module:factory "
                                  "(e.g. torchvision.models:resnet50)")
    p.add_argument("--input", default=None, help="BxCxHxW or HxW (default: the target's, 1x3x1080x1920 for HSG-Det)")
    p.add_argument("--mode", default=None,
                   help="native (the input as given), padded (H, W rounded up to a multiple of 32, letterbox) "
                        "or both. Default: both for HSG-Det presets, native otherwise")
    p.add_argument("--backend", default="referee,fcm",
                   help=f"comma list of {', '.join(BACKEND_NAMES)}, 'referee', 'all' or 'peers' (default referee,fcm)")
    p.add_argument("--by", default="component", help="rows: component (default), module or op (family)")
    p.add_argument("--depth", default="2", help="module depth for --by module (default 2)")
    p.add_argument("--format", default="md", help=f"one of {', '.join(FORMATS)} (default md)")
    p.add_argument("--out", default=None, help="write the output to FILE (atomically, only after the count succeeded)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="HSG-Det config override, repeatable (e.g. --set num_tokens=512)")
    p.set_defaults(func=run_count)


def _parse_overrides(items: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise HsgprofError(f"--set {item!r} is not accepted; give KEY=VALUE, e.g. num_tokens=512")
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError:
            parsed = value
        out[key] = tuple(parsed) if isinstance(parsed, list) else parsed
    return out


def _modes(args: argparse.Namespace) -> tuple[str, ...]:
    from hsgprof.adapters import hsgdet as hsgdet_adapter

    if args.mode == "both":
        return ("native", "padded")
    if args.mode:
        return (args.mode,)
    return ("native", "padded") if args.target in hsgdet_adapter.presets() else ("native",)


def _summary(res: CountResult) -> list[str]:
    from hsgprof.adapters import hsgdet as hsgdet_adapter

    lines = [f"- referee: {res.macs / 1e9:.4g} GMACs = {res.flops / 1e9:.4g} GFLOPs (GEMM); "
             f"{res.flops_all / 1e9:.4g} GFLOPs with non-GEMM work; {res.params / 1e6:.4g} M params; "
             f"ran on {res.referee.device} in {res.referee.seconds:.2f} s"]
    check = res.check
    line = f"- check vs FlopCounterMode formulas: {check.get('status')} ({check.get('ops_agree')}/{check.get('ops_compared')} ops agree"
    if check.get("fcm_missing"):
        line += "; FCM has no formula for " + ", ".join(f"{m['op']} ×{m['calls']}" for m in check["fcm_missing"])
    if "fcm_run" in check:
        line += f"; fcm run per (module, op): {check['fcm_run']['status']}"
    lines.append(line + ")")
    for name, b in res.backends.items():
        if name.startswith("analytic"):
            continue
        if b.error:
            lines.append(f"- {name}: failed: {b.error}")
            continue
        skipped = b.skipped_text()
        lines.append(f"- {name}: {b.raw / 1e9:.4g} G{b.unit}s (own unit) = {b.flops / 1e9:.4g} GFLOPs on {b.device} "
                     f"in {b.seconds:.2f} s" + (f"; skipped: {skipped}" if skipped else "; skipped nothing it reports")
                     + (f"; left behind and put back: {'; '.join(b.restored)}" if b.restored else ""))
    if res.global_share is not None:
        g = res.global_share
        lines.append(f"- global reasoning ({', '.join(hsgdet_adapter.GLOBAL_REASONING)}): {g['share'] * 100:.2f}% "
                     f"of GEMM FLOPs, {g['share_all'] * 100:.2f}% of all FLOPs")
    return lines


def render(results: list[CountResult], by: str, depth: int, fmt: str) -> str:
    """The command's output text for one or more modes."""
    import pandas as pd

    from hsgprof.counting.tables import for_display

    if fmt == "json":
        objs = {r.mode: _clean_nan(r.to_dict(by, depth)) for r in results}
        top = dict(objs[results[0].mode])
        if len(objs) > 1:
            top["modes"] = objs
        return json.dumps(top, indent=2, default=_json_default, allow_nan=False) + "\n"
    tables = [r.table(by, depth) for r in results]
    if fmt == "csv":
        return render_table(pd.concat(tables, ignore_index=True), "csv")
    parts = []
    for r, t in zip(results, tables):
        head = (f"{r.target}, input {'x'.join(map(str, r.input_shape))}, mode {r.mode} "
                f"(network input {'x'.join(map(str, r.network_input))}); FLOPs = 2 × MACs, params in M, FLOPs in G")
        shown = for_display(t).drop(columns=["mode"], errors="ignore")
        if fmt == "md":
            parts.append("### " + head + "\n\n" + render_table(shown, "md") + "\n\n" + "\n".join(_summary(r)))
        elif fmt == "latex":
            parts.append("% " + head + "\n" + render_table(shown, "latex"))
    return "\n\n".join(parts) + "\n"


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    return str(value)


def _clean_nan(obj: Any) -> Any:
    if isinstance(obj, float) and obj != obj:
        return None
    if isinstance(obj, dict):
        return {k: _clean_nan(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_clean_nan(v) for v in obj]
    return obj


def run_count(args: argparse.Namespace) -> int:
    if args.format not in FORMATS:
        raise HsgprofError(f"--format {args.format!r} is not accepted; choose one of {', '.join(FORMATS)}")
    if args.mode not in (None, "native", "padded", "both"):
        raise HsgprofError(f"--mode {args.mode!r} is not accepted; choose native, padded or both")
    if args.by not in BY:
        raise HsgprofError(f"--by {args.by!r} is not accepted; choose one of {', '.join(BY)}")
    raw_depth = args.depth
    try:
        args.depth = int(raw_depth)
    except ValueError:
        args.depth = -1
    if args.depth < 0:
        raise HsgprofError(f"--depth {raw_depth!r} is not accepted; give an integer >= 0")
    overrides = _parse_overrides(args.overrides)
    if args.out:
        check_writable(args.out)
    from hsgprof.counting import count          # heavy (torch): imported when the command runs

    results = [count(args.target, args.input, mode, args.backend, **overrides) for mode in _modes(args)]
    text = render(results, args.by, args.depth, args.format)
    if args.out:
        atomic_write_text(args.out, text)
        print(f"wrote {args.out}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0
