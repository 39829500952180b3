"""A real S3 API for ``s3://bucket/key`` result files: moto's server on 127.0.0.1.

Indicative's doc gives a COMPLETE export's ``filename`` as
``s3://upload-bucket/path/to/<exportId>.csv`` (indicative-segments-export.md, "filename":
"s3://upload-bucket/path/to/8f9fdd71-...csv"). With ``IndicativeConfig.filename_style =
"s3"`` the simulator uploads the export file to the S3 endpoint a test started (``MotoS3``)
and answers that URI; a client reads it with its own AWS credentials.

``moto[server]`` and ``boto3`` are test dependencies (the ``test`` extra); they are imported
only when used.
"""

from __future__ import annotations

import io
import typing as t

#: Credentials the simulator writes with; moto accepts any.
UPLOADER_KEY = "sim-uploader-key"
UPLOADER_SECRET = "sim-uploader-secret"
REGION = "us-east-1"


class MotoS3:
    """moto's S3 server on 127.0.0.1 (a free port), for the duration of a ``with`` block."""

    def __init__(self) -> None:
        from moto.server import ThreadedMotoServer

        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.endpoint_url = ""

    def start(self) -> MotoS3:
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.endpoint_url = f"http://{host}:{port}"
        return self

    def stop(self) -> None:
        self._server.stop()

    def __enter__(self) -> MotoS3:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def client(self) -> t.Any:
        return client(self.endpoint_url)


def client(endpoint_url: str) -> t.Any:
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=endpoint_url,
        region_name=REGION,
        aws_access_key_id=UPLOADER_KEY,
        aws_secret_access_key=UPLOADER_SECRET,
    )


class ChunkReader(io.RawIOBase):
    """A file object over an iterator of byte chunks (uploads stream, never sit in memory)."""

    def __init__(self, chunks: t.Iterable[bytes]) -> None:
        self._chunks = iter(chunks)
        self._pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: t.Any) -> int:
        while not self._pending:
            try:
                self._pending = next(self._chunks)
            except StopIteration:
                return 0
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size


def upload(endpoint_url: str, bucket: str, key: str, chunks: t.Iterable[bytes]) -> str:
    """Put ``chunks`` at ``bucket/key`` (the bucket made if needed); returns ``s3://...``."""
    s3 = client(endpoint_url)
    try:
        s3.head_bucket(Bucket=bucket)
    except Exception:  # botocore's ClientError (404): the bucket does not exist yet
        s3.create_bucket(Bucket=bucket)
    s3.upload_fileobj(io.BufferedReader(ChunkReader(chunks)), bucket, key)
    return f"s3://{bucket}/{key}"


def delete(endpoint_url: str, bucket: str, key: str) -> None:
    client(endpoint_url).delete_object(Bucket=bucket, Key=key)
