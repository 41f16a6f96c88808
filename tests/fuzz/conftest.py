"""Hypothesis settings for the fuzz suites: reproducible, no deadline, no example database.

Every ``@given`` test here runs ``derandomize=True``: the same examples on every machine
and every run, so a CI failure can be replayed locally. Raise the counts for a long run
with ``TSUR_FUZZ_EXAMPLES`` (a factor; see :func:`tests.fuzz.examples`).
"""

from __future__ import annotations

from hypothesis import HealthCheck, settings

settings.register_profile(
    "tsur-fuzz",
    deadline=None,
    derandomize=True,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                           HealthCheck.function_scoped_fixture],
)
settings.load_profile("tsur-fuzz")
