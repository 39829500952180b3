"""The export state of a stream: jobs in flight and files already read, inside its Singer state.

Two maps, kept in the stream's own state so that a STATE message carries them::

    "exports_in_flight": {"<export key>": {"job_id": ..., "started_at": ..., "data": {...}}}
    "files_done": {"<export key>": ["<file name>", ...]}

A job enters ``exports_in_flight`` the moment it is triggered (and a STATE is written at
once), and leaves it when every record of it was emitted. ``files_done`` remembers the files
of an export whose rows were all emitted, per file, for exports whose files outlive the
run (Acoustic keeps READY_FOR_DOWNLOAD files until the job is marked complete).

Only ``ExportState`` reads or writes these keys. A state the tap did not write (edited by
hand, cut, from another tool) is checked on load: a malformed entry is dropped with a
warning naming it; a map of the wrong type stops the run with one line naming the state.
"""

from __future__ import annotations

import datetime as dt
import logging
import typing as t
from dataclasses import dataclass, field

from tap_segments.errors import StateError
from tap_segments.timeutil import iso, now, parse_timestamp

IN_FLIGHT_KEY = "exports_in_flight"
FILES_DONE_KEY = "files_done"


@dataclass
class ExportJob:
    """A triggered export as recorded in state; ``data`` is whatever the vendor needs to poll."""

    key: str
    job_id: str
    started_at: str
    data: dict[str, t.Any] = field(default_factory=dict)

    @classmethod
    def new(cls, key: str, job_id: str, **data: t.Any) -> ExportJob:
        """A job triggered now."""
        return cls(key=key, job_id=str(job_id), started_at=iso(now()), data=data)

    def to_state(self) -> dict[str, t.Any]:
        return {"job_id": self.job_id, "started_at": self.started_at, "data": self.data}

    @classmethod
    def from_state(cls, key: str, value: t.Any) -> ExportJob:
        """The job an entry describes; ``ValueError`` saying what is wrong with it."""
        if not isinstance(value, dict):
            raise ValueError("it is not an object")
        job_id = value.get("job_id")
        if job_id in (None, ""):
            raise ValueError("it has no job_id")
        started = value.get("started_at")
        try:
            parse_timestamp(str(started))
        except ValueError:
            raise ValueError(f"its started_at {started!r} is not an ISO-8601 date-time") from None
        data = value.get("data") or {}
        if not isinstance(data, dict):
            raise ValueError("its data is not an object")
        return cls(key=key, job_id=str(job_id), started_at=str(started), data=dict(data))

    def age(self, moment: dt.datetime | None = None) -> dt.timedelta:
        return (moment or now()) - parse_timestamp(self.started_at)


class ExportState:
    """Jobs in flight and files done of one stream, read and written in its state dict.

    ``save`` is called after every change that must survive a crash (it writes a STATE
    message). ``where`` names the state in messages ("state of stream X").
    """

    def __init__(
        self,
        stream_state: dict[str, t.Any],
        *,
        save: t.Callable[[], None],
        where: str,
        logger: logging.Logger,
    ) -> None:
        self._state = stream_state
        self._save = save
        self.where = where
        self.logger = logger
        self._jobs = self._load_jobs()
        self._files = self._load_files()

    # -- load -------------------------------------------------------------------------

    def _map(self, key: str) -> dict[str, t.Any]:
        value = self._state.setdefault(key, {})
        if not isinstance(value, dict):
            raise StateError(
                f"The {self.where} has {key!r} as {type(value).__name__}, not an object; "
                "fix or remove that key (or start without --state) and run again."
            )
        return value

    def _load_jobs(self) -> dict[str, t.Any]:
        jobs = self._map(IN_FLIGHT_KEY)
        for key, value in list(jobs.items()):
            try:
                ExportJob.from_state(key, value)
            except ValueError as exc:
                self.logger.warning(
                    "The %s has an export in flight for %s that cannot be resumed (%s); "
                    "ignoring it: that export is triggered afresh.",
                    self.where,
                    key,
                    exc,
                )
                del jobs[key]
        return jobs

    def _load_files(self) -> dict[str, t.Any]:
        if FILES_DONE_KEY not in self._state:
            return {}
        files = self._map(FILES_DONE_KEY)
        for key, names in list(files.items()):
            if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
                self.logger.warning(
                    "The %s lists the files done of %s as %r, not a list of names; ignoring "
                    "it: those files are read again.",
                    self.where,
                    key,
                    names,
                )
                del files[key]
        return files

    # -- jobs in flight ---------------------------------------------------------------

    def job(self, key: str) -> ExportJob | None:
        value = self._jobs.get(key)
        return ExportJob.from_state(key, value) if value is not None else None

    def jobs_under(self, prefix: str) -> dict[str, ExportJob]:
        """Jobs in flight whose key starts with ``prefix``, by the rest of their key."""
        return {
            key[len(prefix) :]: ExportJob.from_state(key, value)
            for key, value in self._jobs.items()
            if key.startswith(prefix)
        }

    def keys(self) -> list[str]:
        return list(self._jobs)

    def remember(self, job: ExportJob) -> None:
        self._jobs[job.key] = job.to_state()
        self._save()

    def forget_job(self, key: str) -> None:
        """The job's records were all emitted; its files done stay remembered."""
        if self._jobs.pop(key, None) is not None:
            self._save()

    def forget(self, key: str) -> None:
        """Forget the job and its files done."""
        dropped = self._jobs.pop(key, None) is not None
        dropped = self._files.pop(key, None) is not None or dropped
        if dropped:
            self._sync_files_key()
            self._save()

    # -- files done -------------------------------------------------------------------

    def files_done(self, key: str) -> list[str]:
        return list(self._files.get(key, []))

    def file_done(self, key: str, name: str) -> None:
        self._files.setdefault(key, []).append(name)
        self._sync_files_key()
        self._save()

    def keys_with_files(self) -> list[str]:
        return list(self._files)

    def _sync_files_key(self) -> None:
        """Once a stream has files done, its state keeps the map (empty or not)."""
        if self._files or FILES_DONE_KEY in self._state:
            self._state[FILES_DONE_KEY] = self._files
