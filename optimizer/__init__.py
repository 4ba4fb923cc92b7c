"""Allocation optimizer: Problem -> Solution. Imports solver engines lazily.

Importing ``optimizer`` (or ``optimizer.schemas``) loads pydantic models only; numpy, scipy,
OR-Tools and PuLP are imported on the first call to ``solve``. The independent checker is
``optimizer.validate.validate(problem, solution)``.
"""

from __future__ import annotations

from collections.abc import Callable

from optimizer.schemas import Problem, Progress, Solution, SolveConfig

__all__ = ["Problem", "Progress", "Solution", "SolveConfig", "solve"]


def solve(
    problem: Problem,
    config: SolveConfig | None = None,
    *,
    progress: Callable[[Progress], None] | None = None,
) -> Solution:
    """Allocate the problem's workloads to offers under its constraints, within ``config.time_limit_s``.

    Infeasible problems return ``status="infeasible"`` with ``infeasibility_reason`` in words;
    errors (bad input, a crashed engine) raise ``optimizer.errors.OptimizerError`` subclasses.
    Large problems run in a spawned child process unless ``config.isolate == "never"``.
    """
    from optimizer.isolation import solve_maybe_isolated

    return solve_maybe_isolated(problem, config or SolveConfig(), progress)

