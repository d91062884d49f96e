"""Collections are sharp sustained drops; one bad frame is not a collection."""

from __future__ import annotations

import numpy as np

from binsight.server.forecast.collections import detect_collections


def test_two_collections_found_once_each() -> None:
    """Two emptyings in a noisy saw-tooth are found at the first reading after each."""
    rng = np.random.default_rng(0)
    cycle = np.linspace(0.05, 0.9, 30)
    fill = np.concatenate([cycle, cycle, cycle[:10]]) + rng.normal(0, 0.02, 70)
    assert detect_collections(fill, 0.3) == [30, 60]


def test_single_bad_frame_is_not_a_collection() -> None:
    """A lone low reading inside a rising series (someone's hand over the lens) is ignored."""
    fill = np.linspace(0.2, 0.8, 20)
    fill[10] = 0.0
    assert detect_collections(fill, 0.3) == []


def test_partial_collection_below_threshold_ignored() -> None:
    """A drop smaller than min_drop (compaction, a half-emptied bin) is not a collection."""
    fill = np.array([0.5, 0.55, 0.6, 0.45, 0.47, 0.5, 0.52])
    assert detect_collections(fill, 0.3) == []
