"""Deterministic generated data: the same seed gives the same ids, names and rows.

Never Python's salted ``hash()``: every random stream is ``random.Random`` seeded from the
simulator seed and a stable digest of a name, so two runs (or two processes) agree.
Files are generators of byte chunks, so a 3,000,000-row export never sits in memory.
"""

from __future__ import annotations

import csv
import datetime as dt
import functools
import hashlib
import io
import random
import typing as t
import uuid
import zlib

CHUNK_ROWS = 4096


def rng(seed: int, *names: object) -> random.Random:
    digest = hashlib.sha256(repr((seed, *names)).encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def stable_uuid(seed: int, *names: object) -> str:
    return str(uuid.UUID(int=rng(seed, "uuid", *names).getrandbits(128), version=4))


def iso_millis(moment: dt.datetime) -> str:
    """``2019-04-09T12:25:06.000Z``, the format of the Indicative docs."""
    return moment.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + (
        f"{moment.microsecond // 1000:03d}Z"
    )


COUNTRIES = ("US", "FR", "DE", "BR", "JP", "IN", "GB", "CA")
NOTES = ("", "likes, commas", 'says "hi"', "two\nlines", "plain")


POOL_SIZE = 1024  # distinct row tails cycled through, so files of millions of rows are cheap


@functools.lru_cache(maxsize=256)
def _member_pool(seed: int, scope: str) -> tuple[tuple[str, dict[str, str]], ...]:
    """``POOL_SIZE`` (tag, cells) pairs; row ``i`` uses entry ``i % POOL_SIZE``."""
    pool = []
    for index in range(POOL_SIZE):
        r = rng(seed, "member", scope, index)
        cells = {
            "firstSeen": f"2026-{r.randint(1, 10):02d}-{r.randint(1, 28):02d}",
            "country": COUNTRIES[r.randrange(len(COUNTRIES))],
            "note": NOTES[index % len(NOTES)],
        }
        pool.append((f"{r.randrange(16**6):06x}", cells))
    return tuple(pool)


def member_row(seed: int, scope: str, index: int) -> dict[str, str]:
    """One audience member: string cells, some with commas, quotes, newlines or empty."""
    tag, cells = _member_pool(seed, scope)[index % POOL_SIZE]
    user = f"u{index:07d}-{tag}"
    return {"userId": user, "email": f"{user}@example.test", **cells}


def member_csv_chunks(seed: int, scope: str, rows: int) -> t.Iterator[bytes]:
    """The CSV of ``rows`` members (header first) as byte chunks, at millions of rows/s.

    Byte for byte what ``csv_chunks(MEMBER_COLUMNS, member_row(...) for each row)`` gives.
    """
    tails = []
    for tag, cells in _member_pool(seed, scope):
        text = io.StringIO()
        csv.writer(text, lineterminator="\n").writerow([cells[c] for c in MEMBER_COLUMNS[2:]])
        tails.append((tag.encode(), text.getvalue().encode()))
    yield (",".join(MEMBER_COLUMNS) + "\n").encode()
    for first in range(0, rows, CHUNK_ROWS):
        yield b"".join(
            b"u%07d-%s,u%07d-%s@example.test,%s" % (i, tag, i, tag, tail)
            for i in range(first, min(first + CHUNK_ROWS, rows))
            for tag, tail in (tails[i % POOL_SIZE],)
        )


def member_csv_size(seed: int, scope: str, rows: int) -> int:
    """``len(b"".join(member_csv_chunks(seed, scope, rows)))``, without generating it."""
    tails = []
    for _tag, cells in _member_pool(seed, scope):
        text = io.StringIO()
        csv.writer(text, lineterminator="\n").writerow([cells[c] for c in MEMBER_COLUMNS[2:]])
        tails.append(len(text.getvalue().encode()))
    size = len(",".join(MEMBER_COLUMNS)) + 1
    # Row i is "u%07d-<tag>,u%07d-<tag>@example.test,<tail>": 2 * (1 + digits + 1 + 6) + 15
    # bytes before its tail, where digits is 7 below 10**7 and grows with i after.
    full, part = divmod(rows, POOL_SIZE)
    size += full * sum(tails) + sum(tails[:part])
    digits, low = 7, 0
    while low < rows:
        high = min(rows, 10**digits)
        size += (high - low) * (2 * (digits + 8) + 15)
        low, digits = high, digits + 1
    return size


MEMBER_COLUMNS = ("userId", "email", "firstSeen", "country", "note")


def csv_chunks(
    columns: t.Sequence[str], rows: t.Iterable[t.Mapping[str, t.Any]]
) -> t.Iterator[bytes]:
    """CSV (header, then rows) as byte chunks of about ``CHUNK_ROWS`` rows."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for count, row in enumerate(rows, start=1):
        writer.writerow([row.get(c, "") for c in columns])
        if count % CHUNK_ROWS == 0:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode()


def gzip_chunks(chunks: t.Iterable[bytes]) -> t.Iterator[bytes]:
    compressor = zlib.compressobj(6, zlib.DEFLATED, 31)
    for chunk in chunks:
        packed = compressor.compress(chunk)
        if packed:
            yield packed
    yield compressor.flush()
