"""The fast record path (tap_segments.output) emits exactly what the SDK's record path emits.

Every test runs the same sync twice: with the tap's writer (fast path wherever it applies)
and with the SDK's own msgspec writer (which turns the fast path off: every record goes
through the SDK's deselection, conformance and stream maps). The messages must be equal,
``time_extracted`` aside. Other tests check that the fast path is really taken for CSV rows
and really left for stream maps, flattening, deselected columns, boolean columns, values
that conformance changes, ``post_process`` overrides and keys missing from the schema.
"""

from __future__ import annotations

import copy
import io
import json
import logging
import math
import re
import typing as t
from contextlib import redirect_stdout

import pytest
import requests_mock as rm
from singer_sdk.contrib.msgspec import MsgSpecWriter
from singer_sdk.singerlib.messages import StateMessage

from tap_segments.exports.readers import PlainRow
from tap_segments.output import FastRecordPlan, SampledCounter, TapMessageWriter
from tap_segments.tap import TapSegments
from tap_segments.vendors.indicative.streams import SegmentMembersStream

BASE = "https://query.indicative.test"
MEMBERS = "indicative_segment_members"
CONFIG = {
    "indicative_base_url": BASE,
    "indicative_api_key": "key",
    "indicative_access_token": "token",
    "export_poll_interval_seconds": 0.01,
    "export_poll_max_interval_seconds": 0.02,
    "max_concurrent_exports": 1,  # one export at a time: runs compared message by message
}
SEGMENTS = [
    {"segmentId": "seg-a", "name": "A", "lastRun": "2026-11-20T10:00:00.000Z"},
    {"segmentId": "seg-b", "name": "B", "lastRun": None},
]
CSV_FILES = {
    "seg-a": (
        'userId,email,note,active\r\nu1,a@x.io,"hello, world",true\r\n'
        'u2,b@x.io,"multi\nline ""quoted""",\r\nu3,,caf\u00e9 \u2603,0\r\n'
    ).encode(),
    "seg-b": b"userId,email,country\nu9,z@x.io,FR\n",
}


class SdkPathTap(TapSegments):
    """The same tap with the SDK's msgspec writer: the fast path never applies."""

    message_writer_class = MsgSpecWriter


@pytest.fixture
def files() -> dict[str, bytes]:
    return dict(CSV_FILES)


@pytest.fixture
def vendor(files: dict[str, bytes]) -> t.Iterator[rm.Mocker]:
    """Indicative whose exports complete on the first poll, with ``files`` as their files."""
    with rm.Mocker() as mocker:
        mocker.get(f"{BASE}/service/v1/segments/list", json=SEGMENTS)

        def trigger(request: t.Any, context: t.Any) -> dict:
            segment_id = request.json()["segmentId"]
            return {"exportId": f"exp-{segment_id}", "status": "PENDING"}

        def status(request: t.Any, context: t.Any) -> dict:
            export_id = request.path.rsplit("/", 1)[-1]
            return {
                "exportId": export_id,
                "status": "COMPLETE",
                "filename": f"https://bucket.s3.amazonaws.com/{export_id}.csv?X-Amz-Signature=s",
            }

        def file(request: t.Any, context: t.Any) -> bytes:
            return files[request.path.rsplit("/", 1)[-1].removeprefix("exp-").removesuffix(".csv")]

        mocker.post(f"{BASE}/service/v1/segments/export/", json=trigger)
        mocker.get(re.compile(rf"{BASE}/service/v1/segments/export/.+"), json=status)
        mocker.get(re.compile(r"https://bucket\.s3\.amazonaws\.com/.+"), content=file)
        yield mocker


def run(
    tap_class: type[TapSegments] = TapSegments,
    config: dict | None = None,
    catalog: dict | None = None,
) -> list[dict]:
    """Sync in-process into a binary stdout (as the CLI has) and parse every message."""
    return [json.loads(line) for line in run_bytes(tap_class, config, catalog).splitlines()]


def run_bytes(
    tap_class: type[TapSegments] = TapSegments,
    config: dict | None = None,
    catalog: dict | None = None,
) -> bytes:
    """Sync in-process into a binary stdout (as the CLI has): every byte it wrote."""
    raw = io.BytesIO()
    stdout = io.TextIOWrapper(raw, encoding="utf-8", write_through=True)
    tap = tap_class(config={**CONFIG, **(config or {})}, catalog=catalog)
    with redirect_stdout(stdout):
        try:
            tap.sync_all()
        finally:
            stdout.flush()
    return raw.getvalue()


