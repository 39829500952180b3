"""Every documented variant the simulator serves, one switch at a time, driven with plain
``requests``; then all of them at once, read by a small client written from the docs (not
the tap), whose counts must equal ``Simulator.truth()``."""

from __future__ import annotations

import csv
import datetime as dt
import email.utils
import io
import json
import time
import typing as t

import pytest
import requests

from simulator import SimConfig, Simulator
from simulator.acoustic import ALL_STATUSES, LIST_EXAMPLE_OMITS, AcousticConfig
from simulator.artisan import GEM_JOB_FIELDS, GEM_LIST_FIELDS, REST_JOB_FIELDS, ArtisanConfig
from simulator.indicative import IndicativeConfig
from simulator.kissmetrics import KissmetricsConfig


class Client:
    """Each vendor's documented auth, on each vendor's base URL."""

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        self.config = sim.tap_config()

    def artisan(self, method: str, path: str, **kwargs: t.Any) -> requests.Response:
        headers = {
            "Authorization": f'Token token="{self.config["artisan_secret_api_key"]}"',
            "public-api-key": self.config["artisan_public_api_key"],
        }
        return requests.request(
            method, self.config["artisan_base_url"] + path, headers=headers, **kwargs
        )

    def indicative(self, method: str, path: str, **kwargs: t.Any) -> requests.Response:
        auth = (self.config["indicative_api_key"], self.config["indicative_access_token"])
        url = self.config["indicative_base_url"] + path
        return requests.request(method, url, auth=auth, **kwargs)

    def kissmetrics(self, method: str, url: str, **kwargs: t.Any) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.config['kissmetrics_api_token']}"}
        headers |= kwargs.pop("headers", {})
        return requests.request(method, url, headers=headers, **kwargs)

    def acoustic(self, method: str, path: str, **kwargs: t.Any) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.config['acoustic_auth_key']}"}
        url = self.config["acoustic_base_url"] + path
        return requests.request(method, url, headers=headers, **kwargs)


def simulator(**sections: t.Any) -> Simulator:
    return Simulator(SimConfig(seed=8, **sections))


# -- Artisan ----------------------------------------------------------------------------------


def artisan_export(client: Client) -> tuple[str, str, str]:
    app = client.sim.artisan.apps[0]["id"]
    segment = client.sim.artisan.segments[app][0]["id"]
    answer = client.artisan("POST", f"/public/api/apps/{app}/segments/{segment}", json={})
    return app, segment, answer.json()["job_id"]


@pytest.mark.parametrize(
    ("shape", "fields"),
    [("rest", REST_JOB_FIELDS), ("gem", GEM_LIST_FIELDS)],
)
def test_artisan_job_lists_in_each_documented_shape(shape, fields):
    with simulator(artisan=ArtisanConfig(jobs_shape=shape, status_jobs_shape=shape)) as sim:
        client = Client(sim)
        for path in ("/public/api/jobs", "/public/api/jobs/status/COMPLETE"):
            items = client.artisan("GET", path).json()["jobs"]
            assert items
            jobs = [item["jobs"] for item in items] if shape == "rest" else items
            assert all(tuple(job) == fields for job in jobs)
        if shape == "gem":
            assert "updated_at" not in jobs[0] and "result_url" not in jobs[0]


@pytest.mark.parametrize(
    ("style", "words"),
    [
        ("rest", {"queued", "running", "completed", "failed"}),
        ("rest_upper", {"QUEUED", "RUNNING", "COMPLETED", "FAILED"}),
        ("gem", {"QUEUED", "RUNNING", "COMPLETE", "FAILED"}),
    ],
)
def test_artisan_status_words_in_each_documented_spelling(style, words):
    with simulator(artisan=ArtisanConfig(status_words=style, historical_jobs=8)) as sim:
        jobs = Client(sim).artisan("GET", "/public/api/jobs").json()["jobs"]
        assert {item["jobs"]["status"] for item in jobs} == words


