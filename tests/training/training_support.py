"""Helpers shared by the training tests (imported by conftest and the test modules)."""

from __future__ import annotations

import csv
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np


def copy_set(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def read_rows(labels: Path) -> list[dict[str, str]]:
    with labels.open(newline="") as fh:
        return list(csv.DictReader(fh))


def write_rows(labels: Path, rows: list[dict[str, str]], columns: list[str] | None = None) -> None:
    columns = columns or list(rows[0])
    with labels.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=columns)
        w.writeheader()
        w.writerows(rows)


@dataclass
class Fitted:
    data: Path
    model: Path  # the int8 model (the --out file)
    fp32: Path
    report: dict[str, Any]
    report_path: Path


def regression_data(n: int = 120, d: int = 40, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Wide features, a target mostly linear in five of them (squashed to 0..1), groups of ten."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)).astype(np.float32) * rng.uniform(0.1, 5, d).astype(np.float32)
    w = np.zeros(d)
    w[:5] = rng.normal(size=5)
    y = 1 / (1 + np.exp(-(x @ w) / 4))
    return x, y, np.repeat(np.arange(n // 10), 10)


def class_data(n_per: int = 30, k: int = 3, d: int = 30, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """``k`` Gaussian classes of ``n_per`` samples each around random centres."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(k, d)) * 1.5
    y = np.repeat(np.arange(k), n_per)
    return (centres[y] + rng.normal(size=(len(y), d))).astype(np.float32), y