def clock_blanked(output: bytes) -> bytes:
    """The output with its clock readings (``time_extracted``, ``started_at``, the stream
    version: a time) blanked."""
    output = re.sub(rb'"time_extracted":"[^"]+"', b'"time_extracted":"-"', output)
    output = re.sub(rb'"version": ?\d+', b'"version":0', output)
    return re.sub(rb'"started_at": ?"[^"]+"', b'"started_at":"-"', output)


def without_time(messages: list[dict]) -> list[dict]:
    """The messages without the clock: RECORD ``time_extracted``, job ``started_at``, the
    stream version (the time the stream's sync began: two runs may start in different
    seconds)."""
    result = []
    for message in messages:
        if "version" in message:
            assert isinstance(message["version"], int)
            message = {**message, "version": "-"}
        if message["type"] == "RECORD":
            assert re.fullmatch(
                r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", message["time_extracted"]
            )
            message = {k: v for k, v in message.items() if k != "time_extracted"}
        elif message["type"] == "STATE":
            text = re.sub(r'"started_at": "[^"]+"', '"started_at": "-"', json.dumps(message))
            message = json.loads(text)
        result.append(message)
    return result


def records(messages: list[dict], stream: str = MEMBERS) -> list[dict]:
    return [m["record"] for m in messages if m["type"] == "RECORD" and m["stream"] == stream]


