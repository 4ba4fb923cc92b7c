"""Run a large solve in a spawned child process, so a crash or memory spike cannot kill the caller.

The child gets the problem and config as JSON, streams Progress back over a queue and ends with the
Solution (or an error message). The parent enforces a hard deadline of the time limit plus a grace
period for model building and reporting, then terminates the child.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import queue
import time
from collections.abc import Callable

from optimizer.errors import OptimizerError, SolverFailedError
from optimizer.schemas import Problem, Progress, Solution, SolveConfig

log = logging.getLogger(__name__)

ISOLATE_CELLS = 5_000_000  # offers x workloads above which 'auto' isolates
_GRACE_S = 60.0


def _should_isolate(problem: Problem, config: SolveConfig) -> bool:
    if config.isolate == "always":
        return True
    if config.isolate == "never":
        return False
    return len(problem.offers) * len(problem.workloads) >= ISOLATE_CELLS


def solve_maybe_isolated(problem: Problem, config: SolveConfig,
                         progress: Callable[[Progress], None] | None) -> Solution:
    if not _should_isolate(problem, config):
        from optimizer.solver import solve_here

        return solve_here(problem, config, progress)
    return _solve_in_child(problem, config, progress)


def _child(problem_json: str, config_json: str, out: mp.Queue, started: float) -> None:  # type: ignore[type-arg]
    from optimizer.solver import solve_here

    try:
        problem = Problem.model_validate_json(problem_json)
        config = SolveConfig.model_validate_json(config_json)
        # The caller's clock started before the spawn: starting the interpreter, importing and
        # decoding the problem count against the time limit too (at most half of it).
        spent = max(0.0, time.time() - started)
        limit = config.time_limit_s
        config = config.model_copy(update={"time_limit_s": max(0.5 * limit, limit - spent)})
        sol = solve_here(problem, config, lambda p: out.put(("progress", p.model_dump_json())))
        out.put(("solution", sol.model_dump_json()))
    except OptimizerError as exc:
        out.put(("error", f"{type(exc).__name__}: {exc}"))
    except Exception as exc:  # noqa: BLE001 - everything must reach the parent as a message
        out.put(("error", f"{type(exc).__name__}: {exc}"))


def _solve_in_child(problem: Problem, config: SolveConfig,
                    progress: Callable[[Progress], None] | None) -> Solution:
    started = time.time()
    ctx = mp.get_context("spawn")
    out: mp.Queue = ctx.Queue()  # type: ignore[type-arg]
    proc = ctx.Process(target=_child, args=(problem.model_dump_json(), config.model_dump_json(), out, started),
                       daemon=True)
    proc.start()
    hard_deadline = time.monotonic() + config.time_limit_s + _GRACE_S
    try:
        while True:
            try:
                kind, payload = out.get(timeout=0.2)
            except queue.Empty:
                if not proc.is_alive():
                    raise SolverFailedError(
                        f"solver process died with exit code {proc.exitcode} (crash or out of memory)",
                        backend=config.backend,
                    ) from None
                if time.monotonic() > hard_deadline:
                    raise SolverFailedError("solver process exceeded its hard deadline", backend=config.backend) from None
                continue
            if kind == "progress":
                if progress is not None:
                    progress(Progress.model_validate_json(payload))
            elif kind == "solution":
                return Solution.model_validate_json(payload)
            else:
                raise SolverFailedError(f"solver process failed: {payload}", backend=config.backend)
    finally:
        if proc.is_alive():
            proc.join(timeout=5)
        if proc.is_alive():
            proc.terminate()
            proc.join(timeout=5)