def test_artisan_mixed_spellings_and_the_status_path_understands_them_all():
    with simulator(artisan=ArtisanConfig(historical_jobs=12)) as sim:
        client = Client(sim)
        words = {
            item["jobs"]["status"]
            for item in client.artisan("GET", "/public/api/jobs").json()["jobs"]
        }
        assert {"completed", "COMPLETE", "COMPLETED"} <= words
        for asked in ("COMPLETE", "COMPLETED", "completed"):
            listed = client.artisan("GET", f"/public/api/jobs/status/{asked}").json()["jobs"]
            assert len(listed) == 3


@pytest.mark.parametrize(
    ("shape", "id_field", "expected_keys"),
    [
        ("rest", None, {"jobs"}),
        ("gem", None, {*GEM_JOB_FIELDS, "result_url"}),
        ("gem", "id", {*GEM_JOB_FIELDS, "result_url"} - {"_id"} | {"id"}),
    ],
)
def test_artisan_one_job_shapes_and_id_field(shape, id_field, expected_keys):
    with simulator(artisan=ArtisanConfig(job_shape=shape, id_field=id_field)) as sim:
        client = Client(sim)
        _, _, job_id = artisan_export(client)
        job = client.artisan("GET", f"/public/api/jobs/{job_id}").json()
        assert set(job) == expected_keys
        if shape == "rest":
            assert job["jobs"]["_id"] == job_id


def test_artisan_one_job_alternates_between_the_shapes_by_default():
    with simulator(artisan=ArtisanConfig(polls_to_complete=9)) as sim:
        client = Client(sim)
        _, _, job_id = artisan_export(client)
        answers = [client.artisan("GET", f"/public/api/jobs/{job_id}").json() for _ in range(4)]
        assert ["jobs" in answer for answer in answers] == [True, False, True, False]


def test_artisan_completed_before_its_result_url():
    config = ArtisanConfig(polls_to_complete=1, url_lag_polls=2, job_shape="gem")
    with simulator(artisan=config) as sim:
        client = Client(sim)
        app, segment, job_id = artisan_export(client)
        polls = [client.artisan("GET", f"/public/api/jobs/{job_id}").json() for _ in range(4)]
        assert [p["status"].upper().startswith("COMPLETE") for p in polls] == [True] * 4
        assert [p["result_url"] is None for p in polls] == [True, True, False, False]
        assert requests.get(polls[2]["result_url"]).json() == sim.artisan.segment_members(
            app, segment
        )


@pytest.mark.parametrize("shape", ["gem", "bare"])
def test_artisan_profiles_with_and_without_the_gem_wrapper(shape):
    with simulator(artisan=ArtisanConfig(profiles_shape=shape)) as sim:
        client = Client(sim)
        app = sim.artisan.apps[0]["id"]
        many = client.artisan("GET", f"/public/api/apps/{app}/users", params={"ids": "a,b"})
        one = client.artisan("GET", f"/public/api/apps/{app}/users/a", params={"source": "custom"})
        if shape == "gem":
            assert many.json()["success"] is True and len(many.json()["response"]) == 2
            assert one.json()["response"]["identifierSource"] == "custom"
        else:
            assert [p["identifier"] for p in many.json()] == ["a", "b"]
            assert one.json()["identifier"] == "a"


def test_artisan_apps_list_can_be_absent_and_callbacks_are_recorded():
    with simulator(artisan=ArtisanConfig(apps_endpoint=False)) as sim:
        client = Client(sim)
        assert client.artisan("GET", "/public/api/apps").status_code == 404
        app = sim.artisan.apps[0]["id"]
        client.artisan("POST", f"/public/api/apps/{app}/users/export", json={"callbackUrl": "x"})
        assert sim.artisan.callback_urls == ["x"]


