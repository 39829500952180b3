"""Bad settings end with one clear line; secrets never appear in output, logs or URLs."""

from __future__ import annotations

import pytest
from singer_output import run_cli

from simulator import SimConfig, Simulator
from tap_segments.tap import TapSegments

INDICATIVE = {
    "indicative_api_key": "bad-settings-key",
    "indicative_access_token": "bad-settings-token",
}


def clear_failure(out, *words: str) -> None:
    assert out.returncode == 1
    assert "Traceback" not in out.stderr, out.stderr[-2000:]
    errors = [line for line in out.stderr.splitlines() if "| ERROR" in line]
    assert errors, out.stderr[-2000:]
    assert any(all(w in line for w in words) for line in errors), errors


@pytest.mark.parametrize(
    ("setting", "value", "words"),
    [
        (
            "max_concurrent_exports",
            "four",
            ("'four' is not of type 'integer'", "max_concurrent_exports"),
        ),
        ("export_timeout_seconds", -5, ("-5 is less than", "export_timeout_seconds")),
        ("http_max_tries", 0, ("0 is less than the minimum of 1", "http_max_tries")),
        (
            "acoustic_job_categories",
            ["SEGMENT_EXPRT"],
            ("'SEGMENT_EXPRT' is not one of", "acoustic_job_categories"),
        ),
        ("start_date", "yesterday-ish", ("start_date 'yesterday-ish' is not an ISO-8601",)),
    ],
)
def test_bad_setting_is_one_clear_line(setting, value, words, tmp_path):
    out = run_cli(tmp_path, {**INDICATIVE, setting: value})
    clear_failure(out, *words)


def test_no_vendor_configured_names_the_settings_to_set(tmp_path):
    out = run_cli(tmp_path, {"start_date": "2026-01-01T00:00:00Z"})
    clear_failure(out, "No vendor is configured", "indicative_api_key", "acoustic_auth_key")


def test_unreachable_base_url_is_one_line_naming_vendor_and_url(tmp_path):
    config = {**INDICATIVE, "indicative_base_url": "http://127.0.0.1:9", "http_max_tries": 2}
    config["http_retry_base_seconds"] = 0.01
    out = run_cli(tmp_path, config)
    clear_failure(
        out, "Indicative", "http://127.0.0.1:9/service/v1/segments/list", "connection refused"
    )


def test_secrets_never_shown_in_any_mode(tmp_path):
    with Simulator(SimConfig(seed=3)) as sim:
        good = sim.tap_config()
        wrong = {
            **good,
            "artisan_secret_api_key": "wrong-artisan-secret-9z",
            "kissmetrics_api_token": "wrong-km-token-8y",
        }
        runs = [
            run_cli(tmp_path, good, None, "--about", "--format", "json"),
            run_cli(tmp_path, good, None, "--discover"),
            run_cli(tmp_path, good, None, "--test"),
            run_cli(tmp_path, wrong, None, "--test"),
            run_cli(tmp_path, {**wrong, "export_poll_interval_seconds": 0.02}),
        ]
        paths = [f"{e.path}?{e.query}" for e in sim.requests]
    assert runs[2].returncode == 0 and runs[3].returncode == 1
    assert "Connection test failed: Artisan" in runs[3].stderr
    assert "artisan_secret_api_key" in runs[3].stderr  # named, never shown
    for config, out in zip([good, good, good, wrong, wrong], runs, strict=True):
        secrets = [str(config[n]) for n in TapSegments.secret_names() if config.get(n)]
        for secret in secrets:
            assert secret not in out.stderr and secret not in out.stdout
            assert not any(secret in path for path in paths), "a secret travelled in a URL"
