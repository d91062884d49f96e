"""binsight's route problem JSON (docs/contracts.md), validated with pydantic; unknown keys rejected."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

__all__ = ["BinSpec", "BreakSpec", "DistanceSpec", "RouteProblem", "TruckSpec", "minutes"]

_HHMM = re.compile(r"^(\d{1,2}):(\d{2})$")


def minutes(value: object) -> float:
    """``"HH:MM"`` or a number of minutes after midnight -> minutes after midnight."""
    if isinstance(value, bool):
        raise ValueError("a time is 'HH:MM' or minutes after midnight")
    if isinstance(value, int | float):
        if not 0 <= value <= 48 * 60:
            raise ValueError(f"{value} minutes is outside 0..2880")
        return float(value)
    if isinstance(value, str):
        m = _HHMM.match(value.strip())
        if m and int(m.group(2)) < 60 and int(m.group(1)) <= 48:
            return int(m.group(1)) * 60.0 + int(m.group(2))
    raise ValueError(f"{value!r} is not a time: expected 'HH:MM' or minutes after midnight")


Minutes = Annotated[float, BeforeValidator(minutes)]


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class DistanceSpec(_Spec):
    """How travel distances and times are obtained."""

    method: Literal["haversine", "osrm", "matrix"] = "haversine"
    detour: float = Field(1.3, ge=1.0, description="road distance / great-circle distance")
    speed_kmh: float = Field(30.0, gt=0, le=150, description="average speed (haversine)")
    url: str | None = Field(None, description="OSRM base URL, e.g. http://127.0.0.1:5000")
    profile: str = "driving"
    file: str | None = Field(None, description="matrix JSON: ids, distance_m, duration_s")
    cache_dir: str | None = Field(None, description="OSRM answers cache; default ~/.cache/binsight/osrm")
    block: int = Field(100, ge=2, le=10_000, description="OSRM table request size (max-table-size)")
    timeout_s: float = Field(30.0, gt=0)

    @model_validator(mode="after")
    def _needs(self) -> DistanceSpec:
        if self.method == "osrm" and not self.url:
            raise ValueError("method 'osrm' needs 'url'")
        if self.method == "matrix" and not self.file:
            raise ValueError("method 'matrix' needs 'file'")
        return self


class Place(_Spec):
    id: str = Field(min_length=1)
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)


class DisposalSpec(Place):
    service_min: float = Field(0.0, ge=0)


class BreakSpec(_Spec):
    """A break of ``duration_min`` that must start at most ``after_min`` after the shift starts."""

    after_min: float = Field(ge=0)
    duration_min: float = Field(ge=0)


class TruckSpec(_Spec):
    id: str = Field(min_length=1)
    depot: str
    capacity_l: float = Field(gt=0)
    shift: tuple[Minutes, Minutes] = (0.0, 24 * 60.0)
    break_: BreakSpec | None = Field(None, alias="break")
    max_duration_min: float | None = Field(None, gt=0)
    count: int = Field(1, ge=1, description="identical trucks sharing this description")

    @model_validator(mode="after")
    def _shift(self) -> TruckSpec:
        if self.shift[1] <= self.shift[0]:
            raise ValueError(f"truck {self.id}: shift ends before it starts")
        return self


class BinSpec(Place):
    volume_l: float = Field(ge=0, description="litres to collect (what the bin will hold at service)")
    service_min: float = Field(0.0, ge=0)
    window: tuple[Minutes, Minutes] | None = None
    fill: float | None = Field(None, ge=0, description="forecast fill at service (0..1); null = unknown")
    mandatory: bool = True

    @model_validator(mode="after")
    def _window(self) -> BinSpec:
        if self.window is not None and self.window[1] < self.window[0]:
            raise ValueError(f"bin {self.id}: window closes before it opens")
        return self


class OptionalSpec(_Spec):
    """Prize of an optional bin: the detour it is worth, ``detour_km_at_full * fill ** exponent``."""

    detour_km_at_full: float = Field(3.0, ge=0)
    exponent: float = Field(2.0, ge=0)


class RouteProblem(_Spec):
    name: str = "plan"
    distance: DistanceSpec = Field(default_factory=lambda: DistanceSpec.model_validate({}))
    depots: list[Place] = Field(min_length=1)
    disposal_sites: list[DisposalSpec] = []
    trucks: list[TruckSpec] = Field(min_length=1)
    bins: list[BinSpec] = []
    optional: OptionalSpec = Field(default_factory=lambda: OptionalSpec.model_validate({}))

    @model_validator(mode="after")
    def _refs(self) -> RouteProblem:
        seen: set[str] = set()
        for group in (self.depots, self.disposal_sites, self.bins):
            for p in group:
                if p.id in seen:
                    raise ValueError(f"id {p.id!r} is used twice")
                seen.add(p.id)
        depot_ids = {d.id for d in self.depots}
        truck_ids: set[str] = set()
        for t in self.trucks:
            if t.depot not in depot_ids:
                raise ValueError(f"truck {t.id}: unknown depot {t.depot!r}")
            if t.id in truck_ids:
                raise ValueError(f"truck id {t.id!r} is used twice")
            truck_ids.add(t.id)
        return self
