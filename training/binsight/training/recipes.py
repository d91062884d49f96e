"""Feature recipes: which tapped layers, pooled how, make up the vector the head sees.

Layer taps are named per backbone (``stage4``, ``stage5``, ``final``; see
:data:`binsight.training.backbone.BACKBONES`); poolings are ``avg`` (global average, C values) and
``grid2`` (average over a 2x2 grid, 4C values, keeping coarse layout: where in the frame the
waste is matters for a fill level). A recipe is written ``final:avg+stage5:grid2``.

Extraction computes every tap with every pooling once (the "all" layout) and caches that; the
candidates below are column selections of it, scored by validation without re-extracting.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["POOLS", "Layout", "Recipe", "candidates"]

POOLS = ("avg", "grid2")
_POOL_CELLS = {"avg": 1, "grid2": 4}

# Ordered from simplest to richest; a candidate is offered when the backbone has its taps.
_CANDIDATES = (
    "final:avg",
    "final:grid2",
    "final:avg+stage5:avg",
    "final:avg+stage5:grid2",
    "final:grid2+stage5:grid2",
    "final:avg+stage4:grid2+stage5:grid2",
    "final:avg+stage4:grid2",
)


@dataclass(frozen=True)
class Recipe:
    """An ordered tuple of ``(tap, pool)`` parts."""

    parts: tuple[tuple[str, str], ...]

    @classmethod
    def parse(cls, text: str) -> Recipe:
        parts: list[tuple[str, str]] = []
        for item in text.split("+"):
            tap, _, pool = item.strip().partition(":")
            if pool not in POOLS or not tap:
                raise ValueError(f"bad feature recipe part {item!r} in {text!r} (want TAP:{'|'.join(POOLS)})")
            parts.append((tap, pool))
        if len(set(parts)) != len(parts):
            raise ValueError(f"feature recipe {text!r} repeats a part")
        return cls(tuple(parts))

    def __str__(self) -> str:
        return "+".join(f"{t}:{p}" for t, p in self.parts)

    @property
    def taps(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(t for t, _ in self.parts))


@dataclass(frozen=True)
class Layout:
    """Columns of the cached "all" vector: for each tap in order, ``avg`` then ``grid2``."""

    taps: tuple[str, ...]
    channels: tuple[int, ...]

    @property
    def dim(self) -> int:
        return sum(c * sum(_POOL_CELLS.values()) for c in self.channels)

    def slice(self, tap: str, pool: str) -> slice:
        start = 0
        for t, c in zip(self.taps, self.channels, strict=True):
            for p in POOLS:
                width = c * _POOL_CELLS[p]
                if (t, p) == (tap, pool):
                    return slice(start, start + width)
                start += width
        raise KeyError(f"tap {tap!r} pooled {pool!r} is not in this layout ({', '.join(self.taps)})")

    def columns(self, recipe: Recipe) -> np.ndarray:
        """Indices into the "all" vector, in the recipe's order."""
        return np.concatenate([np.arange(self.dim)[self.slice(t, p)] for t, p in recipe.parts])

    def has(self, recipe: Recipe) -> bool:
        return all(t in self.taps for t in recipe.taps)


def candidates(layout: Layout) -> list[Recipe]:
    """The recipes offered for validation on this backbone."""
    out = [r for r in map(Recipe.parse, _CANDIDATES) if layout.has(r)]
    return out