@pytest.fixture
def fast_writes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Streams of the records written by the fast path (one entry per record)."""
    written: list[str] = []
    original = TapMessageWriter.write_record
    original_chunk = TapMessageWriter.write_record_chunk

    def spy(self: TapMessageWriter, stream: str, record: dict, version: int | None = None) -> None:
        written.append(stream)
        original(self, stream, record, version)

    def spy_chunk(self: TapMessageWriter, stream: str, chunk: t.Any, version: int | None) -> None:
        written.extend([stream] * len(chunk))
        chunks_written.append(len(chunk))
        original_chunk(self, stream, chunk, version)

    chunks_written: list[int] = []
    monkeypatch.setattr(TapMessageWriter, "write_record", spy)
    monkeypatch.setattr(TapMessageWriter, "write_record_chunk", spy_chunk)
    return written


def assert_same_as_sdk_path(config: dict | None = None, catalog: dict | None = None) -> list[dict]:
    fast = run(TapSegments, config, copy.deepcopy(catalog))
    slow = run(SdkPathTap, config, copy.deepcopy(catalog))
    assert without_time(fast) == without_time(slow)
    return fast


def catalog_with(change: t.Callable[[dict], None]) -> dict:
    """The discovered catalog, every stream selected, changed for the members stream."""
    catalog = TapSegments(config=CONFIG).catalog_dict
    for entry in catalog["streams"]:
        for item in entry["metadata"]:
            if item["breadcrumb"] == []:
                item["metadata"]["selected"] = True
        if entry["tap_stream_id"] == MEMBERS:
            change(entry)
    return catalog


# -- same output ------------------------------------------------------------------------


def test_csv_rows_take_the_fast_path_and_match_the_sdk_path(vendor, fast_writes):
    messages = assert_same_as_sdk_path()
    members = records(messages)
    assert len(members) == 4 == fast_writes.count(MEMBERS)
    first = members[0]
    assert first == {
        "userId": "u1",
        "email": "a@x.io",
        "note": "hello, world",
        "active": "true",
        "segmentId": "seg-a",
        "exportId": "exp-seg-a",
        "row_number": 1,
    }
    assert members[1]["note"] == 'multi\nline "quoted"'
    assert members[2]["note"] == "caf\u00e9 \u2603"


def test_state_follows_its_records(vendor):
    """An export leaves the state (is marked exported) only after its last record."""
    messages = run()
    for segment in ("seg-a", "seg-b"):
        last_record = max(
            i
            for i, m in enumerate(messages)
            if m["type"] == "RECORD"
            and m["stream"] == MEMBERS
            and m["record"]["segmentId"] == segment
        )
        exported = min(
            i
            for i, m in enumerate(messages)
            if m["type"] == "STATE"
            and segment
            in m["value"]["bookmarks"]["indicative_segment_exports"].get("segments_exported", {})
        )
        assert exported > last_record


def test_text_stdout_gets_the_same_messages(vendor):
    """``redirect_stdout(StringIO())`` (no binary buffer) still works, byte for byte."""
    buffer = io.StringIO()
    tap = TapSegments(config=CONFIG)
    with redirect_stdout(buffer):
        tap.sync_all()
    as_text = [json.loads(line) for line in buffer.getvalue().splitlines()]
    assert without_time(as_text) == without_time(run())


# -- falls back ---------------------------------------------------------------------------


def test_stream_maps_fall_back(vendor, fast_writes):
    config = {"stream_maps": {MEMBERS: {"email": "__NULL__", "user": "userId.upper()"}}}
    messages = assert_same_as_sdk_path(config)
    assert MEMBERS not in fast_writes
    assert records(messages)[0]["user"] == "U1"
    assert "email" not in records(messages)[0]


def test_flattening_falls_back(vendor, fast_writes):
    assert_same_as_sdk_path({"flattening_enabled": True, "flattening_max_depth": 1})
    assert MEMBERS not in fast_writes


def test_deselected_column_falls_back(vendor, fast_writes):
    def deselect_email(entry: dict) -> None:
        entry["schema"]["properties"]["email"] = {"type": ["string", "null"]}
        entry["metadata"].append(
            {"breadcrumb": ["properties", "email"], "metadata": {"selected": False}}
        )

    messages = assert_same_as_sdk_path(catalog=catalog_with(deselect_email))
    assert MEMBERS not in fast_writes
    assert all("email" not in r for r in records(messages))


def test_boolean_column_falls_back_for_values_conformance_changes(vendor, fast_writes):
    def boolean_active(entry: dict) -> None:
        entry["schema"]["properties"]["active"] = {"type": ["boolean", "null"]}

    messages = assert_same_as_sdk_path(catalog=catalog_with(boolean_active))
    # "true", "" and "0" all become True (the SDK's ``value != 0``); seg-b has no column
    assert [r.get("active") for r in records(messages)] == [True, True, True, None]
    assert fast_writes.count(MEMBERS) == 1  # only seg-b's row, which has no "active"


def test_key_missing_from_the_catalog_schema_falls_back(vendor, fast_writes, caplog):
    def drop_export_id(entry: dict) -> None:
        del entry["schema"]["properties"]["exportId"]
        entry["schema"]["required"].remove("exportId")
        entry["key_properties"] = ["segmentId", "row_number"]

    messages = assert_same_as_sdk_path(catalog=catalog_with(drop_export_id))
    assert MEMBERS not in fast_writes
    assert all("exportId" not in r for r in records(messages))


def test_json_values_that_conformance_changes_fall_back(vendor, files, fast_writes):
    files["seg-a"] = b'{"userId": "u1", "score": NaN}\n{"userId": "u2", "score": 1.5}\n'
    files["seg-b"] = b'[{"userId": "u9", "tags": ["a"], "ok": true}, {"userId": "u8"}]'
    messages = assert_same_as_sdk_path()
    members = records(messages)
    assert [m.get("score") for m in members] == [None, 1.5, None, None]
    # floats and lists go through the SDK; a JSON row of strings only may take the fast path
    assert fast_writes.count(MEMBERS) == 1


def test_post_process_override_falls_back_for_plain_rows(vendor, fast_writes, monkeypatch):
    import datetime as dt

    def post_process(self: t.Any, row: dict, context: t.Any = None) -> dict:
        row["seen"] = dt.datetime(2026, 11, 23, 12, 0, tzinfo=dt.timezone.utc)
        return row

    monkeypatch.setattr(SegmentMembersStream, "post_process", post_process, raising=False)
    monkeypatch.setitem(
        SegmentMembersStream.schema["properties"],
        "seen",
        {"type": ["string", "null"], "format": "date-time"},
    )
    messages = assert_same_as_sdk_path()
    assert records(messages)[0]["seen"] == "2026-11-23T12:00:00.000000+00:00"
    assert MEMBERS not in fast_writes


# -- the pieces -----------------------------------------------------------------------------


def test_plan_accepts_only_records_conformance_leaves_alone():
    writer = TapMessageWriter()
    plan = FastRecordPlan(writer, "s", frozenset({"a", "b", "flag"}), frozenset({"flag"}))
    assert plan.accepts({"a": "x", "b": 1})
    assert plan.accepts({"a": None, "flag": True})
    assert not plan.accepts({"a": "x", "c": "unknown key"})
    assert not plan.accepts({"a": 1.5})
    assert not plan.accepts({"a": math.nan})
    assert not plan.accepts({"a": {"nested": 1}})
    assert not plan.accepts({"flag": "yes"})  # the SDK would make it True
    assert not plan.accepts({"flag": 0})


def test_writer_flushes_on_state_and_keeps_order():
    raw = io.BytesIO()
    binary = io.BufferedWriter(raw, 1 << 16)
    stdout = io.TextIOWrapper(binary, encoding="utf-8")
    writer = TapMessageWriter()
    with redirect_stdout(stdout):
        writer.write_record("s", PlainRow(a="1"))
        assert raw.getvalue() == b""  # a RECORD alone stays buffered
        writer.write_message(StateMessage(value={"bookmarks": {}}))
        lines = raw.getvalue().splitlines()
    assert [json.loads(line)["type"] for line in lines] == ["RECORD", "STATE"]


def test_sampled_counter_counts_every_record_and_logs_the_sdk_metric(caplog):
    from singer_sdk import metrics

    counter = SampledCounter(metrics.Metric.RECORD_COUNT, {"stream": "s"}, log_interval=0)
    with caplog.at_level(logging.INFO, logger="singer_sdk.metrics"), counter:
        for _ in range(1000):
            counter.increment()
    logged = [
        json.loads(r.getMessage().split("METRIC: ", 1)[1])
        for r in caplog.records
        if "METRIC: " in r.getMessage()
    ]
    assert sum(p["value"] for p in logged) == 1000
    assert len(logged) >= 1000 // SampledCounter.clock_every


def test_record_counts_and_max_record_limit_still_apply(vendor, caplog):
    with caplog.at_level(logging.INFO, logger="singer_sdk.metrics"):
        run()
    counted = sum(
        point["value"]
        for record in caplog.records
        if "METRIC: " in record.getMessage()
        for point in [json.loads(record.getMessage().split("METRIC: ", 1)[1])]
        if point["metric"] == "record_count" and point["tags"].get("stream") == MEMBERS
    )
    assert counted == 4

    class LimitedMembers(SegmentMembersStream):
        ABORT_AT_RECORD_COUNT = 2

    class LimitedTap(TapSegments):
        def discover_streams(self) -> list:
            streams = super().discover_streams()
            return [
                LimitedMembers(tap=self, api=s.api) if s.name == MEMBERS else s for s in streams
            ]

    members = records(run(LimitedTap))
    assert [m["row_number"] for m in members if m["segmentId"] == "seg-a"] == [1, 2]


def test_record_versions_match_the_sdk_path(vendor, fast_writes, monkeypatch):
    # The members stream emits only what is new, so it never sends ACTIVATE_VERSION; here it
    # is made a snapshot stream to check the fast path writes versions as the SDK does.
    monkeypatch.setattr(SegmentMembersStream, "full_snapshot", True)
    messages = assert_same_as_sdk_path({"emit_activate_version_messages": True})
    versioned = [m for m in messages if m["type"] == "RECORD" and m["stream"] == MEMBERS]
    assert versioned and all(isinstance(m.get("version"), int) for m in versioned)
    assert fast_writes.count(MEMBERS) == 4
    assert_same_bytes_as_sdk_path({"emit_activate_version_messages": True})


@pytest.mark.parametrize("version", [None, 1700000000])
def test_write_record_bytes_equal_the_sdk_writers(version, monkeypatch):
    import datetime as dt

    from singer_sdk.singerlib.messages import RecordMessage

    from tap_segments import output

    moment = dt.datetime(2026, 11, 23, 12, 30, 1, 123456, tzinfo=dt.timezone.utc)
    monkeypatch.setattr(output, "_now", lambda tz: moment)
    record = PlainRow(a="x \u2603", b="", n=3, ok=True, none=None)
    raw = io.BytesIO()
    stdout = io.TextIOWrapper(raw, encoding="utf-8", write_through=True)
    with redirect_stdout(stdout):
        TapMessageWriter().write_record("s", record, version)
    expected = MsgSpecWriter().format_message(
        RecordMessage(stream="s", record=dict(record), version=version, time_extracted=moment)
    )
    assert raw.getvalue() == bytes(expected)


# -- records in chunks ----------------------------------------------------------------------


def many_rows(count: int) -> bytes:
    lines = [b"userId,email,note,active"]
    for i in range(count):
        note = b'"two\nlines, \xe2\x98\x83"' if i % 7 == 0 else b'say ""hi""' if i % 5 else b""
        lines.append(b"u%d,u%d@x.io,%s,%d" % (i, i, note, i % 2))
    return b"\r\n".join(lines) + b"\r\n"


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Chunks of a few rows, so that a file makes many and STATEs and limits cut them."""
    from tap_segments.exports import readers

    monkeypatch.setattr(readers, "FIRST_CHUNK_ROWS", 3)
    monkeypatch.setattr(readers, "CHUNK_ROWS", 11)


