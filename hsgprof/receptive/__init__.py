"""Receptive fields of any model's outputs: exact theoretical fields and measured effective fields.

See :mod:`hsgprof.receptive.theoretical` (how the exact field is computed) and
:mod:`hsgprof.receptive.effective` (the declared definition of the effective field).
"""

from hsgprof.receptive.api import DEFAULT_SHARE, FieldsResult, LevelField, fields, output_levels, receptive_fields

__all__ = ["DEFAULT_SHARE", "FieldsResult", "LevelField", "fields", "output_levels", "receptive_fields"]
