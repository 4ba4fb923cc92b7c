"""The optimize job: stored request + current offers -> solve -> stored result, with live progress."""

from __future__ import annotations

import time
from collections.abc import Sequence

from cloudarb import telemetry
from cloudarb.db.types import utcnow
from cloudarb.forecasts.feed import load_feed
from cloudarb.ingest.stale import stale_prices
from cloudarb.jobs.errors import JobInputError
from cloudarb.jobs.runtime import JobContext
from cloudarb.optimize import store as opt_store
from cloudarb.optimize.problem import build_problem, offer_filter
from cloudarb.schemas import OptimizeRequest
from cloudarb.storage import offers as offer_store
from optimizer.schemas import CurrentLine, Progress, Solution, SolveConfig


def load_request(jc: JobContext) -> OptimizeRequest:
    with jc.ctx.db.session() as session:
        opt = opt_store.get_unscoped(session, optimization_id=jc.target_id)
        if opt is None:
            raise JobInputError(f"optimization {jc.target_id} does not exist")
        return OptimizeRequest.model_validate(opt.request)


def solve_request(
    jc: JobContext, req: OptimizeRequest, *, current: Sequence[CurrentLine] = ()
) -> tuple[Solution, int, object]:
    """Load offers, solve with progress events, and return (solution, offers considered, prices as of)."""
    import optimizer

    jc.progress("loading", percent=5, message="loading current offers")
    with jc.ctx.db.session() as session:
        rows = offer_store.offers_for_problem(session, filters=offer_filter(req, jc.ctx.settings))
        as_of = offer_store.newest_observation(session)
        feed = load_feed(session, jc.ctx.settings, rows, horizon_hours=req.horizon_hours)
    problem = build_problem(req, rows, current=current, feed=feed, settings=jc.ctx.settings)
    jc.progress(
        "building",
        percent=10,
        message=f"{len(problem.workloads)} workloads x {len(problem.offers)} offers",
        offers=len(problem.offers),
        forecast_offers=len(feed.scenarios),
        risk_rated_offers=len(feed.rates),
    )
    limit = req.time_limit_s or jc.ctx.settings.solve_time_limit_s
    started = time.monotonic()

    def on_progress(p: Progress) -> None:
        jc.check_canceled()
        elapsed = time.monotonic() - started
        # the solver's own 0-100 maps into 10-95: loading and building came first, storing comes after
        share = p.percent / 100 if p.percent is not None else min(1.0, elapsed / limit)
        pct = 10 + 85 * max(0.0, min(1.0, share))
        jc.progress(p.phase, percent=pct, message=p.message, incumbent=p.incumbent, bound=p.bound, gap=p.gap)

    solution = optimizer.solve(problem, SolveConfig(backend=req.backend, time_limit_s=limit), progress=on_progress)
    jc.check_canceled()
    return solution, len(problem.offers), as_of


def body(jc: JobContext) -> str:
    req = load_request(jc)
    solution, considered, as_of = solve_request(jc, req)
    stale = stale_prices(as_of, now=utcnow(), max_age_s=jc.ctx.settings.price_stale_after_s)  # type: ignore[arg-type]
    with jc.ctx.db.session() as session:
        opt_store.store_solution(
            session, optimization_id=jc.target_id, solution=solution, offers_considered=considered, prices_as_of=as_of,
            extra={"stale_prices": stale} if stale else None,
        )
    return finish(jc, solution)


def finish(jc: JobContext, solution: Solution) -> str:
    telemetry.solve_ended(solution.stats.solve_seconds)
    totals = solution.totals
    if solution.infeasibility_reason:
        message = solution.infeasibility_reason
    elif totals is not None:
        message = f"{solution.status}: ${totals.cost_per_hour:,.2f}/h for {totals.gpus} GPUs"
    else:
        message = solution.status
    jc.progress(
        "done",
        percent=100,
        message=message,
        incumbent=solution.stats.objective,
        bound=solution.stats.best_bound,
        gap=solution.stats.gap,
    )
    if solution.status == "infeasible":
        return "infeasible"
    if solution.status == "no_solution":
        raise RuntimeError("the solver found no solution within its time limit")
    return "finished"