def assert_same_bytes_as_sdk_path(config: dict | None = None, tap_class: type = TapSegments):
    class SdkPath(tap_class):  # type: ignore[misc,valid-type]
        message_writer_class = MsgSpecWriter

    fast = run_bytes(tap_class, config)
    assert clock_blanked(fast) == clock_blanked(run_bytes(SdkPath, config))
    return [json.loads(line) for line in fast.splitlines()]


def test_chunks_write_the_same_bytes_as_the_sdk_path(vendor, files, fast_writes, small_chunks):
    files["seg-a"] = many_rows(250)
    messages = assert_same_bytes_as_sdk_path()
    members = records(messages)
    assert [m["row_number"] for m in members if m["segmentId"] == "seg-a"] == list(range(1, 251))
    assert fast_writes.count(MEMBERS) == 251


def test_chunks_keep_the_periodic_state_where_the_sdk_puts_it(
    vendor, files, fast_writes, small_chunks, monkeypatch
):
    """A STATE after every STATE_MSG_FREQUENCY-th record, chunks cut there."""
    monkeypatch.setattr(SegmentMembersStream, "STATE_MSG_FREQUENCY", 7)
    files["seg-a"] = many_rows(100)
    messages = assert_same_bytes_as_sdk_path()
    kinds = [m["type"] for m in messages if m["type"] in ("RECORD", "STATE")]
    first_records = kinds[kinds.index("RECORD") :][:8]
    assert first_records == ["RECORD"] * 7 + ["STATE"]
    assert fast_writes.count(MEMBERS) == 101