def test_artisan_profile_export_of_given_ids():
    with simulator(artisan=ArtisanConfig(polls_to_complete=1, job_shape="gem")) as sim:
        client = Client(sim)
        app = sim.artisan.apps[0]["id"]
        path = f"/public/api/apps/{app}/users/export"
        both = {"artisan_ids": ["a"], "shared_user_ids": ["s"]}
        assert client.artisan("POST", path, json=both).status_code == 400
        job_id = client.artisan("POST", path, json={"shared_user_ids": ["s1", "s2"]}).json()
        job = client.artisan("GET", f"/public/api/jobs/{job_id['jobs']['_id']}").json()
        profiles = requests.get(job["result_url"]).json()
        assert [(p["identifier"], p["identifierSource"]) for p in profiles] == [
            ("s1", "custom"),
            ("s2", "custom"),
        ]


# -- Indicative -------------------------------------------------------------------------------


@pytest.mark.parametrize(("fields", "top_level_project"), [("table", True), ("example", False)])
def test_indicative_export_object_fields(fields, top_level_project):
    with simulator(indicative=IndicativeConfig(segments=1, export_fields=fields)) as sim:
        client = Client(sim)
        segment = sim.indicative.segments[0]["segmentId"]
        export = client.indicative(
            "POST", "/service/v1/segments/export/", json={"segmentId": segment}
        )
        assert ("projectId" in export.json()) is top_level_project
        assert export.json()["segment"]["projectId"]


def http_moment(value: str) -> dt.datetime:
    return email.utils.parsedate_to_datetime(value)


def test_indicative_429_with_retry_after_in_seconds():
    config = IndicativeConfig(segments=1, polls_to_complete=1, throttle_polls=2)
    with simulator(indicative=config) as sim:
        client = Client(sim)
        segment = sim.indicative.segments[0]["segmentId"]
        export = client.indicative(
            "POST", "/service/v1/segments/export/", json={"segmentId": segment}
        )
        path = f"/service/v1/segments/export/{export.json()['exportId']}"
        answers = [client.indicative("GET", path) for _ in range(3)]
        assert [a.status_code for a in answers] == [429, 429, 200]
        assert answers[0].headers["Retry-After"] == "1"
        assert answers[2].json()["status"] == "COMPLETE"


def test_indicative_retry_after_as_a_date_on_a_skewed_clock():
    config = IndicativeConfig(
        segments=1,
        throttle_polls=1,
        retry_after_form="date",
        retry_after_seconds=4,
        date_skew_seconds=-3600,
    )
    with simulator(indicative=config) as sim:
        client = Client(sim)
        segment = sim.indicative.segments[0]["segmentId"]
        export = client.indicative(
            "POST", "/service/v1/segments/export/", json={"segmentId": segment}
        )
        throttled = client.indicative(
            "GET", f"/service/v1/segments/export/{export.json()['exportId']}"
        )
        assert throttled.status_code == 429
        server_date = http_moment(throttled.headers["Date"])
        retry_at = http_moment(throttled.headers["Retry-After"])
        assert (retry_at - server_date).total_seconds() == 4
        ours = dt.datetime.now(dt.timezone.utc)
        assert abs((server_date - ours).total_seconds() + 3600) < 5
        listed = client.indicative("GET", "/service/v1/segments/list")
        assert abs((http_moment(listed.headers["Date"]) - ours).total_seconds() + 3600) < 5


def test_indicative_project_without_export_access():
    with simulator(indicative=IndicativeConfig(segments=1, export_api_access=False)) as sim:
        client = Client(sim)
        assert client.indicative("GET", "/service/v1/segments/list").ok
        segment = sim.indicative.segments[0]["segmentId"]
        denied = client.indicative(
            "POST", "/service/v1/segments/export/", json={"segmentId": segment}
        )
        assert denied.status_code == 403 and "Export API" in denied.json()["error"]


def test_indicative_output_format_csv_only():
    with simulator(indicative=IndicativeConfig(segments=1)) as sim:
        client = Client(sim)
        body = {"segmentId": sim.indicative.segments[0]["segmentId"], "outputFormat": "json"}
        assert (
            client.indicative("POST", "/service/v1/segments/export/", json=body).status_code == 400
        )


