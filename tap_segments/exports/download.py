"""Opening result files for the readers: presigned URLs, the vendor's API, ``s3://`` URIs.

A result file is fetched with the vendor's ``HttpClient`` as a download (``api_call=False``):
credentials go with it only when the file is on the vendor's own API (Acoustic's segment
data files); a presigned URL or another host gets none, across every redirect. HTTP
content codings (gzip, deflate, and whatever else ``requests`` advertises) are decoded as
the bytes arrive. ``s3://bucket/key`` (Indicative's documented form) is read with boto3,
the optional extra ``tap-segments[s3]``, with the standard AWS credential chain.

Every file gets a time bound for its whole download (``file_download_timeout_seconds``,
default ``export_timeout_seconds``): a server that trickles bytes just fast enough to dodge
the per-request timeout cannot hold the run.
"""

from __future__ import annotations

import io
import time
import typing as t
from dataclasses import dataclass
from urllib.parse import urlsplit

from tap_segments.errors import (
    DownloadTimeoutError,
    ExportFileGoneError,
    ResultFileUnavailableError,
)
from tap_segments.http import endpoint_of

if t.TYPE_CHECKING:
    from tap_segments.http import HttpClient


@dataclass(frozen=True)
class ExportFile:
    """One result file of a finished export."""

    url: str
    #: How messages name it: "Indicative export <id> file <name>".
    name: str
    format: str | None = None  # "csv", "json", "jsonl"; None = detect from the bytes
    #: Answers that mean the file expired or was deleted (the export is triggered again).
    gone_statuses: tuple[int, ...] = (403, 404)
    #: The vendor's own name for the file, where records carry it (Acoustic's file_name).
    file_name: str = ""


class DeadlineReader(io.RawIOBase):
    """A raw byte stream that fails once ``seconds`` have passed since it was opened.

    Reads return what has arrived (``read1``), so a slow trickle is seen between reads.
    """

    def __init__(self, raw: t.Any, seconds: float, name: str) -> None:
        super().__init__()
        self.raw = raw
        self.seconds = seconds
        self.name_ = name
        self.deadline = time.monotonic() + seconds
        self._read = getattr(raw, "read1", None) or raw.read

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: t.Any) -> int:
        if time.monotonic() > self.deadline:
            raise DownloadTimeoutError(
                f"{self.name_}: the download did not finish within "
                f"file_download_timeout_seconds={self.seconds:g} (it kept trickling); "
                "raise the setting if the file is that slow to serve."
            )
        data = self._read(len(buffer))
        size = len(data)
        buffer[:size] = data
        return size

    def close(self) -> None:
        try:
            self.raw.close()
        finally:
            super().close()


def open_result_file(
    client: HttpClient,
    file: ExportFile,
    *,
    s3_endpoint_url: str | None = None,
    first_byte_only: bool = False,
) -> t.BinaryIO:
    """Open ``file`` for streaming; ``ExportFileGoneError`` when it expired or was deleted.

    ``first_byte_only`` asks for one byte (``Range: bytes=0-0``): a cheap check that the
    file can still be downloaded.
    """
    seconds = client.settings.download_timeout
    if urlsplit(file.url).scheme == "s3":
        body = open_s3_object(file, s3_endpoint_url, "bytes=0-0" if first_byte_only else None)
        return t.cast(t.BinaryIO, DeadlineReader(body, seconds, file.name))
    response = client.request(
        "GET",
        file.url,
        endpoint=endpoint_of(file.url),
        stream=True,
        # 416 to a one-byte range: the file is there, and empty (S3 answers so).
        expected=(*file.gone_statuses, *((416,) if first_byte_only else ())),
        api_call=False,
        headers={"Range": "bytes=0-0"} if first_byte_only else None,
    )
    if response.status_code in file.gone_statuses:
        response.close()
        raise ExportFileGoneError(
            f"{file.name} is no longer available (HTTP {response.status_code} for GET "
            f"{endpoint_of(file.url)})."
        )
    raw = response.raw
    raw.decode_content = True  # gzip, deflate, ...: what requests' Accept-Encoding offered
    return t.cast(t.BinaryIO, DeadlineReader(raw, seconds, file.name))


_S3_CLIENTS: dict[str | None, t.Any] = {}


def open_s3_object(file: ExportFile, endpoint_url: str | None, byte_range: str | None) -> t.Any:
    """``s3://bucket/key`` through boto3, with the standard AWS credential chain."""
    parts = urlsplit(file.url)
    bucket, key = parts.netloc, parts.path.lstrip("/")
    try:
        import boto3
        import botocore.exceptions as aws
    except ImportError:
        raise ResultFileUnavailableError(
            f"{file.name}: {file.url} is on S3, and reading s3:// result files needs the "
            "optional extra: pip install 'tap-segments[s3]'."
        ) from None
    client = _S3_CLIENTS.get(endpoint_url)
    if client is None:
        client = _S3_CLIENTS[endpoint_url] = boto3.client("s3", endpoint_url=endpoint_url)
    try:
        extra = {"Range": byte_range} if byte_range else {}
        return client.get_object(Bucket=bucket, Key=key, **extra)["Body"]
    except aws.NoCredentialsError:
        raise ResultFileUnavailableError(
            f"{file.name}: {file.url} needs AWS credentials and none were found (set "
            "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or use an instance "
            "role; for S3-compatible storage also set s3_endpoint_url)."
        ) from None
    except aws.EndpointConnectionError as exc:
        raise ResultFileUnavailableError(
            f"{file.name}: cannot reach the S3 endpoint for {file.url} ({exc}); check "
            "s3_endpoint_url and the network."
        ) from None
    except aws.ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", ""))
        if code in ("NoSuchKey", "NoSuchBucket", "404", "AccessDenied", "403"):
            raise ExportFileGoneError(
                f"{file.name} is no longer available ({code} for {file.url})."
            ) from None
        raise ResultFileUnavailableError(
            f"{file.name}: S3 answered {code} for {file.url}."
        ) from None