def test_chunks_stop_at_the_record_limit_as_the_sdk_does(vendor, files, small_chunks):
    files["seg-a"] = many_rows(100)

    class LimitedMembers(SegmentMembersStream):
        ABORT_AT_RECORD_COUNT = 23

    class LimitedTap(TapSegments):
        def discover_streams(self) -> list:
            streams = super().discover_streams()
            return [
                LimitedMembers(tap=self, api=s.api) if s.name == MEMBERS else s for s in streams
            ]

    members = records(assert_same_bytes_as_sdk_path(tap_class=LimitedTap))
    assert [m["row_number"] for m in members if m["segmentId"] == "seg-a"] == list(range(1, 24))


def test_a_bad_row_ends_the_run_after_the_same_records_as_the_sdk_path(vendor, files, small_chunks):
    files["seg-a"] = many_rows(40) + b"only-one-value\r\n" + many_rows(5)

    def output(tap_class: type[TapSegments]) -> bytes:
        raw = io.BytesIO()
        stdout = io.TextIOWrapper(raw, encoding="utf-8", write_through=True)
        with redirect_stdout(stdout), pytest.raises(Exception, match=r"1 values for the 4"):
            tap_class(config=CONFIG).sync_all()
        return raw.getvalue()

    def through_last_record(output: bytes) -> bytes:
        # What follows depends on timing: whether the other export's trigger went out
        # before the run stopped (then a STATE records it).
        return output[: output.rindex(b'{"type":"RECORD"')]

    fast = output(TapSegments)
    assert through_last_record(clock_blanked(fast)) == through_last_record(
        clock_blanked(output(SdkPathTap))
    )
    emitted = records([json.loads(line) for line in fast.splitlines()])
    assert len([m for m in emitted if m["segmentId"] == "seg-a"]) == 40


def test_a_column_named_like_a_tap_field_is_kept_in_chunks(vendor, files, fast_writes):
    files["seg-a"] = b"userId,row_number,segmentId\nu1,7,x\nu2,8,y\n"
    members = records(assert_same_bytes_as_sdk_path())
    assert members[0] == {
        "userId": "u1",
        "_row_number": "7",
        "_segmentId": "x",
        "segmentId": "seg-a",
        "exportId": "exp-seg-a",
        "row_number": 1,
    }
    assert fast_writes.count(MEMBERS) == 3
