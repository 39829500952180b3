"""Credentials reach only each vendor's API origin; result files come from S3-like storage.

Checked at the far side of the wire: the simulated storage records every request's headers
(``sim.storage.credential_leaks()``), and each vendor's API what it was sent. The tap's
output is checked for every form a credential can take (raw, URL-encoded, base64, the Basic
pair, ``Token token=``, ``Bearer``), including when a vendor echoes the request's headers.
"""

from __future__ import annotations

import base64
import os
import sys
from pathlib import Path

import pytest
import requests
import requests_mock as rm
from singer_output import run_cli

from simulator import SimConfig, Simulator
from simulator.artisan import ArtisanConfig
from simulator.indicative import IndicativeConfig
from simulator.kissmetrics import KissmetricsConfig
from simulator.s3 import MotoS3
from simulator.storage import StorageConfig, secret_forms
from tap_segments.errors import RedirectError
from tap_segments.http import ApiScope, HeaderAuthenticator, HttpClient, is_presigned
from tap_segments.settings import CommonSettings

pytestmark = pytest.mark.e2e

SMALL = dict(
    indicative=IndicativeConfig(segments=3, rows_per_segment=40),
    artisan=ArtisanConfig(apps=1, segments_per_app=3, members_per_segment=15),
    kissmetrics=KissmetricsConfig(reports=1, max_rows_per_window=20),
)


def settings(sim: Simulator, **extra) -> dict:
    return {
        **sim.tap_config(),
        "export_poll_interval_seconds": 0.1,
        "export_poll_max_interval_seconds": 0.2,
        **extra,
    }


def assert_no_credential_in(text: str, sim: Simulator) -> None:
    for form, what in secret_forms(sim.credentials()).items():
        assert form not in text, f"{what} printed"


def test_full_sync_loads_exactly_with_no_credential_at_storage(tmp_path):
    with Simulator(SimConfig(seed=21, **SMALL)) as sim:
        out = run_cli(tmp_path, settings(sim))
        truth = sim.truth()
        assert out.returncode == 0, out.stderr[-2000:]
        assert {s: out.count(s) for s in truth} == truth
        storage = sim.storage.requests
        assert {r.path.split("/")[1] for r in storage} == {"upload-bucket", "artisan-exports"}
        assert sim.storage.credential_leaks() == []
        # Positive control: the same run did send every vendor its credentials.
        api = [e for e in sim.requests if e.status == 200]
        assert {e.vendor for e in api} == {"indicative", "artisan", "kissmetrics", "acoustic"}
    assert_no_credential_in(out.stdout + out.stderr, sim)


@pytest.mark.parametrize("redirect", ["same", "other"])
def test_files_behind_a_redirect_load_without_credentials(redirect, tmp_path):
    config = SimConfig(seed=22, **SMALL, storage=StorageConfig(redirect=redirect))
    with Simulator(config) as sim:
        out = run_cli(tmp_path, settings(sim, vendors=["indicative", "artisan"]))
        assert out.returncode == 0, out.stderr[-2000:]
        assert out.count("indicative_segment_members") == sim.truth()["indicative_segment_members"]
        assert out.count("artisan_segment_members") == sim.truth()["artisan_segment_members"]
        redirects = [r for r in sim.storage.requests if r.status in (302, 307)]
        assert redirects, "the storage did not redirect"
        assert sim.storage.credential_leaks() == []


def test_redirect_loop_is_one_line_naming_the_file(tmp_path):
    config = SimConfig(seed=23, **SMALL, storage=StorageConfig(redirect="loop"))
    with Simulator(config) as sim:
        out = run_cli(tmp_path, settings(sim, vendors=["indicative"]))
        assert sim.storage.credential_leaks() == []
    assert out.returncode == 1
    last = out.stderr.strip().splitlines()[-1]
    assert "Indicative" in last and "redirects in a loop" in last, last
    assert "Traceback" not in out.stderr


@pytest.mark.parametrize("kind", ["proxy_page", "xml_error"])
def test_an_error_page_served_with_200_is_never_loaded_as_rows(kind, tmp_path):
    with Simulator(SimConfig(seed=24, **SMALL)) as sim:
        sim.faults.add(kind, vendor="indicative", path="^/files/", times=50)
        out = run_cli(tmp_path, settings(sim, vendors=["indicative"]))
    assert out.returncode == 1
    last = out.stderr.strip().splitlines()[-1]
    assert "Indicative export" in last and "HTML/XML page" in last, last
    assert out.count("indicative_segment_members") == 0
    assert "Traceback" not in out.stderr


def test_a_vendor_echoing_the_request_headers_shows_no_credential(tmp_path):
    with Simulator(SimConfig(seed=25, **SMALL)) as sim:
        pair = base64.b64encode(b"sim-indicative-key:sim-indicative-token-secret").decode()
        echo = (
            f'{{"error": "bad request", "headers": {{"Authorization": "Basic {pair}"}}, '
            '"also": "Token token=\\"sim-artisan-secret-key\\" '
            'Bearer sim-kissmetrics-token-secret"}'
        )
        sim.faults.add("status", vendor="indicative", path="/segments/list", status=400, body=echo)
        out = run_cli(tmp_path, settings(sim, vendors=["indicative"]))
    assert out.returncode == 1
    last = out.stderr.strip().splitlines()[-1]
    assert "400" in last and 'Authorization": "***' in last and "Token token=***" in last, last
    assert_no_credential_in(out.stdout + out.stderr, sim)


