"""Indicative's client: Basic auth, the segments list, and the segment exports.

Doc: shared/api-docs/indicative-segments-export.md. "uses Basic Authentication header for
all requests ... API Key as the username and your Access Token as the password"; 429 when
rate limited; an export is PENDING, COMPLETE or FAILED, its ``filename`` null until done
("This field will remain null until the export is completed" is said of endTime; the
example answers ``"filename": null`` while PENDING); the file "will remain in Amazon for no
more than 48 hours". The file is on S3, not on Indicative: a presigned ``https`` URL gets no
credentials, and the doc's own example, ``s3://bucket/key``, is read with boto3.
"""

from __future__ import annotations

import datetime as dt
import typing as t
from urllib.parse import quote, urlsplit

from singer_sdk.authenticators import BasicAuthenticator

from tap_segments.exports.download import ExportFile
from tap_segments.exports.engine import (
    ExportRequest,
    ExportStatus,
    PollResult,
    StatusMapping,
    status_words,
)
from tap_segments.exports.state import ExportJob
from tap_segments.vendors.client import VendorClient

if t.TYPE_CHECKING:
    import logging

    from tap_segments.settings import CommonSettings
    from tap_segments.vendors.indicative.settings import IndicativeSettings

SEGMENTS_PATH = "/service/v1/segments/list"
EXPORT_PATH = "/service/v1/segments/export/"
EXPORT_STATUS_PATH = "/service/v1/segments/export/{exportId}"
#: "Values are either PENDING, COMPLETE, or FAILED" (and the common synonyms).
EXPORT_STATUSES = StatusMapping(
    running=status_words("PENDING", "RUNNING", "QUEUED", "IN_PROGRESS"),
    completed=status_words("COMPLETE", "COMPLETED"),
    failed=status_words("FAILED", "ERROR"),
)
#: "the file will remain in Amazon for no more than 48 hours".
RETENTION = dt.timedelta(hours=48)


class IndicativeAPI(VendorClient):
    """One Indicative project, as its streams read it; also its exports' ``ExportAPI``."""

    vendor_label = "Indicative"
    vendor_name = "indicative"
    export_retention: dt.timedelta | None = RETENTION
    triggers_jobs = True
    settings: IndicativeSettings

    base_url_setting = "indicative_base_url"

    def __init__(
        self, settings: IndicativeSettings, common: CommonSettings, logger: logging.Logger
    ) -> None:
        self.base_url = settings.base_url.rstrip("/")
        super().__init__(settings, common, logger)
        #: Exports known complete this run, by exportId: never polled again.
        self.completed: dict[str, PollResult] = {}
        #: Exports whose file went while the members stream read it (expired, deleted), by
        #: exportId: the exports stream triggers them again.
        self.files_gone: dict[str, Exception] = {}

    def authenticator(self) -> BasicAuthenticator:
        return BasicAuthenticator(
            username=self.settings.api_key, password=self.settings.access_token
        )

    def api_base_urls(self) -> list[str]:
        return [self.base_url]

    def check(self) -> str:
        self.segments()
        return f"GET {SEGMENTS_PATH}"

    def segments(self) -> list[dict[str, t.Any]]:
        """Every segment of the project, limited to ``indicative_segment_ids`` (one request)."""
        return self.once("segments", self._segments)

    def _segments(self) -> list[dict[str, t.Any]]:
        segments = self.http.get_json(self.base_url + SEGMENTS_PATH, endpoint=SEGMENTS_PATH)
        if not isinstance(segments, list) or not all(isinstance(s, dict) for s in segments):
            raise self.http.malformed(f"GET {SEGMENTS_PATH}", "a JSON array of segments")
        wanted = set(self.settings.segment_ids)
        return [s for s in segments if not wanted or str(s.get("segmentId")) in wanted]

    # -- ExportAPI -------------------------------------------------------------------------

    def trigger_export(self, request: ExportRequest) -> ExportJob:
        """``POST /service/v1/segments/export/`` with the segment and ``outputFormat: csv``."""
        body = {"segmentId": request.key, "outputFormat": "csv"}
        response = self.http.request(
            "POST", self.base_url + EXPORT_PATH, endpoint=EXPORT_PATH, json_body=body
        )
        answer = self.http.json_body(response)
        if not isinstance(answer, dict) or not answer.get("exportId"):
            raise self.http.malformed(f"POST {EXPORT_PATH}", "an export object with an exportId")
        last_run = request.params["segment"].get("lastRun")
        return ExportJob.new(request.key, str(answer["exportId"]), lastRun=last_run)

    def poll_export(self, job: ExportJob) -> PollResult:
        """``GET /service/v1/segments/export/{exportId}``: a 404 means the export is gone."""
        if job.job_id in self.completed:
            return self.completed[job.job_id]
        path = EXPORT_STATUS_PATH.format(exportId=quote(job.job_id, safe=""))
        response = self.http.request(
            "GET", self.base_url + path, endpoint=EXPORT_STATUS_PATH, expected=(404,)
        )
        if response.status_code == 404:
            return PollResult(ExportStatus.GONE)
        detail = self.http.json_body(response)
        if not isinstance(detail, dict):
            raise self.http.malformed(f"GET {path}", "a JSON export object")
        result = EXPORT_STATUSES.result(
            detail.get("status"),
            f"Indicative: GET {path}",
            lambda: self.export_files(job.job_id, detail.get("filename")),
            detail,
            "filename",
        )
        if result.status is ExportStatus.COMPLETED:
            self.completed[job.job_id] = result
        return result

    def export_files(self, export_id: str, filename: t.Any) -> list[ExportFile]:
        if not filename:
            return []
        url = str(filename)
        name = f"Indicative export {export_id} file {urlsplit(url).path.rsplit('/', 1)[-1]}"
        return [ExportFile(url=url, name=name)]
