"""Run the twin: one world, one set of cameras, every policy, day by day through the same hours.

A run starts with :data:`~binsight.server.twin.world.WorldConfig.warmup_days` under the ``fixed``
schedule (lifted without routing and not counted), so every policy starts from the same bins and the
server has the two weeks of history its weekday patterns need. Then, on each service day at
``plan_hour``, the policy's route problem goes to the server's planner and the trucks lift the bins at
the times the plan gives.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from binsight.server.bins_import import BinRow
from binsight.server.config import WEEKDAYS, ServerConfig
from binsight.server.planning.day_problem import day_horizon, service_day
from binsight.server.twin.city import CityState, Ledger
from binsight.server.twin.policies import POLICIES, DayView, Fixed, Policy, make_policy
from binsight.server.twin.sensing import Cameras, SensingConfig, build_cameras
from binsight.server.twin.server_side import ServerSide, fleet_config, solve
from binsight.server.twin.world import World, WorldConfig, build_world

__all__ = ["CO2_KG_PER_KM", "PolicyRun", "TwinConfig", "run_policies", "run_policy"]

#: Refuse truck diesel ~0.5 l/km in collection duty x 2.7 kg CO2 per litre of diesel (docs/twin.md).
CO2_KG_PER_KM = 1.35
#: Warm-up lifts (no routing) happen at this hour of the due day.
WARMUP_LIFT_HOUR = 9.0

Progress = Callable[[int, int, str], None]


@dataclass(frozen=True)
class TwinConfig:
    """One twin run: the world, the cameras, the fleet and the planner's time per day."""

    world: WorldConfig = field(default_factory=WorldConfig)
    sensing: SensingConfig = field(default_factory=SensingConfig)
    policies: tuple[str, ...] = POLICIES
    time_limit_s: float = 1.0
    service_days: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat")
    truck_capacity_l: float = 40_000.0
    bins_per_truck: int = 150
    shift: tuple[str, str] = ("06:00", "14:00")
    plan_hour: int = 5
    #: Policy experiments (``binsight`` and ``oracle``): the server's ``fleet.optional_min_fill``, and the
    #: detour an optional bin is worth when full (the route problem's ``optional.detour_km_at_full``;
    #: None: the planner's default, which the server uses today).
    optional_min_fill: float = 0.3
    optional_detour_km: float | None = None
    #: The server's ``fleet.optional_lookahead_days`` and ``fleet.optional_near_km`` (None: anywhere).
    lookahead_days: int = 1
    near_km: float | None = 1.0
    #: The server's ``fleet.skip_quiet_days``, ``fleet.quiet_overflow_h`` and ``fleet.consolidate_days``.
    skip_quiet_days: bool = True
    quiet_overflow_h: float = 12.0
    consolidate_days: int = 2
    #: The server's ``forecast.threshold`` ("full"), which ``threshold`` and ``binsight`` plan against.
    threshold: float = 0.8

    def __post_init__(self) -> None:
        unknown = [p for p in self.policies if p not in POLICIES]
        if unknown:
            raise ValueError(f"unknown policy {unknown[0]!r}; expected some of {', '.join(POLICIES)}")
        if not 0 <= self.plan_hour < int(self.shift[0][:2]):
            raise ValueError("plan_hour must fall before the first shift starts")
        if self.time_limit_s <= 0:
            raise ValueError("time_limit_s must be positive")

    def trucks(self, depots: list[str]) -> list[dict[str, Any]]:
        n = max(2, math.ceil(self.world.bins / self.bins_per_truck))
        return [
            {
                "id": f"truck-{i + 1}",
                "depot": depots[i % len(depots)],
                "capacity_l": self.truck_capacity_l,
                "shift": list(self.shift),
            }
            for i in range(n)
        ]


@dataclass
class PolicyRun:
    """One policy's figures and its days (what was offered, lifted and driven)."""

    name: str
    ledger: Ledger
    days: list[dict[str, Any]]
    build_s: float = 0.0
    co2_kg_per_km: float = CO2_KG_PER_KM

    def figures(self, measured_days: int) -> dict[str, Any]:
        """The issue's figures (rounded for reading), plus what the planner saw."""
        lg = self.ledger
        return {
            "truck_km": round(lg.truck_km, 1),
            "truck_hours": round(lg.truck_hours, 1),
            "lifts": lg.lifts,
            "mean_fill_at_lift": round(lg.fill_at_lift_sum / lg.lifts, 4) if lg.lifts else None,
            "lifts_under_50": lg.lifts_under_50,
            "overflow_events": lg.overflow_events,
            "overflow_bin_hours": round(lg.overflow_bin_hours, 1),
            "litres_overflowed": round(lg.litres_overflowed, 1),
            "missed_mandatory": lg.missed_mandatory,
            "co2_kg": round(lg.truck_km * self.co2_kg_per_km, 1),
            "solver_s": round(lg.solver_s, 1),
            "problem_build_s": round(self.build_s, 1),
            "km_per_day": round(lg.truck_km / measured_days, 1) if measured_days else None,
            "plans": lg.plans,
            "days_driven": lg.days_driven,
            "truck_days": lg.truck_days,
            "disposal_visits": lg.disposal_visits,
            "mandatory_offered": lg.mandatory,
            "optional_offered": lg.optional_offered,
        }


