"""Move this Python process's clock to ``TAP_SEGMENTS_TEST_DATE`` (tests only).

The test suite's clock fixture: ``tests/conftest.py`` puts this folder on the ``PYTHONPATH``
of every CLI run when ``TAP_SEGMENTS_TEST_DATE`` is set (for example ``2027-08-14``), so the
tap, like the test process itself, runs on that date with its clock ticking from there
(``time-machine`` moves the wall clock only: monotonic time and timeouts are untouched).
"""

import os

_date = os.environ.get("TAP_SEGMENTS_TEST_DATE")
if _date:
    import time_machine

    time_machine.travel(_date, tick=True).start()