# -- Kissmetrics ------------------------------------------------------------------------------

WINDOW_ISO = {"start_date": "2026-06-02T00:00:00+00:00", "end_date": "2026-06-02T23:59:59+00:00"}
WINDOW_UNIX = {"start_date": 1780358400, "end_date": 1780444799}  # the same UTC day


def run_link(client: Client, index: int = 0) -> str:
    reports = client.kissmetrics("GET", client.config["kissmetrics_api_base_url"] + "/core/reports")
    return next(x["href"] for x in reports.json()[index]["links"] if x["rel"] == "run")


@pytest.mark.parametrize(
    ("accepted", "status", "iso_status", "unix_status"),
    [
        ("iso", 400, 202, 400),
        ("unix", 422, 422, 202),
        ("both", 400, 202, 202),
    ],
)
def test_kissmetrics_run_dates_in_one_form_or_both(accepted, status, iso_status, unix_status):
    config = KissmetricsConfig(reports=1, run_dates=accepted, rejected_date_status=status)
    with simulator(kissmetrics=config) as sim:
        client = Client(sim)
        link = run_link(client)
        assert client.kissmetrics("POST", link, json=WINDOW_ISO).status_code == iso_status
        assert client.kissmetrics("POST", link, json=WINDOW_UNIX).status_code == unix_status
        rejected = sum(sim.kissmetrics.state.rejected.values())
        assert rejected == [iso_status, unix_status].count(status)


def test_kissmetrics_unix_and_iso_runs_of_one_window_give_the_same_rows():
    config = KissmetricsConfig(reports=1, run_dates="both", polls_to_complete=1)
    with simulator(kissmetrics=config) as sim:
        client = Client(sim)
        results = []
        for window in (WINDOW_ISO, WINDOW_UNIX):
            run = client.kissmetrics("POST", run_link(client), json=window)
            done = client.kissmetrics("GET", run.headers["Location"])
            assert done.status_code == 201
            page = client.kissmetrics("GET", done.headers["Location"], params={"limit": 500})
            results.append(page.json()["data"])
        assert results[0] == results[1] and results[0]


def test_kissmetrics_results_without_next_links_page_by_total():
    config = KissmetricsConfig(reports=1, polls_to_complete=1, next_links=False)
    with simulator(kissmetrics=config) as sim:
        client = Client(sim)
        run = client.kissmetrics("POST", run_link(client), json=WINDOW_ISO)
        results = client.kissmetrics("GET", run.headers["Location"]).headers["Location"]
        rows, offset, total = [], 0, None
        while total is None or offset < total:
            page = client.kissmetrics("GET", results, params={"limit": 7, "offset": offset}).json()
            assert [x["rel"] for x in page["links"]] == ["self", "export"]
            total = page["pagination"]["total"]
            rows += page["data"]
            offset += 7
        report = sim.kissmetrics.state.report_ids[0]
        assert len(rows) == sim.kissmetrics.state.rows_in_window(report, WINDOW_ISO["start_date"])


def test_kissmetrics_run_links_on_the_core_host():
    config = KissmetricsConfig(reports=1, run_link_host="core")
    with simulator(kissmetrics=config) as sim:
        client = Client(sim)
        link = run_link(client)
        report = sim.kissmetrics.state.report_ids[0]
        assert link == f"{client.config['kissmetrics_api_base_url']}/query/reports/{report}/run"
        run = client.kissmetrics("POST", link, json=WINDOW_ISO)
        assert run.status_code == 202
        assert run.headers["Location"].startswith(client.config["kissmetrics_query_base_url"])


def test_kissmetrics_content_type_may_be_required():
    with simulator(kissmetrics=KissmetricsConfig(reports=1, require_content_type=True)) as sim:
        client = Client(sim)
        link = run_link(client)
        bare = client.kissmetrics("POST", link, data=json.dumps(WINDOW_ISO))
        assert bare.status_code == 415
        assert client.kissmetrics("POST", link, json=WINDOW_ISO).status_code == 202


