"""Mutual-information and entropy estimators, validated on distributions with known answers.

>>> from hsgprof.info import mi, cmi, entropy
>>> r = mi(x, y, method="ksg1", ci=True, test=True, seed=0)
>>> r.value, r.ci, r.p_value, r.to("bits").value

Methods (see :data:`METHODS` and docs/info.md): ``ksg1``, ``ksg2``, ``ksg_gc`` (high-MI
corrected), ``fp``, ``fp_gc``, ``mixed``, ``kl``, ``gaussian``, ``copula``, ``plugin``,
``miller_madow``, ``infonce``, ``nwj``, ``probe``.
"""

from hsgprof.info.api import CI_METHODS, METHODS, TESTS, cmi, entropy, methods_for, mi
from hsgprof.info.result import InfoResult

__all__ = ["mi", "cmi", "entropy", "InfoResult", "METHODS", "CI_METHODS", "TESTS", "methods_for"]
