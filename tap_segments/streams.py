"""The base of every stream of the tap: its vendor's client, BATCH messages, state on demand.

Streams only declare (name, keys, replication, schema) and say which client calls give
their records: every request goes through the vendor's client (``self.api``, one per vendor
per run, created by the tap and shared by that vendor's streams), which owns the HTTP
session, the credentials and their scope, the status and retry policy, the list calls
cached for the run, and the vendor's export vocabulary.
"""

from __future__ import annotations

import typing as t

from tap_segments.batches import BatchesMixin

if t.TYPE_CHECKING:
    from singer_sdk import Tap

    from tap_segments.settings import CommonSettings


class VendorStream(BatchesMixin):
    """Base of every stream: ``self.api`` is the vendor's client."""

    #: Whether every run emits the stream's whole table. Only then may the SDK's
    #: ACTIVATE_VERSION (``emit_activate_version_messages``) let a target drop the rows of
    #: earlier runs: a stream that emits only what is new since its state must never do so.
    full_snapshot: t.ClassVar[bool] = True

    def __init__(self, tap: Tap, api: t.Any) -> None:
        self.api = api
        super().__init__(tap=tap)

    @property
    def common(self) -> CommonSettings:
        """The settings every vendor shares, typed and defaulted."""
        return t.cast("CommonSettings", self.api.common)

    @property
    def emit_activate_version_messages(self) -> bool:
        return self.full_snapshot and bool(super().emit_activate_version_messages)

    def flush_state(self) -> None:
        """Write a STATE message now."""
        self.write_state_now()