# -- Acoustic ---------------------------------------------------------------------------------


def acoustic_jobs(client: Client, category: str = "SEGMENT_EXPORT", **params: str) -> list[dict]:
    return client.acoustic("GET", f"/v1/jobs/{category}", params=params).json()


@pytest.mark.parametrize("honoured", ["endpointId", "endpointID"])
def test_acoustic_honours_one_filter_spelling_and_ignores_the_other(honoured):
    config = AcousticConfig(
        jobs_per_category=6, endpoint_param=honoured, other_destination_jobs=True
    )
    ignored = "endpointID" if honoured == "endpointId" else "endpointId"
    with simulator(acoustic=config) as sim:
        client = Client(sim)
        every = acoustic_jobs(client)
        filtered = acoustic_jobs(client, **{honoured: "8"})
        assert {job["destinationEndpointID"] for job in every} == {7, 8}
        assert filtered and {job["destinationEndpointID"] for job in filtered} == {8}
        assert acoustic_jobs(client, **{ignored: "8"}) == every


def test_acoustic_truth_counts_the_configured_endpoint_only():
    config = AcousticConfig(jobs_per_category=6, endpoint_id=7, other_destination_jobs=True)
    with simulator(acoustic=config) as sim:
        assert sim.tap_config()["acoustic_endpoint_id"] == "7"
        client = Client(sim)
        mine = [
            job
            for category in ("SEGMENT_EXPORT", "IDENTITY_IMPORT", "SEGMENT_POPULATE_DB")
            for job in acoustic_jobs(client, category)
            if 7 in (job["producerEndpointID"], job["destinationEndpointID"])
        ]
        assert sim.truth()["acoustic_jobs"] == len(mine) < 18
        assert all(job_id in {j["jobId"] for j in mine} for job_id, _ in sim.acoustic.ready_files())
        scheduled = client.acoustic(
            "GET", "/v1/scheduledjobs/SEGMENT_EXPORT", params={"endpointId": "7"}
        )
        assert sim.truth()["acoustic_scheduled_jobs"] == len(scheduled.json())


def test_acoustic_dates_as_iso_strings():
    with simulator(acoustic=AcousticConfig(dates="iso")) as sim:
        jobs = acoustic_jobs(Client(sim), extraFields="true")
        started = [job["started"] for job in jobs]
        assert all(dt.datetime.fromisoformat(s.replace("Z", "+00:00")) for s in started)


def test_acoustic_list_example_fields_and_one_job_as_object():
    config = AcousticConfig(field_set="list_example", one_job_shape="object")
    with simulator(acoustic=config) as sim:
        client = Client(sim)
        listed = acoustic_jobs(client)
        assert not set(LIST_EXAMPLE_OMITS) & set(listed[0])
        one = client.acoustic("GET", f"/v1/jobs/SEGMENT_EXPORT/{listed[0]['jobId']}").json()
        assert isinstance(one, dict) and set(LIST_EXAMPLE_OMITS) <= set(one)


def test_acoustic_every_documented_status():
    with simulator(acoustic=AcousticConfig(jobs_per_category=9, all_statuses=True)) as sim:
        statuses = {job["status"] for job in acoustic_jobs(Client(sim))}
        assert statuses == set(ALL_STATUSES)


def test_acoustic_mark_complete_may_answer_false():
    with simulator(acoustic=AcousticConfig(complete_succeeds=False)) as sim:
        client = Client(sim)
        job = acoustic_jobs(client, status="READY_FOR_DOWNLOAD")[0]
        answer = client.acoustic("PUT", f"/v1/jobs/{job['jobId']}/status/complete")
        assert answer.status_code == 200 and answer.json() is False
        assert sim.acoustic.completed == [job["jobId"]]
        name = job["segmentDataFiles"][0]
        assert client.acoustic("GET", f"/v1/jobs/{job['jobId']}/segmentDataFiles/{name}").ok
        with sim.server.log_lock:  # this test's write, not a tap's (see tests/conftest.py)
            sim.server.log.clear()