def _server_config(tw: TwinConfig, world: World) -> ServerConfig:
    trucks = tw.trucks([d[0] for d in world.depots])
    return fleet_config(
        depots=world.depots,
        disposal=world.disposal,
        trucks=trucks,
        service_days=list(tw.service_days),
        time_limit_s=tw.time_limit_s,
        optional_min_fill=tw.optional_min_fill,
        threshold=tw.threshold,
        lookahead_days=tw.lookahead_days,
        near_km=tw.near_km,
        skip_quiet_days=tw.skip_quiet_days,
        quiet_overflow_h=tw.quiet_overflow_h,
        consolidate_days=tw.consolidate_days,
    )


def _bin_rows(world: World) -> list[BinRow]:
    return [
        BinRow(
            world.ids[k],
            float(world.lat[k]),
            float(world.lon[k]),
            float(world.capacity_l[k]),
            service_min=float(world.service_min[k]),
        )
        for k in range(world.n)
    ]


def _hours(hhmm: str) -> float:
    h, m = (int(p) for p in hhmm.split(":"))
    return h + m / 60.0


def _lifts(result: dict[str, Any], day: int, index: dict[str, int]) -> dict[int, list[tuple[int, float]]]:
    """The plan's bin stops as ``hour -> [(bin, fraction of the hour)]``, at each stop's start."""
    out: dict[int, list[tuple[int, float]]] = {}
    for route in result["routes"]:
        for stop in route["stops"]:
            if stop["kind"] != "bin":
                continue
            t = 24 * day + _hours(stop["start"])
            out.setdefault(int(t), []).append((index[stop["id"]], t - int(t)))
    return out


def _plan_day(
    policy: Policy, view: DayView, tw: TwinConfig, run: PolicyRun, index: dict[str, int]
) -> dict[int, list[tuple[int, float]]]:
    """Ask the policy for the day's problem, plan it with the server's planner, book what it costs."""
    t0 = time.perf_counter()
    problem = policy.problem(view)
    t1 = time.perf_counter()
    result = solve(problem, tw.time_limit_s) if problem["bins"] else {"routes": [], "engine": None}
    solver_s = time.perf_counter() - t1
    served = {s["id"] for r in result["routes"] for s in r["stops"] if s["kind"] == "bin"}
    mandatory = {b["id"] for b in problem["bins"] if b["mandatory"]}
    lg = run.ledger
    lg.plans += 1
    lg.solver_s += solver_s
    lg.mandatory += len(mandatory)
    lg.optional_offered += len(problem["bins"]) - len(mandatory)
    lg.missed_mandatory += len(mandatory - served)
    lg.truck_km += sum(r["distance_km"] for r in result["routes"])
    lg.truck_hours += sum(r["duration_min"] for r in result["routes"]) / 60.0
    lg.routes += len(result["routes"])
    lg.days_driven += bool(served)
    lg.truck_days += sum(any(s["kind"] == "bin" for s in r["stops"]) for r in result["routes"])
    lg.disposal_visits += sum(s["kind"] == "disposal" for r in result["routes"] for s in r["stops"])
    run.build_s += t1 - t0
    run.days.append(
        {
            "date": problem["name"],
            "offered": len(problem["bins"]),
            "mandatory": len(mandatory),
            "lifted": len(served),
            "km": round(sum(r["distance_km"] for r in result["routes"]), 2),
            "engine": result.get("engine"),
            "feasible": result.get("feasible", True),
        }
    )
    return _lifts(result, view.day, index)


def _warmup_lifts(fixed: Fixed, view: DayView) -> dict[int, list[tuple[int, float]]]:
    hour = 24 * view.day + WARMUP_LIFT_HOUR
    return {int(hour): [(k, hour - int(hour)) for k in fixed.due(view)]}


