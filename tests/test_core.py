"""The Singer SDK's standard tap test suite, run against the vendor simulator.

The suite needs its config when the class is built, so the simulator starts when this module
is imported and stops when the test session ends.
"""

from __future__ import annotations

import atexit
import datetime as dt

from singer_sdk.testing import SuiteConfig, get_tap_test_class

from simulator import SimConfig, Simulator
from tap_segments.tap import TapSegments

SIMULATOR = Simulator(SimConfig(seed=11))
SIMULATOR.start()
atexit.register(SIMULATOR.stop)

CONFIG = {
    **SIMULATOR.tap_config(),
    # A few days back, whatever today is: the simulator's data is relative to its day too.
    "start_date": (dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=3)).date().isoformat(),
    "export_poll_interval_seconds": 0.05,
    "export_poll_max_interval_seconds": 0.2,
}

TestTapSegments = get_tap_test_class(
    tap_class=TapSegments,
    config=CONFIG,
    suite_config=SuiteConfig(max_records_limit=None),
)
