"""Property-based fuzzing (hypothesis): a bounded number of examples in the test suite.

``HYPOTHESIS_PROFILE=soak`` (used by ``bench/fuzz.py``) runs many more. No example
database is written: a failure prints the example to reproduce it.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

_COMMON = {
    "deadline": None,  # shared CI machines: timing noise is not a failure
    "database": None,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    "derandomize": True,  # the suite is deterministic; the soak profile explores
}
settings.register_profile("suite", max_examples=40, **_COMMON)
settings.register_profile(
    "soak",
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "2000")),
    **{**_COMMON, "derandomize": False},
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "suite"))
