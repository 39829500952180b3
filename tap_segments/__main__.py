"""Allow ``python -m tap_segments`` as well as the ``tap-segments`` console script."""

from tap_segments.tap import cli

cli()
