"""Chaos figures for the deploy stage, as one JSON document on stdout.

Runs random fault schedules against the deploy core (intent rows, look-before/after create, verified
destroy, reconciler, metering) and checks after each one, once the faults end and everything was
torn down: every provider instance with our prefix matches exactly one live row, no key has two
instances, nothing billed is unaccounted, the ledger equals rate x metered seconds, nothing is left
running or leaked.

- ``memory``: ``--scenarios`` (default 200) schedules against the in-memory provider (random
  operations: deploy, tear down, reconcile, sweep, time passing, orphans, provider-side ends, stops and
  starts by the user and by the provider, whose paused spans must lie within the spans it was really
  stopped; faults: no capacity, create-then-500, create timeouts, rate limits, failing
  lists/reads/destroys, ignored destroys and stops, lingering instances, listing lag).
- ``lambda``, ``runpod`` (HTTP fakes on loopback) and ``aws`` (moto's EC2 server behind the
  fault-injecting proxy), ``--http-scenarios`` each (default 20): deploys with injected create-then-500,
  create-then-timeout, listing lag, failing destroys, lingering instances and orphans.

Run from the repository root: ``PYTHONPATH=. .venv/bin/python scripts/chaos_deploy.py [--only memory]``.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import select

from cloudarb.context import build_context
from cloudarb.db.models_deploy import DeployInstance, Deployment
from cloudarb.deploy import invariants, run
from cloudarb.deploy.env import DeployEnv
from cloudarb.deploy.metering import meter
from cloudarb.deploy.providers.base import Provisioner
from cloudarb.deploy.reconcile import reconcile
from cloudarb.deploy.schemas import Plan, PlannedLine
from cloudarb.deploy.sweep import retry_destroys
from cloudarb.storage import accounts
from tests.deploy.memory_provider import FakeClock
from tests.deploy.scenarios import Scenario, random_faults
from tests.support import make_settings

KEYS = ("orphans_left", "duplicate_keys", "leaked", "cost_mismatches", "unaccounted")


def _tally(totals: dict[str, Any], problems: dict[str, list[str]], examples: list[str]) -> None:
    mapping = {"orphans": "orphans_left", "left_running": "orphans_left", "duplicate_keys": "duplicate_keys",
               "leaked": "leaked", "cost_mismatches": "cost_mismatches", "unaccounted": "unaccounted"}
    for name, items in problems.items():
        totals[mapping[name]] += len(items)
        examples.extend(f"{name}: {i}" for i in items[:2])


def _pcts(values: list[float]) -> dict[str, float]:
    if not values:
        return {"p50": 0.0, "p95": 0.0}
    ordered = sorted(values)
    return {"p50": round(statistics.median(ordered), 5),
            "p95": round(ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], 5)}


def memory_runs(db: Any, settings: Any, scenarios: int, steps: int, seed: int) -> dict[str, Any]:
    totals: dict[str, Any] = {"scenarios": 0, "instances_created": 0, **dict.fromkeys(KEYS, 0)}
    examples: list[str] = []
    timings: list[float] = []
    ops: dict[str, int] = {}
    for n in range(scenarios):
        rng = random.Random(seed * 100_003 + n)
        sc = Scenario.new(db, settings, random_faults(rng))
        for _ in range(steps):
            op = sc.step(rng)
            ops[op] = ops.get(op, 0) + 1
        sc.settle()
        _tally(totals, sc.problems(settled=True), examples)
        totals["scenarios"] += 1
        totals["instances_created"] += len(sc.provider.ever)
        timings.extend(sc.reconcile_seconds)
    return {**totals, "reconcile_seconds": _pcts(timings), "operations": ops, "examples": examples[:10]}


# -- HTTP fakes and moto ---------------------------------------------------------------------------
Target = tuple[Callable[[], Provisioner], Any, dict[str, Any]]
SSH_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBmXqg3bOqVdvsV2hSYcJYk6MfqG3ZJHzTq0Qk8H0bCo chaos"
FAULTS: list[tuple[str, dict[str, Any]]] = [
    ("create-then-500", {"op": "create", "error": "server_error", "after_effect": True, "times": 1}),
    ("create-then-timeout", {"op": "create", "after_effect": True, "delay_s": 3.0, "times": 1}),
    ("no-capacity", {"op": "create", "error": "no_capacity", "times": 1}),
    ("list-fails", {"op": "list", "error": "server_error", "times": 2}),
    ("destroy-fails", {"op": "destroy", "error": "server_error", "times": 3}),
    ("get-fails", {"op": "get", "error": "server_error", "times": 2}),
]


def _maker(make: Callable[[Any], Provisioner], config: Callable[..., Any], server: Any) -> Callable[[], Provisioner]:
    """A fresh client per scenario (a reset fake forgets what the last client registered)."""
    from tests.deploy.fakes.env import Sleeps

    return lambda: make(config(server, Sleeps()))


@contextmanager
def _http_targets(only: set[str]) -> Iterator[dict[str, Target]]:
    from cloudarb.deploy.providers import aws, lambda_, runpod
    from tests.deploy.fakes import fixtures as fx
    from tests.deploy.fakes.env import Sleeps
    from tests.deploy.fakes.lambda_cloud import LambdaFake
    from tests.deploy.fakes.runpod import RunPodFake
    from tests.deploy.fakes.server import serving

    targets: dict[str, Target] = {}
    with ExitStack() as stack:
        if "lambda" in only:
            server = stack.enter_context(serving(LambdaFake()))
            targets["lambda"] = (_maker(lambda_.provisioner, fx.lambda_config, server), server,
                                 {"instance_type": "gpu_1x_a10", "region": "us-east-1", "gpu_model": "A10"})
        if "runpod" in only:
            server = stack.enter_context(serving(RunPodFake()))
            targets["runpod"] = (_maker(runpod.provisioner, fx.runpod_config, server), server,
                                 {"instance_type": "NVIDIA GeForce RTX 4090 [secure]", "region": "",
                                  "gpu_model": "RTX 4090"})
        if "aws" in only:
            from tests.deploy.fakes.ec2_proxy import Ec2Proxy
            from tests.deploy.fakes.moto import MotoServer

            moto = MotoServer().start()
            stack.callback(moto.stop)
            server = stack.enter_context(serving(Ec2Proxy(moto.url)))
            aws.provisioner(fx.aws_config(server, Sleeps(), timeout_s=60.0)).create(fx.aws_spec("warm-up"))
            targets["aws"] = (_maker(aws.provisioner, fx.aws_config, server), server,
                              {"instance_type": "g5.xlarge", "region": "us-east-1", "gpu_model": "A10G"})
        yield targets


def http_runs(db: Any, settings: Any, key: str, target: Target, scenarios: int,
              seed: int) -> dict[str, Any]:
    factory, server, fields = target
    totals: dict[str, Any] = {"scenarios": 0, "instances_created": 0, "replicas": 0, "replicas_running": 0,
                              **dict.fromkeys(KEYS, 0)}
    examples: list[str] = []
    timings: list[float] = []
    seen_pids: set[str | None] = set()
    faults_used: dict[str, int] = {}
    for n in range(scenarios):
        rng = random.Random(seed * 7919 + n)
        server.reset()
        prov = factory()  # a fresh client: the fake forgot what the last one registered (SSH keys)
        clock = FakeClock()
        install = f"h{key[:2]}{n:05d}{rng.randrange(10**6):06d}"[:16]
        env = DeployEnv(db=db, settings=settings.model_copy(update={"deploy_install_id": install}),
                        providers=lambda p, a, prov=prov: prov, clock=clock, sleep=clock.sleep,  # type: ignore[misc]
                        probe=lambda h, p: True)
        chosen = rng.sample(FAULTS, rng.randint(0, 3))
        for name, fault in chosen:
            faults_used[name] = faults_used.get(name, 0) + 1
            server.control(faults=[fault])
        server.control(listing_lag_calls=rng.choice([0, 1, 3]), destroy_linger_calls=rng.choice([0, 1, 2]))
        dep_id = _http_deployment(env, key, fields, replicas=rng.randint(1, 2), clock=clock)
        results = run.deploy(env, dep_id)
        totals["replicas_running"] += sum(1 for r in results if r.state == "running")
        totals["replicas"] += len(results)
        if rng.random() < 0.3:  # an orphan: ours by prefix, no row names it
            from tests.deploy.fakes.env import base_spec

            try:
                prov.create(base_spec(env.prefix() + f"0000dead-l0-r0-a{n}", **fields))
            except Exception:  # noqa: BLE001 - a fault may refuse it; then there is no orphan
                pass
        run.teardown(env, dep_id, reason="done", passes=1)
        for _ in range(8):
            clock.advance(settings.deploy_orphan_grace_s + settings.deploy_ghost_grace_s + 120)
            started = time.perf_counter()
            reconcile(env, key)
            timings.append(time.perf_counter() - started)
            retry_destroys(env, clock() + timedelta(days=1))
            run.teardown(env, dep_id, reason="done", passes=1)
            if not _listed(prov, env.prefix()) and not run.live_rows(env, dep_id):
                break
        present = [(r.provider_id, r.key) for r in _listed(prov, env.prefix())]
        with db.session() as session:
            meter(session, clock())
            problems = invariants.check(session, provider=key, prefix=env.prefix(), present=present)
        problems["left_running"] = [pid for pid, _ in present]
        _tally(totals, problems, examples)
        totals["scenarios"] += 1
        with db.session() as session:
            totals["instances_created"] += len(set(session.scalars(select(DeployInstance.provider_id).where(
                DeployInstance.provider == key, DeployInstance.provider_id.is_not(None),
                (DeployInstance.deployment_id == dep_id) | DeployInstance.key.like(f"orphan:{key}:%"))))
                - seen_pids)
            seen_pids |= set(session.scalars(select(DeployInstance.provider_id).where(
                DeployInstance.provider == key, DeployInstance.provider_id.is_not(None))))
    return {**totals, "reconcile_seconds": _pcts(timings), "faults": faults_used, "examples": examples[:10]}


def _listed(prov: Provisioner, prefix: str) -> list[Any]:
    """What the provider lists under the prefix (the injected faults run out after a few calls)."""
    for _ in range(10):
        try:
            return prov.list_owned(prefix)
        except Exception:  # noqa: BLE001 - an injected failure: ask again
            continue
    raise RuntimeError("the provider's listing kept failing")


def _http_deployment(env: DeployEnv, key: str, fields: dict[str, Any], *, replicas: int, clock: Callable[[], Any]) -> str:
    now = clock()
    line = PlannedLine(index=0, workload_id="chaos", offer_key=f"{key}:chaos", provider=key, region=fields["region"],
                       instance_type=fields["instance_type"], gpu_model=fields["gpu_model"], instances=replicas,
                       price_per_hour=1.5)
    with env.db.session() as session:
        org = accounts.get_or_create_org(session, name=f"chaos-{key}").id
        dep = Deployment(organization_id=org, name="chaos", status="pending",
                         spec=Plan(lines=[line]).model_dump(mode="json"), lifetime_s=3600, max_lifetime_s=12 * 3600,
                         expires_at=now + timedelta(hours=1), created_at=now, updated_at=now, created_by="chaos",
                         ssh_public_key=SSH_KEY)
        session.add(dep)
        session.flush()
        return dep.id


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenarios", type=int, default=200)
    parser.add_argument("--steps", type=int, default=14, help="Random operations per memory scenario.")
    parser.add_argument("--http-scenarios", type=int, default=20)
    parser.add_argument("--only", default="memory,lambda,runpod,aws")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    only = {p.strip() for p in args.only.split(",") if p.strip()}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        settings = make_settings(database_url=f"sqlite:///{tmp}/chaos.db", data_dir=Path(tmp), seed_snapshot=False)
        ctx = build_context(settings)
        try:
            out: dict[str, Any] = {}
            if "memory" in only:
                out["memory"] = memory_runs(ctx.db, settings, args.scenarios, args.steps, args.seed)
            http = only & {"lambda", "runpod", "aws"}
            if http and args.http_scenarios > 0:
                with _http_targets(http) as targets:
                    for key, target in targets.items():
                        out[key] = http_runs(ctx.db, settings, key, target, args.http_scenarios, args.seed)
        finally:
            ctx.close()
    sections = [v for v in out.values()]
    out["total"] = {k: sum(s[k] for s in sections) for k in ("scenarios", "instances_created", *KEYS)}
    out["seconds"] = round(time.perf_counter() - started, 1)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
