"""HSG-Det's claims file: the same verdicts and values as the report's ledger, the seed's values, the seed's
sections, and the ledger's public API built from the file plus the theory claims."""

from __future__ import annotations

from pathlib import Path

import pytest

from hsgprof.adapters.hsgdet import GLOBAL_REASONING
from hsgprof.claims import seed
from hsgprof.claims.evaluate import evaluate
from hsgprof.claims.ledger import HSGDET_CLAIMS, LEDGER, REPORT_MEASURES, claim
from hsgprof.claims.measures import MEASURES
from hsgprof.claims.schema import load_claims
from hsgprof.claims.verify import verify
from hsgprof.report.store import ResultsStore
from hsgprof.results import read_results

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "reports" / "results"
MEASUREMENTS = ROOT / "reports" / "measurements"
FILE = load_claims(HSGDET_CLAIMS)


@pytest.fixture(scope="module")
def store() -> ResultsStore:
    """What the committed report was built from: the quick results and the newest GPU folder per device."""
    s = ResultsStore(results_dir=RESULTS)
    s.add_measurements(MEASUREMENTS)
    s.add_folder(RESULTS)
    return s


@pytest.fixture(scope="module")
def verified():
    return verify(HSGDET_CLAIMS, MEASUREMENTS).verdicts.set_index("id")


def _same(a, b) -> bool:
    if isinstance(a, (tuple, list)):
        return list(a) == list(b)
    return a == pytest.approx(b, rel=1e-12)


def test_verify_gives_the_ledgers_verdicts_and_values_for_every_claim_it_covers(verified, store):
    ledger = evaluate(store).set_index("id")
    assert len(verified) == len(FILE.claims) == 32
    for spec in FILE.claims:
        mine, theirs = verified.loc[spec.id], ledger.loc[spec.id]
        assert mine["verdict"] == theirs["verdict"], (spec.id, mine["reason"], theirs["reason"])
        assert mine["measured"] == theirs["measured"], spec.id
        read = MEASURES[REPORT_MEASURES[spec.id]](store)        # the same quantity, read from the results files
        assert _same(mine["value"], read.value), (spec.id, mine["value"], read.value)
        assert bool(mine["estimate"]) == read.estimate, spec.id


def test_the_committed_verify_output_is_current(verified):
    """reports/verify/hsgdet.verdicts.json (cited by the docs) holds what verify gives today."""
    rows = read_results(ROOT / "reports" / "verify" / "hsgdet.verdicts.json", "verify.verdicts")["rows"]
    assert [r["id"] for r in rows] == list(verified.index)
    for r in rows:
        assert (r["verdict"], r["measured"]) == tuple(verified.loc[r["id"], ["verdict", "measured"]]), r["id"]


def test_the_report_ledger_still_gives_the_committed_verdicts(store):
    """The ledger now built from the file reproduces the committed report's verdict table."""
    committed = read_results(ROOT / "reports" / "hsgdet-report.verdicts.json", "report.verdicts")["rows"]
    now = evaluate(store).to_dict(orient="records")
    assert [r["id"] for r in now] == [r["id"] for r in committed]
    for new, old in zip(now, committed):
        for column in ("verdict", "measured", "reason", "source", "device", "rule"):
            assert new[column] == old[column], (new["id"], column)


def _seed_values() -> dict[str, object]:
    """What hsgprof/claims/seed.py says for each claim of the file."""
    f, m, d = seed.SEED_FLOPS, seed.SEED_MEMORY, seed.SEED_DECODER
    out: dict[str, object] = {f"shape.{level}": (*s["hw"], s["channels"]) for level, s in seed.SEED_SHAPES.items()}
    for spec in FILE.claims:
        if spec.kind == "params" and spec.reference is None and spec.id != "params.decoder_formula":
            out[spec.id] = seed.SEED_COMPONENT_PARAMS[spec.component or "Total"]
    out.update({
        "params.decoder_formula": d["params"], "params.yolo_l_scale": 1.0,
        "flops.scaling": f["scaling_factor"], "flops.yolo_l_640": f["reference_gflops_640"] * 1e9,
        "flops.backbone": f["backbone_gflops"] * 1e9, "flops.token_attention": f["token_attention_ops"],
        "flops.decoder": f["decoder_ops"], "flops.total": f["total_gflops"] * 1e9,
        "share.global_flops": f["global_share_max"], "share.global_time": f["global_share_max"],
        "memory.fp16_params": m["fp16_params_bytes"], "memory.train_activations": m["train_activation_bytes"],
        "memory.inference_activations": m["inference_activation_bytes"], "memory.16gb": 1,
        "latency.near_yolo_l": 1.0})
    return out


def test_every_value_in_the_file_is_the_seeds():
    values = _seed_values()
    assert set(values) == {c.id for c in FILE.claims}
    for spec in FILE.claims:
        assert _same(spec.value, values[spec.id]), (spec.id, spec.value, values[spec.id])
        assert claim(spec.id).claimed == spec.value                    # the ledger reads the same file


def test_every_claim_names_a_seed_section_and_the_file_its_input():
    assert FILE.model.target == "hsgdet-l" and FILE.input == (1, 3, *seed.SEED_FLOPS["input_hw"])
    for c in LEDGER:
        assert c.section in seed.SEED_SECTIONS, (c.id, c.section)
    comps = {s.component for s in FILE.claims if s.kind == "params" and s.component and "." not in s.component}
    assert comps <= set(seed.SEED_COMPONENT_PARAMS)
    assert FILE.groups["global reasoning"] == GLOBAL_REASONING       # the seed's sense, as the adapter has it


def test_ledger_is_the_file_then_the_theory_claims():
    ids = [c.id for c in LEDGER]
    assert ids[:len(FILE.claims)] == [c.id for c in FILE.claims]
    theory = ids[len(FILE.claims):]
    assert {"theorem.entropy", "theorem.bound", "corollary.occlusion", "stability.no_quadratic_explosion",
            "convergence.faster_than_detr", "nms.optional", "dense.strong", "occlusion.strong"} <= set(theory)
    assert set(REPORT_MEASURES) == {c.id for c in FILE.claims}
    for c in LEDGER:
        assert c.measure in MEASURES, c.id
    with pytest.raises(KeyError, match="no claim 'nope'"):
        claim("nope")
