"""The demo's summary counts exports triggered, resumed and skipped as the run did them."""

from __future__ import annotations

import sys

import pytest
from singer_output import REPO, kill_when, run_cli

from simulator import SimConfig, Simulator
from simulator.indicative import IndicativeConfig

sys.path.insert(0, str(REPO / "scripts"))
from demo_summary import count_exports, rows_lines

pytestmark = pytest.mark.e2e


def indicative_only(sim: Simulator) -> dict:
    config = {k: v for k, v in sim.tap_config().items() if k.startswith("indicative")}
    return {**config, "export_poll_interval_seconds": 0.02}


class Run:
    """What the simulator saw from here on: its requests and Indicative's trigger counts."""

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        self.requests_before = len(sim.requests)
        self.triggers_before = sim.indicative.trigger_counts()

    def exports(self, log: str):  # type: ignore[no-untyped-def]
        requests = [entry.to_dict() for entry in self.sim.requests[self.requests_before :]]
        triggers = {
            segment: count - self.triggers_before.get(segment, 0)
            for segment, count in self.sim.indicative.trigger_counts().items()
        }
        return count_exports(requests, triggers, log)


def test_triggered_then_skipped_when_nothing_changed(tmp_path):
    with Simulator(SimConfig(seed=3, indicative=IndicativeConfig(segments=3))) as sim:
        run = Run(sim)
        first = run_cli(tmp_path, indicative_only(sim))
        assert first.returncode == 0, first.stderr[-2000:]
        exports = run.exports(first.stderr)
        assert (dict(exports.triggered), exports.resumed, exports.skipped) == (
            {"indicative": 3},
            0,
            0,
        )

        sim.indicative.touch(sim.indicative.segments[0]["segmentId"])
        run = Run(sim)
        second = run_cli(tmp_path, indicative_only(sim), first.last_state)
        assert second.returncode == 0, second.stderr[-2000:]
        exports = run.exports(second.stderr)
    assert (dict(exports.triggered), exports.resumed, exports.skipped) == ({"indicative": 1}, 0, 2)
    assert exports.line().startswith("exports: 1 triggered (indicative 1), 0 resumed from state")


def test_resumed_exports_are_counted_from_the_tap_log(tmp_path):
    config = IndicativeConfig(segments=2, polls_to_complete=40)
    with Simulator(SimConfig(seed=4, indicative=config)) as sim:

        def both_in_flight(state: dict) -> bool:
            exports = state["bookmarks"].get("indicative_segment_exports", {})
            return len(exports.get("exports_in_flight", {})) == 2

        state = kill_when(tmp_path, indicative_only(sim), both_in_flight)
        sim.indicative.polls_to_complete = 2
        run = Run(sim)
        resumed = run_cli(tmp_path, indicative_only(sim), state)
        assert resumed.returncode == 0, resumed.stderr[-2000:]
        exports = run.exports(resumed.stderr)
    assert (sum(exports.triggered.values()), exports.resumed) == (0, 2)


def test_rows_verdict_names_the_tables_that_differ():
    lines, exact = rows_lines({"a": 3, "b": 1}, {"a": 3, "b": 2, "c": 5})
    assert not exact
    assert lines[-1] == "rows: 2 table(s) differ from the simulator: b, c"
    lines, exact = rows_lines({"a": 3, "b": 2_000}, {"a": 3, "b": 2_000})
    assert exact
    assert lines[-1] == "rows: all 2 tables exact (2,003 rows, as served)"
