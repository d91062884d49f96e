"""Start-up library pages released: resident memory drops, nothing private is touched, all still works."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from binsight.device.memory import _Mapping, _mappings, memory_use, releasable

linux_only = pytest.mark.skipif(not Path("/proc/self/smaps").exists(), reason="needs Linux /proc/self/smaps")


def _m(perms: str, path: str = "/usr/lib/libx.so", anon: int = 0, rss: int = 8) -> _Mapping:
    return _Mapping(0x1000, 0x9000, perms, path, rss_kb=rss, anon_kb=anon)


def test_only_clean_read_only_private_file_mappings_are_releasable() -> None:
    assert releasable(_m("r-xp")) and releasable(_m("r--p"))
    assert not releasable(_m("rw-p")), "writable: may hold data"
    assert not releasable(_m("r--p", anon=4)), "relocated (RELRO) pages are private copies"
    assert not releasable(_m("r--s")), "shared mappings are left alone"
    assert not releasable(_m("r-xp", path="")), "anonymous memory"
    assert not releasable(_m("r-xp", path="[vdso]"))
    assert not releasable(_m("r--p", path="/tmp/x (deleted)"))
    assert not releasable(_m("r--p", rss=0)), "nothing resident: nothing to do"


def test_smaps_parsing() -> None:
    text = (
        "7f00-7f10 r-xp 00000000 08:01 123 /usr/lib/lib a.so\n"
        "Size: 64 kB\nRss: 12 kB\nAnonymous: 0 kB\n"
        "7f10-7f20 rw-p 00000000 00:00 0 \n"
        "Rss: 4 kB\nAnonymous: 4 kB\n"
    )
    a, b = _mappings(text.splitlines(keepends=True))
    assert (a.start, a.end, a.perms, a.path) == (0x7F00, 0x7F10, "r-xp", "/usr/lib/lib a.so")
    assert (a.rss_kb, a.anon_kb) == (12, 0)
    assert (b.path, b.rss_kb, b.anon_kb) == ("", 4, 4)


_PROBE = """
import json, sys
import cv2, numpy as np
from binsight.device.inference import FillModel
from binsight.device.memory import memory_use, release_startup_pages
from binsight.device.quality import assess
from binsight.device.config import QualityConfig
model = FillModel(sys.argv[1])
frame = np.random.default_rng(0).integers(0, 255, (480, 640, 3), dtype=np.uint8)
def run():
    ok, jpeg = cv2.imencode(".jpg", frame)
    return [model.predict([frame])[0].fill, assess(frame, QualityConfig()).sharpness, len(jpeg)]
first = run()
before = memory_use()
released = release_startup_pages()
after = memory_use()
again = [run() for _ in range(3)]
print(json.dumps({"first": first, "again": again, "released": released,
                  "before": [before.rss_mb, before.anon_mb], "after": [after.rss_mb, after.anon_mb]}))
"""


@linux_only
def test_release_lowers_resident_memory_and_everything_still_works(model_v1: Path) -> None:
    import json

    out = subprocess.run([sys.executable, "-c", _PROBE, str(model_v1)], capture_output=True, text=True,
                         timeout=120, check=True)  # fmt: skip
    data = json.loads(out.stdout.strip().splitlines()[-1])
    if data["before"][1] == 0:
        pytest.skip("this kernel does not report Anonymous in smaps_rollup")
    assert data["released"] > 10, data  # OpenCV, ONNX Runtime, numpy: tens of MB of library pages
    assert data["after"][0] < data["before"][0] - 10, data
    assert abs(data["after"][1] - data["before"][1]) < 2, "anonymous memory is never released"
    assert all(r == data["first"] for r in data["again"]), "same results after the release"


@linux_only
def test_memory_use_reports_this_process() -> None:
    use = memory_use()
    assert use is not None and use.rss_mb > use.anon_mb > 0 and use.file_mb > 0