@dataclass
class _Run:
    """What one policy's pass through the days shares: world, cameras, config and the plan template."""

    tw: TwinConfig
    world: World
    cameras: Cameras
    cfg: ServerConfig
    template: dict[str, Any]

    @property
    def optional(self) -> dict[str, float] | None:
        """The optional-bin prize experiment, as the route problem's ``optional`` (None: default)."""
        km = self.tw.optional_detour_km
        return None if km is None else {"detour_km_at_full": km}

    def view(self, state: CityState, d: int) -> DayView:
        w, tw = self.world, self.tw
        day = w.day(d)
        plan_h = 24.0 * d + tw.plan_hour
        now_ms = w.ts_ms(plan_h)
        nxt = service_day(self.cfg, now_ms, after=day)
        end = _hours(tw.shift[1])
        return DayView(
            world=w,
            state=state,
            cfg=self.cfg,
            template=self.template,
            day=d,
            plan_h=plan_h,
            shift_end_h=24.0 * d + end,
            next_end_h=24.0 * (nxt - w.start).days + end,
            horizon=day_horizon(self.cfg, self.cfg.fleet.trucks, now_ms, day, self.cfg.forecast.threshold),
            now_ms=now_ms,
        )

    def is_service_day(self, d: int) -> bool:
        return WEEKDAYS[self.world.day(d).weekday()] in self.tw.service_days


def _initial_state(world: World) -> CityState:
    level = world.initial_level.copy()
    # As if each bin had been lifted when its level was zero (its phase in the fixed schedule).
    last = -24.0 * level / np.maximum(world.mean_rate, 1e-6)
    return CityState(level=level, capacity_l=world.capacity_l, last_lift_h=last)


def run_policy(name: str, run: _Run, progress: Progress | None = None) -> PolicyRun:
    """Simulate every day of ``run.world`` under policy ``name``."""
    w = run.world
    server = ServerSide(run.cfg, w.ids, _bin_rows(w)) if name == "binsight" else None
    policy = make_policy(name, w, server, len(run.tw.service_days), run.optional)
    warm = Fixed(w)
    state = _initial_state(w)
    index = {b: k for k, b in enumerate(w.ids)}
    result = PolicyRun(name, Ledger(), [])
    try:
        for d in range(w.days):
            measure = d >= w.cfg.warmup_days
            lifts: dict[int, list[tuple[int, float]]] = {}
            for h in range(24):
                hour = 24 * d + h
                if h == run.tw.plan_hour and run.is_service_day(d):
                    view = run.view(state, d)
                    lifts = (
                        _plan_day(policy, view, run.tw, result, index)
                        if measure
                        else _warmup_lifts(warm, view)
                    )
                state.advance(
                    hour, w.inflow[:, hour], lifts.get(hour, []), result.ledger if measure else None
                )
                if run.cameras.captures_at(hour):
                    fills = run.cameras.read(state.level, hour)
                    state.last_read = np.where(np.isnan(fills), state.last_read, fills)
                    policy.observe(fills, run.cameras.online[:, hour], w.ts_ms(hour + 1) - 1)
            if progress is not None:
                progress(d + 1, w.days, name)
    finally:
        policy.close()
    return result


def prepare(tw: TwinConfig) -> _Run:
    """Build the world, the cameras, the server's config and its plan template for ``tw``."""
    world = build_world(tw.world)
    cameras = build_cameras(tw.sensing, world.n, world.inflow.shape[1], tw.world.seed)
    cfg = _server_config(tw, world)
    probe = ServerSide(cfg, [], [])
    try:
        template = probe.template(world.ts_ms(tw.plan_hour))
    finally:
        probe.close()
    run = _Run(tw, world, cameras, cfg, template)
    if run.optional is not None:
        template["optional"] = run.optional
    return run


def run_policies(tw: TwinConfig, progress: Progress | None = None) -> dict[str, Any]:
    """Run every policy of ``tw`` on one world; the JSON-ready figures per policy."""
    run = prepare(tw)
    measured = run.world.days - tw.world.warmup_days
    policies: dict[str, Any] = {}
    for name in tw.policies:
        policies[name] = run_policy(name, run, progress).figures(measured)
    return {
        "bins": tw.world.bins,
        "weeks": tw.world.weeks,
        "seed": tw.world.seed,
        "policies": policies,
        "setup": {
            "time_limit_s": tw.time_limit_s,
            "trucks": len(run.cfg.fleet.trucks),
            "service_days": list(tw.service_days),
            "sensing": asdict(tw.sensing),
            "warmup_days": tw.world.warmup_days,
            "optional_min_fill": tw.optional_min_fill,
            "optional_detour_km": tw.optional_detour_km,
            "lookahead_days": tw.lookahead_days,
            "near_km": tw.near_km,
            "skip_quiet_days": tw.skip_quiet_days,
            "quiet_overflow_h": tw.quiet_overflow_h,
            "consolidate_days": tw.consolidate_days,
            "threshold": tw.threshold,
        },
    }