@pytest.mark.parametrize(
    ("served", "data_ok", "date_ok"), [("segmentDateFiles", False, True), ("both", True, True)]
)
def test_acoustic_file_path_spellings(served, data_ok, date_ok):
    with simulator(acoustic=AcousticConfig(files_path=served)) as sim:
        client = Client(sim)
        job = acoustic_jobs(client, status="READY_FOR_DOWNLOAD")[0]
        name = job["segmentDataFiles"][0]
        for kind, ok in (("segmentDataFiles", data_ok), ("segmentDateFiles", date_ok)):
            assert client.acoustic("GET", f"/v1/jobs/{job['jobId']}/{kind}/{name}").ok is ok


# -- switches from another process ------------------------------------------------------------


def test_switches_are_set_through_the_control_endpoint():
    with simulator() as sim:
        answer = requests.post(f"{sim.url}/_sim/acoustic/config", json={"one_job_shape": "object"})
        assert answer.json()["one_job_shape"] == "object"
        assert sim.acoustic.config.one_job_shape == "object"
        km = requests.post(f"{sim.url}/_sim/kissmetrics-query/config", json={"run_dates": "unix"})
        assert km.json()["run_dates"] == "unix" and sim.kissmetrics.state.config.run_dates == "unix"
        assert requests.post(f"{sim.url}/_sim/artisan/config", json={"nope": 1}).status_code == 400
        assert requests.get(f"{sim.url}/_sim/indicative/config").json()["throttle_polls"] == 0


# -- every variant at once, read by a client written from the docs ----------------------------


def wait_for(answer: requests.Response) -> None:
    """Honour a 429's Retry-After, in seconds or as a date read against the answer's Date."""
    value = answer.headers["Retry-After"]
    if value.isdigit():
        time.sleep(int(value))
        return
    wait = http_moment(value) - http_moment(answer.headers["Date"])
    assert wait.total_seconds() <= 5, "a skewed Date must not stretch the wait"
    time.sleep(wait.total_seconds())


def rows_in(content: bytes) -> int:
    text = content.decode()
    if text.lstrip().startswith("["):
        return len(json.loads(text))
    return len(list(csv.DictReader(io.StringIO(text))))


def read_artisan(client: Client) -> dict[str, int]:
    counts = dict.fromkeys(("apps", "segments", "jobs", "profiles", "members"), 0)
    apps = client.artisan("GET", "/public/api/apps").json()["apps"]
    counts["apps"] = len(apps)
    counts["jobs"] = len(client.artisan("GET", "/public/api/jobs").json()["jobs"])
    for app in apps:
        segments = client.artisan("GET", f"/public/api/apps/{app['id']}/segments/").json()
        counts["segments"] += len(segments)
        exports = [(f"/public/api/apps/{app['id']}/users/export", "profiles")]
        exports += [
            (f"/public/api/apps/{app['id']}/segments/{s['id']}", "members") for s in segments
        ]
        for path, what in exports:
            answer = client.artisan("POST", path, json={}).json()
            job_id = answer.get("job_id") or answer["jobs"].get("_id") or answer["jobs"].get("id")
            for _ in range(20):
                job = client.artisan("GET", f"/public/api/jobs/{job_id}").json()
                job = job.get("jobs", job)
                if job["status"].upper() in ("COMPLETE", "COMPLETED") and job["result_url"]:
                    break
            counts[what] += rows_in(requests.get(job["result_url"]).content)
    return {
        "artisan_apps": counts["apps"],
        "artisan_segments": counts["segments"],
        "artisan_jobs": counts["jobs"],
        "artisan_profiles": counts["profiles"],
        "artisan_segment_members": counts["members"],
    }


