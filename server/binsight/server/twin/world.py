"""The twin's world: where the bins are, how big they are and how fast each one fills, hour by hour.

Everything is drawn from one seed, before any policy runs, so every policy meets the same city. A bin's
fill is its *level*: litres thrown in since its last lift over its capacity. Past 1.0 it overflows (the
extra lies beside it), which is what the overflow figures count.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import numpy as np
from numpy.typing import NDArray

__all__ = ["SIZES_L", "World", "WorldConfig", "build_world"]

#: Bin sizes (litres), how common each is, and the minutes one lift takes.
SIZES_L = (240.0, 660.0, 1100.0, 3000.0)
SIZE_SHARE = (0.35, 0.30, 0.25, 0.10)
SERVICE_MIN = (1.0, 1.5, 2.0, 4.0)
#: Mean daily fill rates are log-uniform over this range: an order of magnitude between bins.
RATE_RANGE = (0.03, 0.30)
#: Weekday (Mon..Sun) shapes: homes fill more at weekends, shops and offices on weekdays.
WEEKDAY_SHAPES = {
    "home": (0.9, 0.9, 0.9, 0.95, 1.0, 1.2, 1.15),
    "shop": (1.1, 1.1, 1.1, 1.1, 1.2, 1.1, 0.3),
}
#: Hour-of-day shapes (24 values, normalised later): waste comes in by day, not at night.
HOUR_SHAPES = {
    "home": tuple(
        0.2 if h < 6 else 1.6 if h in (7, 8, 18, 19, 20) else 1.0 if h < 23 else 0.4 for h in range(24)
    ),
    "shop": tuple(0.05 if h < 8 or h > 19 else 1.8 for h in range(24)),
}
#: How the holiday changes filling per kind, and the market day's multiplier near the market.
HOLIDAY_FACTOR = {"home": 1.5, "shop": 0.3}
MARKET_FACTOR = 4.0
MARKET_RADIUS_M = 700.0
#: Day-to-day log-normal spread of each bin's rate, and hour-to-hour.
DAY_SIGMA = 0.25
HOUR_SIGMA = 0.3
CITY = (52.37, 4.89)
#: The twin's first day (a Monday): warm-up starts here.
START = date(2026, 1, 5)


@dataclass(frozen=True)
class WorldConfig:
    """How big the city is and how long it runs."""

    bins: int = 300
    weeks: int = 8
    seed: int = 0
    warmup_days: int = 14
    radius_km: float = 5.0
    rate_range: tuple[float, float] = RATE_RANGE
    market_factor: float = MARKET_FACTOR


@dataclass
class World:
    """Bins, sites and the hourly inflow of every bin (fraction of its capacity per hour)."""

    cfg: WorldConfig
    ids: list[str]
    lat: NDArray[np.float64]
    lon: NDArray[np.float64]
    capacity_l: NDArray[np.float64]
    service_min: NDArray[np.float64]
    kind: list[str]
    mean_rate: NDArray[np.float64]  # fraction of capacity per day, averaged over the run
    inflow: NDArray[np.float64]  # (bins, hours)
    depots: list[tuple[str, float, float]]
    disposal: list[tuple[str, float, float]]
    holiday: date
    market_day: date
    market: tuple[float, float]
    start: date = START
    initial_level: NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))

    @property
    def days(self) -> int:
        return self.cfg.warmup_days + 7 * self.cfg.weeks

    @property
    def n(self) -> int:
        return len(self.ids)

    def day(self, d: int) -> date:
        return self.start + timedelta(days=d)

    def ts_ms(self, hour: float) -> int:
        """Epoch ms of ``hour`` hours after the start (UTC midnight of the first day)."""
        base = datetime(self.start.year, self.start.month, self.start.day, tzinfo=UTC).timestamp()
        return round((base + hour * 3600.0) * 1000)

    def inflow_between(self, h0: float, h1: float) -> NDArray[np.float64]:
        """Level each bin gains between hours ``h0`` and ``h1`` (fractions of hours pro rata)."""
        h1 = min(h1, self.inflow.shape[1])
        if h1 <= h0:
            return np.zeros(self.n)
        a, b = math.floor(h0), math.ceil(h1)
        total = self.inflow[:, a:b].sum(axis=1)
        total -= self.inflow[:, a] * (h0 - a)
        total -= self.inflow[:, b - 1] * (b - h1)
        out: NDArray[np.float64] = total
        return out


def _offset(
    lat0: float, lon0: float, r_m: NDArray[np.float64], theta: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    dlat = r_m * np.cos(theta) / 111_320.0
    dlon = r_m * np.sin(theta) / (111_320.0 * math.cos(math.radians(lat0)))
    return lat0 + dlat, lon0 + dlon


def _places(cfg: WorldConfig, rng: np.random.Generator) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Bins in neighbourhoods: cluster centres over the city, bins spread around each."""
    n_clusters = max(3, cfg.bins // 25)
    r_c = cfg.radius_km * 1000 * np.sqrt(rng.uniform(0, 1, n_clusters))
    clat, clon = _offset(*CITY, r_c, rng.uniform(0, 2 * math.pi, n_clusters))
    which = rng.integers(0, n_clusters, cfg.bins)
    r_b = np.abs(rng.normal(0, 400.0, cfg.bins))
    lat = np.empty(cfg.bins)
    lon = np.empty(cfg.bins)
    theta = rng.uniform(0, 2 * math.pi, cfg.bins)
    for k in range(cfg.bins):
        la, lo = _offset(float(clat[which[k]]), float(clon[which[k]]), r_b[k : k + 1], theta[k : k + 1])
        lat[k], lon[k] = float(la[0]), float(lo[0])
    return lat, lon


def _sites(cfg: WorldConfig) -> tuple[list[tuple[str, float, float]], list[tuple[str, float, float]]]:
    """One depot and one disposal site per 1,000 bins (at least one), at the city's edge."""
    n = max(1, math.ceil(cfg.bins / 1000))
    angles = np.linspace(0, 2 * math.pi, n, endpoint=False)
    r = np.full(n, cfg.radius_km * 1000 * 0.8)
    dlat, dlon = _offset(*CITY, r, angles)
    tlat, tlon = _offset(*CITY, r * 1.2, angles + math.pi / 3)
    depots = [(f"depot-{i + 1}", float(dlat[i]), float(dlon[i])) for i in range(n)]
    tips = [(f"tip-{i + 1}", float(tlat[i]), float(tlon[i])) for i in range(n)]
    return depots, tips


def _day_factors(
    world_days: int, start: date, holiday: date, market_day: date
) -> list[tuple[int, bool, bool]]:
    out = []
    for d in range(world_days):
        day = start + timedelta(days=d)
        out.append((day.weekday(), day == holiday, day == market_day))
    return out


def _inflow(
    kinds: list[str],
    rate: NDArray[np.float64],
    near_market: NDArray[np.float64],
    days: list[tuple[int, bool, bool]],
    rng: np.random.Generator,
) -> NDArray[np.float64]:
    """Hourly inflow (fraction of capacity) for every bin: rate x weekday x hour x events x noise."""
    n, hours = len(kinds), 24 * len(days)
    out = np.empty((n, hours))
    is_home = np.array([k == "home" for k in kinds])
    shapes = {k: np.asarray(v) / np.mean(v) for k, v in HOUR_SHAPES.items()}
    weeks = {k: np.asarray(v) / np.mean(v) for k, v in WEEKDAY_SHAPES.items()}
    hour_shape = np.where(is_home[:, None], shapes["home"][None, :], shapes["shop"][None, :])
    for d, (wd, holiday, market) in enumerate(days):
        f = np.where(is_home, weeks["home"][wd], weeks["shop"][wd])
        if holiday:
            f = f * np.where(is_home, HOLIDAY_FACTOR["home"], HOLIDAY_FACTOR["shop"])
        if market:
            f = f * near_market
        day_noise = rng.lognormal(-(DAY_SIGMA**2) / 2, DAY_SIGMA, n)
        hour_noise = rng.lognormal(-(HOUR_SIGMA**2) / 2, HOUR_SIGMA, (n, 24))
        out[:, 24 * d : 24 * (d + 1)] = (rate * f * day_noise)[:, None] / 24.0 * hour_shape * hour_noise
    return out


def build_world(cfg: WorldConfig) -> World:
    """Draw a city from ``cfg.seed``: bins, sizes, kinds, rates, events and the hourly inflow."""
    rng = np.random.default_rng([cfg.seed, 14])
    lat, lon = _places(cfg, rng)
    size = rng.choice(len(SIZES_L), cfg.bins, p=SIZE_SHARE)
    kinds = ["shop" if u < 0.3 else "home" for u in rng.uniform(0, 1, cfg.bins)]
    rate = np.exp(rng.uniform(math.log(cfg.rate_range[0]), math.log(cfg.rate_range[1]), cfg.bins))
    depots, tips = _sites(cfg)
    n_days = cfg.warmup_days + 7 * cfg.weeks
    # The holiday and the market day fall in the measured weeks, on a Thursday and a Saturday.
    first = START + timedelta(days=cfg.warmup_days)
    holiday = first + timedelta(days=min(7 * cfg.weeks - 1, 10))
    market_day = first + timedelta(days=min(7 * cfg.weeks - 1, 5 if cfg.weeks < 3 else 19))
    m = int(rng.integers(0, cfg.bins))
    market = (float(lat[m]), float(lon[m]))
    dy = (lat - market[0]) * 111_320.0
    dx = (lon - market[1]) * 111_320.0 * math.cos(math.radians(market[0]))
    near = np.where(np.hypot(dx, dy) <= MARKET_RADIUS_M, cfg.market_factor, 1.0)
    inflow = _inflow(kinds, rate, near, _day_factors(n_days, START, holiday, market_day), rng)
    ids = [f"bin-{k + 1:05d}" for k in range(cfg.bins)]
    return World(
        cfg=cfg,
        ids=ids,
        lat=lat,
        lon=lon,
        capacity_l=np.asarray([SIZES_L[s] for s in size]),
        service_min=np.asarray([SERVICE_MIN[s] for s in size]),
        kind=kinds,
        mean_rate=inflow.sum(axis=1) / n_days,
        inflow=inflow,
        depots=depots,
        disposal=tips,
        holiday=holiday,
        market_day=market_day,
        market=market,
        initial_level=rng.uniform(0.0, 0.6, cfg.bins),
    )
