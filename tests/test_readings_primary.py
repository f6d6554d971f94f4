"""hsgdet-l is the primary reading: the declared rule, applied to live counts, picks the preset it aliases."""

from hsgdet.config import CHASSIS, PRESETS, PRIMARY
from hsgprof.adapters.hsgdet import config_fingerprint
from hsgprof.claims.readings import READINGS, choose_primary, premise_scores, reading_facts


def test_hsgdet_l_aliases_the_rules_winner():
    scores = {name: premise_scores(reading_facts(r)) for name, r in READINGS.items()}
    assert choose_primary(scores) == PRIMARY
    assert PRESETS["hsgdet-l"] == CHASSIS[PRIMARY]
    assert config_fingerprint("hsgdet-l") == config_fingerprint(PRIMARY)
    assert config_fingerprint("hsgdet-l-grid") == config_fingerprint(PRIMARY, variant="grid-only")
    assert config_fingerprint("hsgdet-l") != config_fingerprint("hsgdet-l-v8" if PRIMARY != "hsgdet-l-v8"
                                                                 else "hsgdet-l-v5")
