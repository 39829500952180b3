"""Keep credentials out of everything the tap prints, in every form they can take.

The tap never puts a credential in a message on purpose (credentials travel in headers,
errors name settings, not values). This module is the belt to those braces, for text the
tap does not write itself (a vendor's error body that echoes the request's headers, an
exception from a library):

- the values of secret settings, raw and URL-encoded;
- every credential header value the vendor clients send (``Basic <base64 of key:token>``,
  ``Token token="..."``, ``Bearer ...``, ``public-api-key``), registered by the clients;
- any ``Authorization``-style credential, known or not: ``Basic <base64>``,
  ``Bearer <token>``, ``Token token="..."``, and presigned-URL signatures.

``scrub(text)`` masks them; ``install()`` puts a filter on the root logger's handlers so
every log line, exception text included, is scrubbed.
"""

from __future__ import annotations

import base64
import logging
import re
import threading
import typing as t
from urllib.parse import quote, quote_plus

MASK = "***"
MIN_SECRET_LENGTH = 4  # shorter values would mask ordinary words

#: Credentials recognisable by their shape, whoever they belong to; group 1 is kept. A
#: Basic or Bearer value must hold an upper-case letter, a digit or base64 punctuation, so
#: that prose ("Basic auth user") is left alone.
_OPAQUE = r"(?=[^\s\"',;]*[A-Z0-9+/=_-])[^\s\"',;]{4,}"
CREDENTIAL_PATTERNS = (
    re.compile(r"(?i:\b(Basic\s+))" + _OPAQUE),
    re.compile(r"(?i:\b(Bearer\s+))" + _OPAQUE),
    re.compile(r"(?i)\b(Token\s+token=)(?:\"[^\"]*\"|[^\s,;]+)"),
    re.compile(r"(?i)(public-api-key[\"']?\s*[:=]\s*[\"']?)[^\s\"',;}]+"),
    re.compile(
        r"(?i)([?&](?:X-Amz-Signature|X-Amz-Credential|X-Amz-Security-Token|Signature|sig)=)[^&\s\"']+"
    ),
)

_lock = threading.Lock()
_secrets: list[str] = []


def _forms(secret: str) -> set[str]:
    forms = {secret, quote(secret, safe=""), quote_plus(secret)}
    return {form for form in forms if len(form) >= MIN_SECRET_LENGTH}


def register(*values: str | None) -> None:
    """Mask these values (and their URL-encoded forms) from now on."""
    added = set()
    for value in values:
        if value and len(value) >= MIN_SECRET_LENGTH:
            added |= _forms(value)
    if not added:
        return
    with _lock:
        merged = set(_secrets) | added
        _secrets[:] = sorted(merged, key=len, reverse=True)


def basic_pair(user: str, password: str) -> str:
    """The base64 credentials of HTTP Basic auth, as sent (registered for masking too)."""
    return base64.b64encode(f"{user}:{password}".encode()).decode("ascii")


def scrub(text: str) -> str:
    """``text`` with every known secret and every credential-shaped token masked."""
    for secret in _secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    for pattern in CREDENTIAL_PATTERNS:
        text = pattern.sub(rf"\g<1>{MASK}", text)
    return text


class SecretsFilter(logging.Filter):
    """A handler filter that scrubs every record it passes."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        scrubbed = scrub(message)
        if scrubbed != message:
            record.msg, record.args = scrubbed, None
        if record.exc_info:
            text = logging.Formatter().formatException(record.exc_info)
            record.exc_text = scrub(text)
            record.exc_info = None
        return True


_FILTER = SecretsFilter()


def install(secrets: t.Iterable[str] = ()) -> None:
    """Register ``secrets`` and scrub everything the root logger's handlers write."""
    register(*secrets)
    for handler in logging.getLogger().handlers:
        if _FILTER not in handler.filters:
            handler.addFilter(_FILTER)
