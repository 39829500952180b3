"""``python -m simulator serve``: run the simulator until SIGTERM/SIGINT.

After binding it writes (with ``--env-file``) ``export TAP_SEGMENTS_<SETTING>=...`` lines for
the tap's settings, ``export SIMULATOR_URL=...`` (the vendor API server, with the ``/_sim``
control endpoints) and ``export SIMULATOR_STORAGE_URL=...`` (the storage origin result files
are served from; ``SIMULATOR_STORAGE_URLS`` lists both origins), so a shell can ``source``
them.
"""

from __future__ import annotations

import argparse
import json
import shlex
import signal
import threading
from pathlib import Path

from simulator import SimConfig, Simulator
from simulator.artisan import ArtisanConfig
from simulator.kissmetrics import KissmetricsConfig

SCALES = {
    "small": {"segments": 5, "rows": 50},
    "demo": {"segments": 6, "rows": 2000},
}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m simulator", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve every simulated vendor")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=0)
    serve.add_argument("--env-file", type=Path)
    serve.add_argument("--seed", type=int, default=1)
    serve.add_argument("--scale", choices=sorted(SCALES), default="small")
    serve.add_argument("--segments", type=int, help="Indicative segments (overrides --scale)")
    serve.add_argument("--rows-per-segment", type=int, help="rows of each export file")
    serve.add_argument("--gzip", action="store_true", help="serve export files gzip-compressed")
    serve.add_argument("--export-seconds", type=float, help="an export is done after S seconds")
    serve.add_argument("--polls-to-complete", type=int, default=3)
    serve.add_argument(
        "--all-variants",
        action="store_true",
        help="every documented variant of every vendor at once (SimConfig.all_variants)",
    )
    serve.add_argument(
        "--storage-redirect",
        choices=("same", "other", "loop"),
        help="storage answers a 302 before serving a file (loop: never serves it)",
    )
    serve.add_argument(
        "--s3-endpoint-url",
        help="Indicative files uploaded to this S3 endpoint, filename answered as s3://bucket/key",
    )
    artisan = ArtisanConfig()
    serve.add_argument("--artisan-apps", type=int, default=artisan.apps)
    serve.add_argument("--artisan-segments-per-app", type=int, default=artisan.segments_per_app)
    serve.add_argument(
        "--artisan-members",
        type=int,
        default=artisan.members_per_segment,
        help="rows of each Artisan segment export",
    )
    serve.add_argument("--kissmetrics-reports", type=int, default=KissmetricsConfig().reports)
    return parser.parse_args()


def build_config(args: argparse.Namespace) -> SimConfig:
    scale = SCALES[args.scale]
    config = SimConfig.all_variants(args.seed) if args.all_variants else SimConfig(args.seed)
    config.indicative.segments = args.segments or scale["segments"]
    config.indicative.rows_per_segment = args.rows_per_segment or scale["rows"]
    config.indicative.polls_to_complete = args.polls_to_complete
    config.indicative.export_seconds = args.export_seconds
    config.indicative.gzip = args.gzip
    config.artisan.apps = args.artisan_apps
    config.artisan.segments_per_app = args.artisan_segments_per_app
    config.artisan.members_per_segment = args.artisan_members
    config.kissmetrics.reports = args.kissmetrics_reports
    if args.storage_redirect:
        config.storage.redirect = args.storage_redirect
    if args.s3_endpoint_url:
        config.indicative.filename_style = "s3"
        config.indicative.s3_endpoint_url = args.s3_endpoint_url
    return config


def env_lines(sim: Simulator) -> list[str]:
    lines = [
        f"export SIMULATOR_URL={shlex.quote(sim.url)}",
        f"export SIMULATOR_STORAGE_URL={shlex.quote(sim.storage_url)}",
        f"export SIMULATOR_STORAGE_URLS={shlex.quote(' '.join(sim.storage.origins))}",
    ]
    for key, value in sim.tap_config().items():
        text = json.dumps(value) if isinstance(value, (list, dict, bool)) else str(value)
        lines.append(f"export TAP_SEGMENTS_{key.upper()}={shlex.quote(text)}")
    return lines


def main() -> None:
    args = parse_args()
    sim = Simulator(build_config(args), host=args.host, port=args.port)
    if args.env_file:
        args.env_file.write_text("\n".join(env_lines(sim)) + "\n")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    sim.start()
    print(f"simulator listening on {sim.url}", flush=True)
    stop.wait()
    sim.stop()


if __name__ == "__main__":
    main()
