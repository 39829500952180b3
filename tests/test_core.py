"""The Singer SDK's standard tap test suite, run against the vendor simulator.

The suite needs its config when the class is built, so the simulator starts when this module
is imported and stops when the test session ends.
"""

from __future__ import annotations

import atexit

from singer_sdk.testing import SuiteConfig, get_tap_test_class

from simulator import SimConfig, Simulator
from tap_segments.tap import TapSegments

SIMULATOR = Simulator(SimConfig(seed=11))
SIMULATOR.start()
atexit.register(SIMULATOR.stop)

CONFIG = {
    **SIMULATOR.tap_config(),
    "start_date": "2026-11-01T00:00:00Z",
    "export_poll_interval_seconds": 0.05,
    "export_poll_max_interval_seconds": 0.2,
}

TestTapSegments = get_tap_test_class(
    tap_class=TapSegments,
    config=CONFIG,
    suite_config=SuiteConfig(max_records_limit=None),
)
