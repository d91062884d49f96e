"""Helpers shared by the training tests (imported by conftest and the test modules)."""

from __future__ import annotations

import csv
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any


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
