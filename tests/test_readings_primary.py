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


def test_a_config_field_added_later_keeps_old_fingerprints():
    """A field HSGDetConfig gains later is hashed only when set away from its default, so the GPU results
    of every model that already existed stay attributed to it; every field of today's config is hashed."""
    import dataclasses

    from hsgdet import HSGDetConfig, get_config
    from hsgprof.adapters.hsgdet import FINGERPRINTED_FIELDS, fingerprint_fields

    today = {f.name for f in dataclasses.fields(HSGDetConfig)} - {"name"}
    cfg = get_config("hsgdet-l").to_dict()
    defaults = {f.name: f.default for f in dataclasses.fields(HSGDetConfig)}
    later = {**defaults, "new_knob": 3}
    assert fingerprint_fields({**cfg, "new_knob": 3}, later) == fingerprint_fields(cfg, defaults)
    assert fingerprint_fields({**cfg, "new_knob": 4}, later)["new_knob"] == 4
    hashed = set(fingerprint_fields(cfg, defaults))
    assert "name" not in hashed and today & FINGERPRINTED_FIELDS <= hashed
