"""Feature recipes and the cached vector's column layout."""

from __future__ import annotations

import numpy as np
import pytest

from binsight.training.recipes import Layout, Recipe, candidates


def test_recipe_round_trip() -> None:
    """A recipe prints as it parses."""
    text = "final:avg+stage5:grid2"
    assert str(Recipe.parse(text)) == text


@pytest.mark.parametrize("bad", ["final", "final:max", "final:avg+final:avg", ":avg"])
def test_bad_recipe(bad: str) -> None:
    """Unknown poolings, missing parts and repeats are errors."""
    with pytest.raises(ValueError, match="recipe"):
        Recipe.parse(bad)


def test_layout_columns() -> None:
    """Each tap contributes C (avg) then 4C (grid2) columns, in tap order."""
    layout = Layout(("stage5", "final"), (2, 3))
    assert layout.dim == 2 * 5 + 3 * 5
    assert layout.columns(Recipe.parse("stage5:avg")).tolist() == [0, 1]
    assert layout.columns(Recipe.parse("final:avg+stage5:grid2")).tolist() == [10, 11, 12, *range(2, 10)]
    assert np.array_equal(
        np.sort(layout.columns(Recipe.parse("stage5:avg+stage5:grid2+final:avg+final:grid2"))),
        np.arange(layout.dim),
    )


def test_candidates_need_their_taps() -> None:
    """A backbone without a stage5 tap gets no stage5 candidates."""
    names = [str(r) for r in candidates(Layout(("stage4", "final"), (4, 8)))]
    assert "final:avg" in names and "final:avg+stage4:grid2" in names
    assert not any("stage5" in n for n in names)
