"""The twin end to end on small worlds: determinism, accounting, the oracle's bound, the real planner."""

from __future__ import annotations

import argparse
import json
from typing import Any

import pytest

from binsight.server.twin import cli, server_side
from binsight.server.twin.policies import POLICIES
from binsight.server.twin.sensing import SensingConfig
from binsight.server.twin.simulate import TwinConfig, prepare, run_policies, run_policy
from binsight.server.twin.world import WorldConfig

SMALL = WorldConfig(bins=20, weeks=1, seed=1, warmup_days=7)
ALL_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
#: Timing figures differ between runs of the same seed; everything else must not.
TIMINGS = ("solver_s", "problem_build_s")


def _twin(**kw: Any) -> TwinConfig:
    return TwinConfig(**{"world": SMALL, "time_limit_s": 0.3, **kw})


def _no_timings(result: dict[str, Any]) -> dict[str, Any]:
    return {p: {k: v for k, v in f.items() if k not in TIMINGS} for p, f in result["policies"].items()}


def test_same_seed_same_figures() -> None:
    """Two runs of one seed give the same figures (solver time aside)."""
    # A generous limit: PyVRP stops when its search stalls, long before it on a 20-bin day, so a busy
    # machine cannot cut a search short and change the plan.
    tw = _twin(policies=("fixed", "threshold"), time_limit_s=3.0)
    assert _no_timings(run_policies(tw)) == _no_timings(run_policies(tw))


@pytest.mark.parametrize("name", ["fixed", "threshold"])
def test_accounting_matches_the_routes(name: str) -> None:
    """Truck-km and lifts are the sums of what the plans drove and lifted, day by day."""
    run = prepare(_twin(policies=(name,)))
    result = run_policy(name, run)
    assert result.ledger.truck_km == pytest.approx(
        sum(d["km"] for d in result.days), abs=0.01 * len(result.days)
    )
    lifted = sum(d["lifted"] for d in result.days)
    # A lift is booked in the hour of its stop; stops are all within the day's shift.
    assert result.ledger.lifts == lifted > 0
    assert result.ledger.plans == len(result.days) == 6  # Mon-Sat service days in the measured week
    # Days out are the days something was lifted; every truck out tips its load at least once.
    assert result.ledger.days_driven == sum(1 for d in result.days if d["lifted"])
    assert result.ledger.disposal_visits >= result.ledger.truck_days >= result.ledger.days_driven


def test_oracle_never_overflows_when_capacity_allows() -> None:
    """Knowing the true future, with trucks to spare and service every day, no bin overflows."""
    world = WorldConfig(bins=20, weeks=1, seed=2, warmup_days=7, rate_range=(0.02, 0.08), market_factor=1.0)
    tw = _twin(world=world, policies=("oracle",), service_days=ALL_DAYS)
    figs = run_policies(tw)["policies"]["oracle"]
    assert figs["missed_mandatory"] == 0
    assert (
        figs["overflow_events"] == 0
        and figs["overflow_bin_hours"] == 0.0
        and figs["litres_overflowed"] == 0.0
    )


def test_binsight_plans_with_the_servers_code(monkeypatch: pytest.MonkeyPatch) -> None:
    """The binsight policy's problems come from build_problem and its plans from routing.plan."""
    calls = {"build": 0, "plan": 0}
    build, plan = server_side.build_problem, server_side.routing.plan

    def spy_build(*a: Any, **kw: Any) -> Any:
        calls["build"] += 1
        return build(*a, **kw)

    def spy_plan(*a: Any, **kw: Any) -> Any:
        calls["plan"] += 1
        return plan(*a, **kw)

    monkeypatch.setattr(server_side, "build_problem", spy_build)
    monkeypatch.setattr(server_side.routing, "plan", spy_plan)
    run = prepare(_twin(policies=("binsight",), sensing=SensingConfig(outages_per_week=0.0)))
    result = run_policy("binsight", run)
    assert calls["build"] == 6 + 1  # one per service day, and the template
    assert calls["plan"] == sum(1 for d in result.days if d["offered"])
    assert {d["engine"] for d in result.days if d["offered"]} <= {"pyvrp", "ortools", "decomposed"}
    assert result.ledger.mandatory + result.ledger.optional_offered == sum(d["offered"] for d in result.days)
    assert result.ledger.lifts > 0


def test_json_prints_one_object(capsys: pytest.CaptureFixture[str]) -> None:
    """``--json``: exactly one object with bins, weeks, seed and the five policies' figures."""
    p = argparse.ArgumentParser()
    sub = p.add_subparsers()
    cli.register(sub)
    args = p.parse_args(["twin", "--bins", "12", "--weeks", "1", "--time-limit", "0.2", "--json"])
    from binsight.server.twin.commands import config_from_args

    tw = config_from_args(args, 0)
    assert tw.world.bins == 12 and set(tw.policies) == set(POLICIES)
    assert args.func(args) == 0
    out = capsys.readouterr().out
    obj = json.loads(out)
    assert out.count("\n") == 1
    assert {"bins", "weeks", "seed", "policies"} <= set(obj)
    assert list(obj["policies"]) == list(POLICIES)
    for figs in obj["policies"].values():
        assert {
            "truck_km",
            "truck_hours",
            "lifts",
            "mean_fill_at_lift",
            "lifts_under_50",
            "overflow_events",
            "overflow_bin_hours",
            "litres_overflowed",
            "missed_mandatory",
            "co2_kg",
            "solver_s",
        } <= set(figs)


def test_bad_options_name_the_problem(capsys: pytest.CaptureFixture[str]) -> None:
    """A zero-bin city is refused with a message, not a traceback."""
    p = argparse.ArgumentParser()
    cli.register(p.add_subparsers())
    args = p.parse_args(["twin", "--bins", "0", "--json"])
    assert args.func(args) == 2
    assert "--bins" in capsys.readouterr().err


def test_sensitivity_reruns_the_sensing_policies() -> None:
    """A model-error sweep reruns threshold and binsight once per value, keyed by the value."""
    from binsight.server.twin.sensitivity import SENSING_POLICIES, sensitivity

    out = sensitivity(_twin(), maes=[0.0, 0.15])
    assert list(out) == ["model_mae"]
    assert list(out["model_mae"]) == ["0", "0.15"]
    for policies in out["model_mae"].values():
        assert tuple(policies) == SENSING_POLICIES
