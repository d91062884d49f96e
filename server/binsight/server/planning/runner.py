"""Run plans in a background thread and keep request, problem and result in the ``plans`` table."""

from __future__ import annotations

import logging
import time
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Protocol

from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from binsight.server.db.engine import now_ms
from binsight.server.db.models import Plan
from binsight.server.latency import PLAN_SECONDS
from binsight.server.planning.explain import explain_skips
from binsight.server.routing import Engine

__all__ = ["PlanRunner", "Planner", "routing_planner"]

logger = logging.getLogger(__name__)


class Planner(Protocol):
    """Plans a route problem in about ``time_limit_s`` with the named engine (``[fleet] engine``)."""

    def __call__(
        self, problem: dict[str, Any], time_limit_s: float, *, engine: Engine = "auto"
    ) -> dict[str, Any]: ...


def routing_planner(
    problem: dict[str, Any], time_limit_s: float, *, engine: Engine = "auto"
) -> dict[str, Any]:
    """The route planner of ``binsight.server.routing``, imported when first used."""
    from binsight.server import routing

    return routing.plan(problem, time_limit_s, engine=engine)


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
        *,
        engine: Engine = "auto",
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
                    service_day=str(problem.get("name", ""))[:10] or None,
                )
            )
        return plan_id, self._pool.submit(self._run, plan_id, problem, excluded, time_limit_s, engine)

    def _run(
        self,
        plan_id: str,
        problem: dict[str, Any],
        excluded: list[dict[str, str]],
        limit: float,
        engine: Engine,
    ) -> None:
        t0 = time.perf_counter()
        try:
            result = dict(self.planner(problem, limit, engine=engine))
        except Exception as exc:  # a solver failure must become the plan's error, never kill the thread
            PLAN_SECONDS.labels("failed").observe(time.perf_counter() - t0)
            logger.exception("plan %s failed", plan_id)
            self._finish(plan_id, "failed", f"{type(exc).__name__}: {exc}", None)
            return
        PLAN_SECONDS.labels("done").observe(time.perf_counter() - t0)
        # Bins the server left out of the problem are shown with the solver's own skips, whose
        # "no capacity or time left" claims are checked against the routes (planning.explain).
        result["skipped"] = [*explain_skips(problem, result), *excluded]
        # With OSRM configured, the stops get the roads between them (the maps draw those).
        from binsight.server.routing.geometry import attach_paths

        attach_paths(problem.get("distance") or {}, result)
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
