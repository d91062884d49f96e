"""The demo's synthetic city: bins, a depot, a disposal site, trucks, and each bin's camera frames.

Everything here is generated from a seed and is labelled synthetic wherever it is shown. Fill
trajectories rise at a per-bin rate (busier bins fill faster), with collections that empty a bin once
it passes its collection point, so the server sees the same shapes it sees in a real fleet: rises,
sharp drops, bins at different stages.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["STREETS", "DemoBin", "DemoCity", "demo_address", "make_city"]

# A synthetic city around this point, the Dom tower of Utrecht (no real bin data is implied).
CENTER = (52.0907, 5.1214)
CITY = "Utrecht"
#: Real streets of Utrecht with a rough midpoint each (read off the city map, good to a few hundred
#: metres). A demo bin's address is the street nearest its synthetic position with a made-up house
#: number: plausible for a driver's manifest, not a geocoded address of any real bin.
STREETS: tuple[tuple[str, float, float], ...] = (
    ("Oudegracht", 52.0900, 5.1200),
    ("Nieuwegracht", 52.0880, 5.1245),
    ("Neude", 52.0928, 5.1192),
    ("Vredenburg", 52.0925, 5.1150),
    ("Lange Viestraat", 52.0937, 5.1170),
    ("Janskerkhof", 52.0935, 5.1225),
    ("Lucasbolwerk", 52.0940, 5.1270),
    ("Wittevrouwenstraat", 52.0955, 5.1265),
    ("Biltstraat", 52.0960, 5.1330),
    ("Nachtegaalstraat", 52.0920, 5.1330),
    ("Burgemeester Reigerstraat", 52.0880, 5.1340),
    ("Maliebaan", 52.0890, 5.1300),
    ("Prins Hendriklaan", 52.0860, 5.1400),
    ("Twijnstraat", 52.0840, 5.1225),
    ("Springweg", 52.0870, 5.1175),
    ("Lange Nieuwstraat", 52.0865, 5.1200),
    ("Tolsteegsingel", 52.0830, 5.1240),
    ("Vondellaan", 52.0800, 5.1170),
    ("Hoogravenseweg", 52.0760, 5.1300),
    ("Balijelaan", 52.0790, 5.1080),
    ("Rijnlaan", 52.0760, 5.1050),
    ("Europalaan", 52.0720, 5.1100),
    ("Marshalllaan", 52.0720, 5.0950),
    ("Croeselaan", 52.0840, 5.1070),
    ("Jaarbeursplein", 52.0880, 5.1090),
    ("Leidseweg", 52.0870, 5.0970),
    ("Kanaalstraat", 52.0930, 5.0990),
    ("Vleutenseweg", 52.0920, 5.0930),
    ("Waterstraat", 52.0960, 5.1140),
    ("Bemuurde Weerd", 52.0990, 5.1165),
    ("Weerdsingel", 52.0990, 5.1200),
    ("Adelaarstraat", 52.1000, 5.1230),
    ("Lauwerecht", 52.1010, 5.1170),
    ("Amsterdamsestraatweg", 52.1030, 5.1030),
    ("Biltsestraatweg", 52.1000, 5.1450),
    ("Waterlinieweg", 52.0950, 5.1500),
    ("Zamenhofdreef", 52.1130, 5.1130),
)
SITES = ("north", "centre", "south")
CAPACITIES_L = (240, 660, 1100)


@dataclass(frozen=True)
class DemoBin:
    bin_id: str
    index: int
    lat: float
    lon: float
    capacity_l: int
    site: str
    fills: tuple[float, ...]  # one per frame, in capture order
    address: str = ""


@dataclass(frozen=True)
class DemoCity:
    bins: tuple[DemoBin, ...]
    depot: tuple[float, float]
    disposal: tuple[float, float]
    trucks: int
    truck_capacity_l: int

    @property
    def truck_ids(self) -> list[str]:
        """``truck-1`` .. ``truck-N``: the ids the demo's server config gives its trucks."""
        return [f"truck-{i + 1}" for i in range(self.trucks)]

    def write_bins_csv(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["bin_id", "lat", "lon", "capacity_l", "name", "address", "site"])
            for b in self.bins:
                w.writerow(
                    [
                        b.bin_id,
                        f"{b.lat:.6f}",
                        f"{b.lon:.6f}",
                        b.capacity_l,
                        f"Demo bin {b.index + 1}",
                        b.address,
                        b.site,
                    ]
                )
        return path


def _offset(lat: float, lon: float, north_km: float, east_km: float) -> tuple[float, float]:
    return (
        lat + north_km / 110.574,
        lon + east_km / (111.320 * math.cos(math.radians(lat))),
    )


def demo_address(lat: float, lon: float, index: int) -> str:
    """ "Oudegracht 112, Utrecht": the embedded street nearest (lat, lon), a house number from ``index``."""
    scale = math.cos(math.radians(lat))
    street = min(STREETS, key=lambda s: (s[1] - lat) ** 2 + ((s[2] - lon) * scale) ** 2)[0]
    return f"{street} {2 + (index * 37) % 140}, {CITY}"


def _trajectory(rng: np.random.Generator, frames: int, step_h: float) -> tuple[float, ...]:
    """Fill per frame (one frame every ``step_h`` simulated hours): rise, collection, rise again."""
    rate_per_hour = rng.uniform(0.2, 0.7) / 24.0
    fill = rng.uniform(0.0, 0.8)
    collect_at = rng.uniform(0.88, 1.0)
    out = []
    for i in range(frames):
        out.append(round(min(fill, 1.0), 4))
        hour = (i * step_h) % 24
        daytime = 1.4 if 7 <= hour <= 20 else 0.4  # people throw things away by day
        fill += rate_per_hour * step_h * daytime * rng.uniform(0.5, 1.5)
        if fill >= collect_at:
            fill = rng.uniform(0.0, 0.05)
            collect_at = rng.uniform(0.88, 1.0)
    return tuple(out)


def make_city(n_bins: int = 30, frames: int = 216, step_h: float = 1 / 3, seed: int = 7) -> DemoCity:
    """A deterministic synthetic city of ``n_bins`` bins within ~4 km of the centre."""
    if n_bins < 1:
        raise ValueError("the demo needs at least one bin")
    rng = np.random.default_rng(seed)
    bins = []
    for i in range(n_bins):
        north, east = rng.normal(0.0, 1.6, size=2)
        lat, lon = _offset(*CENTER, north_km=float(north), east_km=float(east))
        site = SITES[0] if north > 0.8 else SITES[2] if north < -0.8 else SITES[1]
        bins.append(
            DemoBin(
                bin_id=f"demo-{i + 1:04d}",
                index=i,
                lat=lat,
                lon=lon,
                capacity_l=int(rng.choice(CAPACITIES_L)),
                site=site,
                fills=_trajectory(rng, frames, step_h),
                address=demo_address(lat, lon, i),
            )
        )
    return DemoCity(
        bins=tuple(bins),
        depot=_offset(*CENTER, north_km=-3.0, east_km=-3.5),
        disposal=_offset(*CENTER, north_km=2.5, east_km=4.0),
        trucks=max(1, math.ceil(n_bins / 12)),
        truck_capacity_l=8000,
    )
