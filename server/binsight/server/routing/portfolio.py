"""The portfolio engine: PyVRP and OR-Tools side by side, each in its own process; the better plan wins.

Each engine runs in a child process for the whole time limit, so on a machine with a free core
per engine the scheduler gives each its own core and the portfolio costs no wall time over one
engine (it costs twice the CPU). With one core the two share it and each searches about half as
long; the answer still comes within the limit. Processes are not pinned to cores: on a shared
machine pinning would tie an engine to a core that may be busy.

Children come from a *forkserver* (started once, with the solvers imported), not from a fork of
the server: the server runs threads (HTTP, ingest), and forking a threaded process can copy a
lock that some other thread holds. Each engine's answer comes back over a pipe and is checked
exactly here. An engine that raises, dies (a crash in native code, the OOM killer) or overruns
the limit by more than :func:`grace_s` is recorded as ``failed`` or ``timed out`` with the reason,
and the other engine's plan is kept. Only when every engine fails does the portfolio raise.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import time
import traceback
from collections.abc import Callable, Mapping
from multiprocessing.connection import Connection, wait
from typing import Any

from binsight.server.routing.instance import Instance
from binsight.server.routing.planner import Outcome, better, check
from binsight.server.routing.solution import EngineRun, EngineSolution

__all__ = ["MEMBERS", "Member", "grace_s", "ortools_member", "pyvrp_member", "solve_portfolio"]

logger = logging.getLogger(__name__)

#: What a portfolio member runs in its process: ``(instance, time limit s, seed) -> solution``.
#: Members must be module-level functions (they are sent to the child by name).
Member = Callable[[Instance, float, int], EngineSolution]

#: Modules the forkserver imports once, so that each child starts without importing the solvers.
_PRELOAD = [
    "binsight.server.routing.planner",
    "binsight.server.routing.pyvrp_engine",
    "binsight.server.routing.ortools_engine",
    "pyvrp",
    "ortools.constraint_solver.pywrapcp",
]


def pyvrp_member(inst: Instance, time_limit_s: float, seed: int) -> EngineSolution:
    """PyVRP as ``engine="pyvrp"`` runs it (breaks made safe, large problems decomposed)."""
    from binsight.server.routing.planner import solve_instance

    return solve_instance(inst, time_limit_s, seed=seed, engine="pyvrp").solution


def ortools_member(inst: Instance, time_limit_s: float, seed: int) -> EngineSolution:
    """OR-Tools as ``engine="ortools"`` runs it (its own first solution, exact breaks)."""
    from binsight.server.routing.planner import solve_instance

    return solve_instance(inst, time_limit_s, seed=seed, engine="ortools").solution


MEMBERS: dict[str, Member] = {"pyvrp": pyvrp_member, "ortools": ortools_member}


def grace_s(time_limit_s: float) -> float:
    """How long past the limit an engine may answer before it is stopped (a model build or a last
    search step that overruns, sending the answer back)."""
    return 3.0 + 0.2 * time_limit_s


def _context() -> Any:
    if "forkserver" not in mp.get_all_start_methods():  # not on Windows or macOS before 3.14
        return mp.get_context("spawn")
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(_PRELOAD)  # read when the forkserver starts; ignored after
    return ctx


def _run_member(member: Member, inst: Instance, deadline: float, seed: int, conn: Connection) -> None:
    """Child process body: solve until ``deadline`` (``time.time()``), and send back
    ``("ok", solution)`` or ``("failed", the exception)``.

    The time left is measured here, so a slow start (the forkserver importing the solvers on the
    first plan, a loaded machine) shortens the search rather than the wait past the limit.
    """
    try:
        solution = member(inst, max(0.1, deadline - time.time()), seed)
        solution.raw = None  # the engine's own object may not pickle, and the parent has no use for it
        conn.send(("ok", solution))
    except BaseException as exc:  # everything, so the parent learns why rather than just that
        tail = traceback.format_exception_only(type(exc), exc)[-1].strip()
        logger.debug("portfolio member failed:\n%s", traceback.format_exc())
        conn.send(("failed", tail))
    finally:
        conn.close()


class _Child:
    """One engine's process and the read end of its pipe."""

    def __init__(
        self, ctx: Any, name: str, member: Member, inst: Instance, *, deadline: float, seed: int
    ) -> None:
        self.name = name
        self.conn, send = ctx.Pipe(duplex=False)
        self.process = ctx.Process(
            target=_run_member,
            args=(member, inst, deadline, seed, send),
            name=f"binsight-portfolio-{name}",
            daemon=True,
        )
        self.started = time.perf_counter()
        self.process.start()
        send.close()  # ours closed, so a child that dies gives EOF rather than a hang

    def receive(self) -> tuple[str, Any]:
        try:
            kind, payload = self.conn.recv()
        except (EOFError, OSError):
            self.process.join(5.0)
            return "failed", f"the process ended without an answer (exit code {self.process.exitcode})"
        return kind, payload

    def stop(self) -> None:
        if self.process.is_alive():
            self.process.kill()
        self.process.join(5.0)
        self.conn.close()


