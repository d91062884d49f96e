"""Run plans in a background thread and keep request, problem and result in the ``plans`` table."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from binsight.server.db.engine import now_ms
from binsight.server.db.models import Plan
from binsight.server.latency import PLAN_SECONDS

__all__ = ["PlanRunner", "Planner", "routing_planner"]

logger = logging.getLogger(__name__)

Planner = Callable[[dict[str, Any], float], dict[str, Any]]


def routing_planner(problem: dict[str, Any], time_limit_s: float) -> dict[str, Any]:
    """The route planner of ``binsight.server.routing``, imported when first used."""
    from binsight.server import routing

    plan: Planner = routing.plan
    return plan(problem, time_limit_s)


class PlanRunner:
    """One plan at a time (the solver uses the CPU it gets); later requests wait their turn."""

    def __init__(self, sessions: sessionmaker[Session], planner: Planner | None = None) -> None:
        self.sessions = sessions
        self.planner = planner or routing_planner
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="binsight-plan")

    def fail_interrupted(self) -> None:
        """Plans still 'running' from a previous process will never finish: say so."""
        with self.sessions() as s, s.begin():
            n = s.execute(
                update(Plan)
                .where(Plan.status == "running")
                .values(status="failed", error="the server stopped while planning", finished_at=now_ms())
            ).rowcount  # type: ignore[attr-defined]
        if n:
            logger.warning("marked %d interrupted plan(s) as failed", n)

    def submit(
        self,
        request: dict[str, Any],
        problem: dict[str, Any],
        excluded: list[dict[str, str]],
        time_limit_s: float,
        created_by: str | None,
    ) -> tuple[str, Future[None]]:
        plan_id = uuid.uuid4().hex
        with self.sessions() as s, s.begin():
            s.add(
                Plan(
                    id=plan_id,
                    status="running",
                    created_at=now_ms(),
                    created_by=created_by,
                    request=request,
                    problem=problem,
                )
            )
        return plan_id, self._pool.submit(self._run, plan_id, problem, excluded, time_limit_s)

    def _run(
        self, plan_id: str, problem: dict[str, Any], excluded: list[dict[str, str]], limit: float
    ) -> None:
        t0 = time.perf_counter()
        try:
            result = dict(self.planner(problem, limit))
        except Exception as exc:  # a solver failure must become the plan's error, never kill the thread
            PLAN_SECONDS.labels("failed").observe(time.perf_counter() - t0)
            logger.exception("plan %s failed", plan_id)
            self._finish(plan_id, "failed", f"{type(exc).__name__}: {exc}", None)
            return
        PLAN_SECONDS.labels("done").observe(time.perf_counter() - t0)
        # Bins the server left out of the problem are shown with the solver's own skips.
        result["skipped"] = [*result.get("skipped", []), *excluded]
        self._finish(plan_id, "done", None, result)

    def _finish(self, plan_id: str, status: str, error: str | None, result: dict[str, Any] | None) -> None:
        with self.sessions() as s, s.begin():
            s.execute(
                update(Plan)
                .where(Plan.id == plan_id)
                .values(status=status, error=error, result=result, finished_at=now_ms())
            )

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
