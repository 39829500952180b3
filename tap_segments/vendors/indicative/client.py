"""Indicative's base stream: base URL, Basic auth, and the export API's vocabulary.

Doc: shared/api-docs/indicative-segments-export.md. Basic auth with the API key as user
and the access token as password; 429 when rate limited; exports are kept 48 hours.
"""

from __future__ import annotations

import typing as t
from urllib.parse import urlparse

from singer_sdk.authenticators import BasicAuthenticator

from tap_segments.client import VendorStream
from tap_segments.exports.engine import ExportFile, ExportStatus, PollResult, map_status

SEGMENTS_PATH = "/service/v1/segments/list"
EXPORT_PATH = "/service/v1/segments/export/"


class IndicativeStream(VendorStream):
    """Base of the Indicative streams."""

    vendor_label = "Indicative"
    credential_settings = ("indicative_api_key", "indicative_access_token")

    @property
    def url_base(self) -> str:
        return str(self.config.get("indicative_base_url", "https://query.indicative.com")).rstrip(
            "/"
        )

    @property
    def authenticator(self) -> BasicAuthenticator:
        return BasicAuthenticator(
            username=self.config["indicative_api_key"],
            password=self.config["indicative_access_token"],
        )

    def list_segments(self) -> list[dict[str, t.Any]]:
        """Every segment of the project, limited to ``indicative_segment_ids`` when set."""
        segments = self.send_json("GET", SEGMENTS_PATH)
        if not isinstance(segments, list):
            raise self.malformed(f"GET {SEGMENTS_PATH}", "a JSON array of segments")
        wanted = set(self.config.get("indicative_segment_ids") or [])
        return [s for s in segments if not wanted or s.get("segmentId") in wanted]

    def export_status(self, export_id: str) -> PollResult:
        """``GET /service/v1/segments/export/{exportId}``: a 404 means the export is gone."""
        path = f"{EXPORT_PATH}{export_id}"
        response = self.send("GET", path, expected_statuses=(404,))
        if response.status_code == 404:
            return PollResult(ExportStatus.GONE)
        detail = self.json_body(response)
        if not isinstance(detail, dict):
            raise self.malformed(f"GET {path}", "a JSON export object")
        status = map_status(
            detail.get("status"),
            where=f"Indicative: GET {path}",
            running=("PENDING", "RUNNING", "QUEUED", "IN_PROGRESS"),
            completed=("COMPLETE", "COMPLETED"),
            failed=("FAILED", "ERROR"),
        )
        files = []
        if status is ExportStatus.COMPLETED:
            if not detail.get("filename"):
                raise self.malformed(f"GET {path}", "a filename for a COMPLETE export")
            files = [self.export_file(export_id, str(detail["filename"]))]
        return PollResult(status, files=files, detail=detail, message=detail.get("status"))

    def export_file(self, export_id: str, filename: str) -> ExportFile:
        url = download_url(filename)
        base = urlparse(self.url_base)
        target = urlparse(url)
        same_host = (target.scheme, target.netloc) == (base.scheme, base.netloc)
        name = f"Indicative export {export_id} file {target.path.rsplit('/', 1)[-1]}"
        # Credentials go only to Indicative itself, never to the storage host of a file.
        return ExportFile(url=url, name=name, authenticated=same_host)


def download_url(filename: str) -> str:
    """The doc's example gives ``s3://bucket/key``; read it over HTTPS like any S3 object."""
    parsed = urlparse(filename)
    if parsed.scheme == "s3":
        return f"https://{parsed.netloc}.s3.amazonaws.com{parsed.path}"
    return filename
