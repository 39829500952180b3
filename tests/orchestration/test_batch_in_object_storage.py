"""BATCH files in S3-like object storage: the tap writes them under an ``s3://`` root (the
SDK's fsspec storage, s3fs) to moto's S3 server on 127.0.0.1, and every row is in them.

Reached as a real deployment reaches S3: ``AWS_ENDPOINT_URL`` and the standard credential
variables, nothing in the tap's config but ``batch_config``.
"""

from __future__ import annotations

import gzip
import json
import socket
import subprocess
import sys
import time
import typing as t

import boto3
import pytest
from singer_output import run_in_process

from simulator import SimConfig, Simulator

BUCKET = "tap-segments-batches"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> t.Iterator[t.Any]:
    """moto's S3 server on a free loopback port, with one bucket; stopped after the test."""
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    for name, value in {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "moto-key",
        "AWS_SECRET_ACCESS_KEY": "moto-secret",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    client = boto3.client("s3", endpoint_url=endpoint)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                client.create_bucket(Bucket=BUCKET)
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        yield client
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_batch_files_under_an_s3_root_hold_every_row(s3, tmp_path):
    with Simulator(SimConfig(seed=3)) as sim:
        config = {k: v for k, v in sim.tap_config().items() if k.startswith("indicative")}
        config |= {
            "export_poll_interval_seconds": 0.02,
            "export_poll_max_interval_seconds": 0.05,
            "batch_config": {
                "encoding": {"format": "jsonl", "compression": "gzip"},
                "storage": {"root": f"s3://{BUCKET}/batches/indicative"},
            },
        }
        out = run_in_process(config)
        truth = sim.truth()

    assert not out.records, "with batch_config, rows travel in files, not RECORD messages"
    batches = [m for m in out.messages if m["type"] == "BATCH"]
    rows: dict[str, int] = {}
    for batch in batches:
        for url in batch["manifest"]:
            assert url.startswith(f"s3://{BUCKET}/batches/indicative/"), url
            key = url.removeprefix(f"s3://{BUCKET}/")
            body = gzip.decompress(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())
            records = [json.loads(line) for line in body.splitlines()]
            rows[batch["stream"]] = rows.get(batch["stream"], 0) + len(records)
    assert rows == {s: n for s, n in truth.items() if s.startswith("indicative")}
    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix="batches/indicative/")["KeyCount"]
    assert listed == sum(len(b["manifest"]) for b in batches)
