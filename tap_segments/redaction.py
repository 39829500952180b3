"""Keep secret setting values out of every log line, exception text included.

The tap never puts a secret in a message on purpose (credentials travel in headers, errors
name settings, not values); this filter is the belt to those braces: any log record that
would still contain the value of a setting marked ``secret`` has it replaced by ``***``.
"""

from __future__ import annotations

import logging
import typing as t

MASK = "***"
MIN_SECRET_LENGTH = 4  # shorter values would mask ordinary words


class SecretsFilter(logging.Filter):
    """A handler filter that masks the given secret values in records."""

    def __init__(self, secrets: t.Iterable[str]) -> None:
        super().__init__()
        self.secrets = sorted(
            {s for s in secrets if len(s) >= MIN_SECRET_LENGTH}, key=len, reverse=True
        )

    def scrub(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, MASK)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        scrubbed = self.scrub(message)
        if scrubbed != message:
            record.msg, record.args = scrubbed, None
        if record.exc_info:
            text = logging.Formatter().formatException(record.exc_info)
            record.exc_text = self.scrub(text)
            record.exc_info = None
        return True


def secret_values(config: t.Mapping[str, t.Any], schema: t.Mapping[str, t.Any]) -> list[str]:
    """The configured values of every setting the schema marks ``secret``."""
    properties = schema.get("properties", {})
    return [
        str(config[name])
        for name, spec in properties.items()
        if spec.get("secret") and config.get(name)
    ]


def install(secrets: t.Iterable[str]) -> None:
    """Mask ``secrets`` in everything the root logger's handlers write."""
    secrets = list(secrets)
    if not secrets:
        return
    secrets_filter = SecretsFilter(secrets)
    for handler in logging.getLogger().handlers:
        handler.addFilter(secrets_filter)