def read_indicative(client: Client) -> dict[str, int]:
    segments = client.indicative("GET", "/service/v1/segments/list").json()
    members = 0
    for segment in segments:
        body = {"segmentId": segment["segmentId"], "outputFormat": "csv"}
        export = client.indicative("POST", "/service/v1/segments/export/", json=body).json()
        assert export["filename"] is None
        while export["status"] == "PENDING":
            answer = client.indicative("GET", f"/service/v1/segments/export/{export['exportId']}")
            if answer.status_code == 429:
                wait_for(answer)
                continue
            export = answer.json()
        members += rows_in(requests.get(export["filename"]).content)
    return {
        "indicative_segments": len(segments),
        "indicative_segment_exports": len(segments),
        "indicative_segment_members": members,
    }


def read_kissmetrics(client: Client, sim: Simulator) -> dict[str, int]:
    reports = client.kissmetrics("GET", client.config["kissmetrics_api_base_url"] + "/core/reports")
    rows = 0
    for report in reports.json():
        link = next(x["href"] for x in report["links"] if x["rel"] == "run")
        for (report_id, start), _ in sim.kissmetrics.rows_by_window().items():
            if report_id != report["id"]:
                continue
            first = int(dt.datetime.fromisoformat(start).timestamp())
            window = {"start_date": first, "end_date": first + 86399}
            status = client.kissmetrics("POST", link, json=window).headers["Location"]
            done = client.kissmetrics("GET", status)
            while done.status_code != 201:
                done = client.kissmetrics("GET", status)
            offset, total = 0, 1
            while offset < total:
                params = {"limit": 50, "offset": offset}
                page = client.kissmetrics("GET", done.headers["Location"], params=params).json()
                rows += len(page["data"])
                offset, total = offset + 50, page["pagination"]["total"]
    return {"kissmetrics_reports": len(reports.json()), "kissmetrics_report_results": rows}


def read_acoustic(client: Client) -> dict[str, int]:
    endpoint = int(client.config["acoustic_endpoint_id"])
    counts = {"acoustic_jobs": 0, "acoustic_scheduled_jobs": 0, "acoustic_segment_data": 0}
    for category in ("SEGMENT_EXPORT", "IDENTITY_IMPORT", "SEGMENT_POPULATE_DB"):
        params = {"endpointId": str(endpoint), "endpointID": str(endpoint), "extraFields": "true"}
        for job in acoustic_jobs(client, category, **params):
            if endpoint not in (job["producerEndpointID"], job["destinationEndpointID"]):
                continue
            counts["acoustic_jobs"] += 1
            if category == "SEGMENT_EXPORT" and job["status"] == "READY_FOR_DOWNLOAD":
                for name in job["segmentDataFiles"]:
                    path = f"/v1/jobs/{job['jobId']}/segmentDataFiles/{name}"
                    counts["acoustic_segment_data"] += rows_in(client.acoustic("GET", path).content)
    scheduled = client.acoustic(
        "GET", "/v1/scheduledjobs/SEGMENT_EXPORT", params={"endpointId": str(endpoint)}
    )
    counts["acoustic_scheduled_jobs"] = len(scheduled.json())
    return counts


def test_every_variant_at_once_is_read_exactly_by_a_client_written_from_the_docs():
    config = SimConfig.all_variants(seed=12)
    config.indicative.segments = 2
    config.artisan.apps = 1
    config.kissmetrics.reports = 1
    config.kissmetrics.polls_to_complete = 1
    with Simulator(config) as sim:
        client = Client(sim)
        counts = read_artisan(client) | read_indicative(client)
        counts |= read_kissmetrics(client, sim) | read_acoustic(client)
        assert counts == sim.truth()
        redirected = [r for r in sim.storage.requests if r.status == 302]
        assert redirected and {r.origin for r in sim.storage.requests} == set(sim.storage.origins)
        assert sim.storage.credential_leaks() == []


def test_a_body_that_is_not_json_is_a_400():
    with simulator(kissmetrics=KissmetricsConfig(reports=1)) as sim:
        client = Client(sim)
        headers = {"Content-Type": "application/json"}
        answer = client.kissmetrics("POST", run_link(client), data="{not json", headers=headers)
        assert answer.status_code == 400
