"""The readings matrix: one reading's rows shown to the ledger's measures; GPU results only for their config."""

import pandas as pd

from hsgprof.claims.matrix import ReadingView, headline, matrix_claims
from hsgprof.claims.measures import MEASURES
from hsgprof.claims.readings import READINGS, measured_label, measured_on
from hsgprof.claims.rules import NOT_MEASURED, REFUTED, SUPPORTED
from hsgprof.report.build import MEASUREMENTS
from hsgprof.report.store import ResultsStore


def test_headline_wording():
    s = pd.Series({"a": REFUTED, "b": REFUTED})
    assert headline(s) == "refuted under every reading"
    assert headline(pd.Series({"a": SUPPORTED, "b": SUPPORTED})) == "holds under every reading"
    assert headline(pd.Series({"a": SUPPORTED, "b": REFUTED, "c": NOT_MEASURED})) == \
        f"holds under a; refuted under b; {NOT_MEASURED} under c"


def test_matrix_covers_params_flops_and_memory_claims():
    ids = {c.id for c in matrix_claims()}
    assert {"params.total", "flops.total", "params.pan", "memory.16gb", "memory.train_activations"} <= ids
    assert not any(i.startswith(("latency.", "shape.", "theorem.")) for i in ids)


def _store_with_estimates() -> ResultsStore:
    store = ResultsStore()
    store.add_measurements(MEASUREMENTS)
    rows = [{"reading": name, "target": r.preset, "mode": "train", "precision": "fp16-amp", "batch": 1,
             "saved_bytes": 1.3e9} for name, r in READINGS.items()]
    store.cpu["readings.memory_estimates"] = {"kind": "readings.memory_estimates", "rows": rows, "meta": {},
                                              "provenance": {"device": {"cpu": "test"}}}
    return store


def test_gpu_results_are_used_only_for_the_config_they_measured():
    store = _store_with_estimates()
    doc = store.get("memory-cuda", prefer_gpu=True)
    assert doc is not None, "the committed GPU folder is expected under reports/measurements"
    # measured before issue 15, when hsgdet-l was the v8 chassis
    assert measured_label(doc, "hsgdet-l") == "hsgdet-l-v8"
    assert measured_on(doc, "hsgdet-l", "hsgdet-l-v8") and not measured_on(doc, "hsgdet-l", "hsgdet-l-v5")
    v8 = MEASURES["train_activation_bytes"](ReadingView(store, READINGS["hsgdet-l-v8"]))
    v5 = MEASURES["train_activation_bytes"](ReadingView(store, READINGS["hsgdet-l-v5"]))
    assert "validated on the GPU" in v8.note
    assert "not measured on a GPU" in v5.note
    # the main store's subject is today's hsgdet-l: the old hsgdet-l GPU max batch is not its measurement
    assert MEASURES["max_batch_16gb_train"](store) is None or \
        "not measured on a GPU" in MEASURES["max_batch_16gb_train"](store).device


def test_view_shows_only_its_reading_rows():
    store = _store_with_estimates()
    view = ReadingView(store, READINGS["hsgdet-m-v5"])
    doc = view.get("memory.hsgdet.estimates")
    assert [r["reading"] for r in doc["rows"]] == ["hsgdet-m-v5"]
    assert view.get("count.components") is None                       # nothing written for it here
    assert view.subject == "hsgdet-m-v5" and view.yolo_l == "yolov5l-ref"


def test_matrix_figure_is_a_figure_with_one_cell_per_claim_and_reading():
    from hsgprof.claims.matrix import matrix_figure

    m = pd.DataFrame([{"claim": c, "reading": r, "verdict": v, "measured": "1M", "primary": r == "b"}
                      for c in ("params.total", "flops.total") for r, v in (("a", SUPPORTED), ("b", REFUTED))])
    fig = matrix_figure(m)
    assert len(fig.axes[0].patches) == 4
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["a", "b\n(primary)"]
