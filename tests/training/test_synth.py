"""The synthetic lid-camera renderer: deterministic, label-faithful, free of torch."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from training_support import read_rows

from binsight.errors import DataError
from binsight.training.synth import bin_look, generate, render_frame


def test_render_is_deterministic_bgr_uint8() -> None:
    """Same arguments, same pixels; the frame is uint8 BGR of the requested size."""
    a = render_frame(3, 0.4, seed=1, size=(120, 160))
    b = render_frame(3, 0.4, seed=1, size=(120, 160))
    assert a.dtype == np.uint8 and a.shape == (120, 160, 3)
    assert np.array_equal(a, b)


def test_bin_look_depends_on_seed_and_bin_only() -> None:
    """A bin keeps its look across fills; other bins and other seeds look different."""
    assert bin_look(2, 5) == bin_look(2, 5)
    assert bin_look(2, 5) != bin_look(3, 5)
    assert bin_look(2, 5) != bin_look(2, 6)


def test_surface_grows_as_it_nears_the_lens() -> None:
    """The central region is wall-free when full and shows walls when empty: fill changes the image."""
    empty = render_frame(0, 0.0, seed=0).astype(float)
    full = render_frame(0, 1.0, seed=0).astype(float)
    # Flash fall-off: the distant floor of an empty bin is darker than a surface at the rim.
    h, w = empty.shape[:2]
    centre = (slice(h // 3, 2 * h // 3), slice(w // 3, 2 * w // 3))
    assert empty[centre].mean() < full[centre].mean()


@pytest.mark.parametrize("fill", [-0.1, 1.5, float("nan")])
def test_render_rejects_bad_fill(fill: float) -> None:
    """A fill outside 0..1 is an error naming the value."""
    with pytest.raises(ValueError, match="fill"):
        render_frame(0, fill, seed=0)


def test_generate_writes_labels(tmp_path: Path) -> None:
    """labels.csv has the columns of docs/contracts.md, one row per image, fills within 0..1, bins named."""
    labels = generate(tmp_path / "s", bins=2, per_bin=3, seed=0)
    rows = read_rows(labels)
    assert list(rows[0]) == ["image", "fill", "bin_id", "captured_at"]
    assert len(rows) == 6
    assert {r["bin_id"] for r in rows} == {"bin-0001", "bin-0002"}
    assert all(0.0 <= float(r["fill"]) <= 1.0 for r in rows)
    assert all((tmp_path / "s" / r["image"]).is_file() for r in rows)


def test_generate_refuses_to_overwrite(tmp_path: Path) -> None:
    """An existing labels.csv is never overwritten."""
    generate(tmp_path / "s", bins=1, per_bin=1, seed=0)
    before = (tmp_path / "s" / "labels.csv").read_bytes()
    with pytest.raises(DataError, match="already exists"):
        generate(tmp_path / "s", bins=1, per_bin=2, seed=0)
    assert (tmp_path / "s" / "labels.csv").read_bytes() == before


def test_synth_imports_neither_torch_nor_sklearn() -> None:
    """The device agent and the demo render frames with numpy + OpenCV alone."""
    code = (
        "import sys, binsight.training.synth as s; s.render_frame(0, 0.5, 0); "
        "bad = [m for m in ('torch', 'sklearn', 'timm') if m in sys.modules]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
