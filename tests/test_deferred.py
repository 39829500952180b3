"""Start-up imports only what a run needs: the SDK's target and batch-storage dependencies
are deferred (``tap_segments.deferred``) until something uses them."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def run_python(code: str) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
    )
    return json.loads(done.stdout.splitlines()[-1])


def test_a_tap_run_does_not_import_the_sdks_target_and_storage_dependencies():
    loaded = run_python(
        """
        import json, sys
        import tap_segments.tap
        from tap_segments.deferred import _StandIn
        real = [m for m in ("joblib", "upath", "fsspec") if m in sys.modules
                and not isinstance(sys.modules[m], _StandIn)]
        print(json.dumps({"real": real}))
        """
    )
    assert loaded == {"real": []}


def test_a_deferred_name_is_the_real_object_on_first_use():
    found = run_python(
        """
        import json, sys
        import tap_segments
        from upath import UPath            # a stand-in name
        from singer_sdk.helpers._batch import StorageTarget
        url = StorageTarget(root="file:///tmp/somewhere").get_url("f.json.gz")
        import upath                       # now the real module
        from joblib import Parallel, delayed
        results = Parallel(n_jobs=1)(delayed(abs)(x) for x in [-1, -2])
        print(json.dumps({
            "url": url,
            "real": type(sys.modules["upath"]).__name__,
            "cls": upath.UPath.__name__,
            "stand_in_gave": type(UPath("/tmp")).__name__,
            "parallel": results,
        }))
        """
    )
    assert found["url"] == "file:///tmp/somewhere/f.json.gz"
    assert found["real"] == "module" and found["cls"] == "UPath"
    assert found["stand_in_gave"].endswith("Path")
    assert found["parallel"] == [1, 2]


def test_a_module_imported_before_is_left_alone():
    found = run_python(
        """
        import json, sys
        import joblib
        import tap_segments
        print(json.dumps({"same": sys.modules["joblib"] is joblib}))
        """
    )
    assert found == {"same": True}