def solve_portfolio(
    inst: Instance,
    time_limit_s: float,
    seed: int = 0,
    members: Mapping[str, Member] | None = None,
) -> Outcome:
    """Run every member on ``inst`` at once for ``time_limit_s``; the better checked plan, with
    ``runs`` saying how each engine fared and which won.

    Raises
    ------
    RuntimeError
        Every engine failed or timed out (the message gives each one's reason).
    """
    t0 = time.perf_counter()
    members = dict(members or MEMBERS)
    if mp.current_process().daemon:
        answers = _in_turn(members, inst, time_limit_s, seed)
    else:
        answers = _side_by_side(members, inst, time_limit_s, seed)
    runs: list[EngineRun] = []
    outcomes: list[tuple[EngineRun, Outcome]] = []
    for name in members:
        kind, payload, elapsed = answers[name]
        if kind == "failed":
            logger.warning("portfolio: %s failed: %s", name, payload)
            runs.append(EngineRun(name, "failed", elapsed, error=str(payload)))
            continue
        if kind == "timed out":
            error = f"stopped after {elapsed:.1f} s without an answer (limit {time_limit_s:g} s)"
            logger.warning("portfolio: %s timed out: %s", name, error)
            runs.append(EngineRun(name, "timed out", elapsed, error=error))
            continue
        outcome = check(inst, payload, elapsed)
        run = EngineRun(name, "ok", elapsed, outcome.feasible, outcome.objective, outcome.cost)
        runs.append(run)
        outcomes.append((run, outcome))
    if not outcomes:
        reasons = "; ".join(f"{r.engine} {r.status}: {r.error}" for r in runs)
        raise RuntimeError(f"portfolio: every engine failed: {reasons}")
    won_run, best = outcomes[0]
    for run, outcome in outcomes[1:]:
        if better(best, outcome) is outcome:  # a tie keeps the earlier member's plan
            won_run, best = run, outcome
    won_run.won = True
    best.runs = runs
    best.elapsed_s = time.perf_counter() - t0
    logger.info("portfolio: %s", ", ".join(f"{r.engine} {r.status} {r.cost}" for r in runs))
    return best


Answers = dict[str, tuple[str, Any, float]]


def _side_by_side(members: dict[str, Member], inst: Instance, time_limit_s: float, seed: int) -> Answers:
    """Each member in its own process, all at once; ``(kind, payload, elapsed)`` per member."""
    ctx = _context()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    if cores < len(members):
        logger.info("portfolio: %d engines share %d core(s)", len(members), cores)
    t0 = time.perf_counter()
    deadline = time.time() + time_limit_s
    children = [_Child(ctx, name, m, inst, deadline=deadline, seed=seed) for name, m in members.items()]
    answers = _collect(children, t0 + time_limit_s + grace_s(time_limit_s))
    for child in children:
        answers.setdefault(child.name, ("timed out", None, time.perf_counter() - child.started))
    return answers


def _in_turn(members: dict[str, Member], inst: Instance, time_limit_s: float, seed: int) -> Answers:
    """Each member in this process, one after the other with an equal share of the time.

    For callers that may not start processes (a ``multiprocessing.Pool`` worker is daemonic, and
    daemonic processes may have no children). An exception is still caught and recorded; a crash
    in native code or a hang is not, which is what the processes are for.
    """
    logger.warning("portfolio: in a daemonic process, so the engines run in turn, not side by side")
    answers: Answers = {}
    for name, member in members.items():
        t0 = time.perf_counter()
        try:
            answers[name] = ("ok", member(inst, time_limit_s / len(members), seed), time.perf_counter() - t0)
        except Exception as exc:  # recorded as the engine's failure; the other engines still run
            tail = traceback.format_exception_only(type(exc), exc)[-1].strip()
            answers[name] = ("failed", tail, time.perf_counter() - t0)
    return answers


def _collect(children: list[_Child], deadline: float) -> Answers:
    """Each child's ``(kind, payload, elapsed)`` as it arrives, until all answered or ``deadline``;
    children still running then are killed (and have no entry)."""
    answers: Answers = {}
    pending = {child.conn: child for child in children}
    try:
        while pending:
            left = deadline - time.perf_counter()
            if left <= 0:
                break
            for conn in wait(list(pending), timeout=left):
                child = pending.pop(conn)
                kind, payload = child.receive()
                answers[child.name] = (kind, payload, time.perf_counter() - child.started)
    finally:
        for child in children:
            child.stop()
    return answers
