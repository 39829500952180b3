"""The floor: what plain Python does with the same export file, for comparison with the tap.

Downloads the file with ``urllib`` (gunzipping it when its name ends in ``.gz``), parses it
with ``csv``, and writes ``json.dumps`` of each row (a dict of the header's columns) to
/dev/null. Prints ``{"rows": N, "seconds": S}`` on
stdout, ``S`` being the time from opening the URL to the last row written.

    python bench/floor.py http://127.0.0.1:PORT/indicative/files/EXPORT.csv
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
import sys
import time
import urllib.request


def main(url: str) -> None:
    started = time.perf_counter()
    rows = 0
    with urllib.request.urlopen(url) as response, open(os.devnull, "w") as out:
        binary = gzip.GzipFile(fileobj=response) if url.endswith(".gz") else response
        reader = csv.reader(io.TextIOWrapper(binary, encoding="utf-8", newline=""))
        header = next(reader)
        for values in reader:
            out.write(json.dumps(dict(zip(header, values, strict=False))) + "\n")
            rows += 1
    print(json.dumps({"rows": rows, "seconds": time.perf_counter() - started}))


if __name__ == "__main__":
    main(sys.argv[1])
