"""Readers for the literature's benchmark formats: VRPLIB CVRP (EUC_2D) and Solomon VRPTW.

Cost conventions (the ones the best-known solutions in the ``.sol`` files use):

- CVRP (X set, Uchoa et al. 2017): Euclidean distance rounded to the nearest integer per edge.
- Solomon VRPTW: Euclidean distance truncated to one decimal per edge (the DIMACS convention);
  travel time equals distance. Stored here in tenths, so matrices stay integer, with
  ``cost_scale = 10``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from binsight.errors import DataError
from binsight.server.routing.instance import Instance, IntMatrix, Job, Site, Vehicle

__all__ = ["euclidean", "read_cvrp", "read_instance_file", "read_solomon"]

logger = logging.getLogger(__name__)


def euclidean(xy: np.ndarray) -> np.ndarray:
    """Pairwise Euclidean distances between the rows of ``xy`` (float)."""
    diff = xy[:, None, :] - xy[None, :, :]
    out: np.ndarray = np.sqrt((diff**2).sum(axis=-1))
    return out


def _read(path: Path, fmt: str) -> dict[str, Any]:
    import vrplib

    try:
        data: dict[str, Any] = vrplib.read_instance(path, instance_format=fmt, compute_edge_weights=False)
    except FileNotFoundError as exc:
        raise DataError(f"{path}: no such instance file") from exc
    except Exception as exc:  # vrplib raises bare ValueError/IndexError/KeyError on malformed files
        raise DataError(f"{path}: not a readable {fmt} instance: {exc}") from exc
    return data


def read_cvrp(path: str | Path) -> Instance:
    """Read a VRPLIB CVRP file with ``EDGE_WEIGHT_TYPE: EUC_2D``; the fleet is unlimited.

    Raises
    ------
    DataError
        The file is missing, malformed, not EUC_2D, or has no depot/demand/capacity.
    """
    path = Path(path)
    data = _read(path, "vrplib")
    ewt = str(data.get("edge_weight_type", "")).upper()
    if ewt != "EUC_2D":
        raise DataError(f"{path}: EDGE_WEIGHT_TYPE {ewt or '(missing)'} not supported; only EUC_2D")
    for key in ("node_coord", "demand", "capacity"):
        if key not in data:
            raise DataError(f"{path}: missing {key.upper()} section")
    xy = np.asarray(data["node_coord"], dtype=float)
    demand = np.asarray(data["demand"], dtype=np.int64)
    depots = [int(d) for d in np.atleast_1d(data.get("depot", [0]))]
    if len(depots) != 1:
        raise DataError(f"{path}: {len(depots)} depots; CVRP files with one depot are supported")
    if len(demand) != len(xy):
        raise DataError(f"{path}: DEMAND_SECTION has {len(demand)} rows, NODE_COORD_SECTION {len(xy)}")
    capacity = int(data["capacity"])
    depot = depots[0]
    dist: IntMatrix = np.floor(euclidean(xy) + 0.5).astype(np.int64)
    clients = []
    for i in range(len(xy)):
        if i == depot:
            continue
        if demand[i] > capacity:
            raise DataError(f"{path}: customer {i + 1} demand {demand[i]} exceeds capacity {capacity}")
        clients.append(Job(id=str(i), loc=i, demand=int(demand[i])))
    return Instance(
        name=str(data.get("name", path.stem)),
        kind="cvrp",
        dist=dist,
        dur=dist.copy(),
        depots=[Site(id=str(depot), loc=depot)],
        clients=clients,
        # X instances put no limit on the fleet; one truck per customer is "unlimited".
        vehicles=[Vehicle(id="vehicle", capacity=capacity, count=max(1, len(clients)))],
        xy=xy,
    )


def read_solomon(path: str | Path) -> Instance:
    """Read a Solomon VRPTW ``.txt`` file; distances and times in tenths (DIMACS truncation).

    Raises
    ------
    DataError
        The file is missing or malformed, or a customer cannot be served at all.
    """
    path = Path(path)
    data = _read(path, "solomon")
    xy = np.asarray(data["node_coord"], dtype=float)
    demand = np.asarray(data["demand"], dtype=np.int64)
    tw = np.asarray(data["time_window"], dtype=float)
    service = np.asarray(data["service_time"], dtype=float)
    capacity = int(data["capacity"])
    # One-decimal truncation of each edge, kept as integer tenths; times scaled alike.
    dist: IntMatrix = np.floor(euclidean(xy) * 10).astype(np.int64)
    tw10 = np.round(tw * 10).astype(np.int64)
    svc10 = np.round(service * 10).astype(np.int64)
    horizon = int(tw10[0, 1])
    clients = []
    for i in range(1, len(xy)):
        if demand[i] > capacity:
            raise DataError(f"{path}: customer {i} demand {demand[i]} exceeds capacity {capacity}")
        if tw10[i, 0] > tw10[i, 1]:
            raise DataError(f"{path}: customer {i} has READY TIME after DUE DATE")
        clients.append(
            Job(
                id=str(i),
                loc=i,
                demand=int(demand[i]),
                service=int(svc10[i]),
                tw_early=int(tw10[i, 0]),
                tw_late=int(tw10[i, 1]),
            )
        )
    return Instance(
        name=str(data.get("name", path.stem)),
        kind="vrptw",
        dist=dist,
        dur=dist.copy(),
        depots=[Site(id="0", loc=0)],
        clients=clients,
        vehicles=[
            Vehicle(
                id="vehicle",
                capacity=capacity,
                count=int(data["vehicles"]),
                tw_early=int(tw10[0, 0]),
                tw_late=horizon,
            )
        ],
        cost_scale=10.0,
        xy=xy,
    )


def read_instance_file(path: str | Path) -> Instance | dict[str, Any]:
    """Read ``path`` by its format: ``.vrp`` CVRP, ``.txt`` Solomon, or ``.json`` binsight problem.

    A binsight problem comes back as its parsed JSON dict (built into an instance by
    :func:`binsight.server.routing.instance_builder.build_instance`, which needs the distance source).
    """
    import json

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".json":
        try:
            obj = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise DataError(f"{path}: no such problem file") from exc
        except (OSError, ValueError) as exc:
            raise DataError(f"{path}: not a readable JSON problem: {exc}") from exc
        if not isinstance(obj, dict):
            raise DataError(f"{path}: a route problem must be a JSON object")
        return obj
    if suffix == ".vrp":
        return read_cvrp(path)
    if suffix == ".txt":
        return read_solomon(path)
    raise DataError(f"{path}: unknown instance format {suffix!r}; expected .vrp, .txt (Solomon) or .json")