def test_s3_uri_files_are_read_with_the_aws_chain_from_moto(tmp_path, monkeypatch):
    with MotoS3() as s3:
        indicative = IndicativeConfig(
            segments=3, rows_per_segment=40, filename_style="s3", s3_endpoint_url=s3.endpoint_url
        )
        with Simulator(SimConfig(seed=26, indicative=indicative)) as sim:
            config = settings(sim, vendors=["indicative"], s3_endpoint_url=s3.endpoint_url)
            env = {"AWS_ACCESS_KEY_ID": "reader", "AWS_SECRET_ACCESS_KEY": "reader-secret"}
            for name, value in {**env, "AWS_DEFAULT_REGION": "us-east-1"}.items():
                monkeypatch.setenv(name, value)
            out = run_cli(tmp_path, config)
            assert out.returncode == 0, out.stderr[-2000:]
            assert out.count("indicative_segment_members") == 120
            files = {r["filename"] for r in out.records["indicative_segment_exports"]}
            assert all(f.startswith("s3://upload-bucket/") for f in files)


def test_s3_uri_without_credentials_is_one_line_naming_export_uri_and_fix(tmp_path, monkeypatch):
    with MotoS3() as s3:
        indicative = IndicativeConfig(
            segments=1, rows_per_segment=5, filename_style="s3", s3_endpoint_url=s3.endpoint_url
        )
        with Simulator(SimConfig(seed=27, indicative=indicative)) as sim:
            for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE"):
                monkeypatch.delenv(name, raising=False)
            monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
            monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
            monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
            config = settings(sim, vendors=["indicative"], s3_endpoint_url=s3.endpoint_url)
            out = run_cli(tmp_path, config)
    assert out.returncode == 1
    last = out.stderr.strip().splitlines()[-1]
    assert "Indicative export" in last and "s3://upload-bucket/" in last, last
    assert "AWS_ACCESS_KEY_ID" in last and "expired" not in last and "base URL" not in last


def test_s3_uri_without_the_extra_says_what_to_install(tmp_path):
    blocker = tmp_path / "no-boto3"
    (blocker / "boto3").mkdir(parents=True)
    (blocker / "boto3" / "__init__.py").write_text("raise ImportError('No module named boto3')\n")
    with MotoS3() as s3:
        indicative = IndicativeConfig(
            segments=1, rows_per_segment=5, filename_style="s3", s3_endpoint_url=s3.endpoint_url
        )
        with Simulator(SimConfig(seed=28, indicative=indicative)) as sim:
            repo = Path(__file__).resolve().parents[1]
            path = os.pathsep.join([str(blocker), str(repo)])
            out = run_cli(tmp_path, settings(sim, vendors=["indicative"]), env={"PYTHONPATH": path})
    assert out.returncode == 1
    last = out.stderr.strip().splitlines()[-1]
    assert "s3://upload-bucket/" in last and "pip install 'tap-segments[s3]'" in last, last


# -- the scope rule, on its own -------------------------------------------------------------


def test_scope_is_the_base_urls_origin_and_path_and_never_a_presigned_url():
    scope = ApiScope("https://api.vendor.test/v1", "https://query.vendor.test")
    assert scope.covers("https://api.vendor.test/v1/jobs")
    assert scope.covers("https://API.vendor.test:443/v1/jobs?x=1")
    assert not scope.covers("https://api.vendor.test/v10/jobs")  # not under the path
    assert not scope.covers("http://api.vendor.test/v1/jobs")  # another scheme
    assert not scope.covers("https://api.vendor.test:8443/v1/jobs")  # another port
    assert not scope.covers("https://bucket.s3.amazonaws.com/v1/file.csv")
    assert scope.covers("https://query.vendor.test/anything")
    for signature in ("X-Amz-Signature=a", "X-Amz-Credential=a", "Signature=a", "sig=a"):
        url = f"https://api.vendor.test/v1/files/x.csv?{signature}"
        assert is_presigned(url) and not scope.covers(url)


def client(base: str) -> HttpClient:
    return HttpClient(
        vendor_label="Vendor",
        credential_settings=("vendor_key",),
        base_url_setting="vendor_base_url",
        authenticator=HeaderAuthenticator({"Authorization": 'Token token="s3cr3t-value"'}),
        scope=ApiScope(base),
        settings=CommonSettings.from_config({"http_max_tries": 1}),
        logger=__import__("logging").getLogger("test"),
    )


def test_an_api_call_redirected_to_another_origin_stops_naming_the_setting():
    with rm.Mocker() as mocker:
        mocker.get(
            "https://api.vendor.test/list",
            status_code=302,
            headers={"Location": "https://elsewhere.test/list"},
        )
        mocker.get("https://elsewhere.test/list", json=[])
        with pytest.raises(RedirectError, match="vendor_base_url"):
            client("https://api.vendor.test").request(
                "GET", "https://api.vendor.test/list", endpoint="/list"
            )
        assert all(r.hostname != "elsewhere.test" for r in mocker.request_history)


def test_a_download_redirected_elsewhere_goes_there_without_credentials():
    with rm.Mocker() as mocker:
        mocker.get(
            "https://api.vendor.test/files/a.csv",
            status_code=307,
            headers={"Location": "https://cdn.test/a.csv?sig=abc"},
        )
        mocker.get("https://cdn.test/a.csv", text="a\n1\n")
        response = client("https://api.vendor.test").request(
            "GET", "https://api.vendor.test/files/a.csv", endpoint="/files", api_call=False
        )
        assert response.text == "a\n1\n"
        first, second = mocker.request_history
        assert first.headers["Authorization"] == 'Token token="s3cr3t-value"'
        assert "Authorization" not in second.headers


def test_no_session_wide_credentials():
    session = client("https://api.vendor.test").session
    assert session.auth is None
    assert not any(k.lower() in ("authorization", "public-api-key") for k in session.headers)
    assert isinstance(session, requests.Session) and sys.modules["tap_segments.http"]
