"""Hypothesis state machine: random operations and fault schedules against the deploy core; the
invariants hold after every step, and after settling nothing is left anywhere."""

from __future__ import annotations

import random

from hypothesis import HealthCheck, settings
from hypothesis import strategies as strat
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test

from cloudarb.context import Context
from tests.deploy.memory_provider import Faults
from tests.deploy.scenarios import Scenario, random_faults


def test_random_fault_schedules_keep_every_invariant(ctx: Context) -> None:
    class Machine(RuleBasedStateMachine):
        scenario: Scenario

        @initialize(seed=strat.integers(0, 2**32 - 1))
        def start(self, seed: int) -> None:
            self.rng = random.Random(seed)
            self.scenario = Scenario.new(ctx.db, ctx.settings, Faults())

        @rule()
        def deploy(self) -> None:
            self.scenario.deploy(self.rng)

        @rule()
        def finish_one(self) -> None:
            self.scenario.teardown(self.rng)

        @rule()
        def reconcile(self) -> None:
            self.scenario.reconcile()

        @rule()
        def sweep(self) -> None:
            self.scenario.sweep()

        @rule(seconds=strat.sampled_from([1, 30, 120, 400]))
        def advance(self, seconds: int) -> None:
            self.scenario.advance(seconds)

        @rule()
        def orphan(self) -> None:
            self.scenario.leak_orphan()

        @rule()
        def provider_ends_one(self) -> None:
            self.scenario.provider_kills_one(self.rng)

        @rule()
        def stop_or_start(self) -> None:
            self.scenario.stop_or_start(self.rng)

        @rule()
        def provider_stops_or_starts_one(self) -> None:
            self.scenario.provider_stops_or_starts_one(self.rng)

        @rule()
        def new_faults(self) -> None:
            self.scenario.provider.faults = random_faults(self.rng)

        @invariant()
        def sound(self) -> None:
            if hasattr(self, "scenario"):
                bad = {k: v for k, v in self.scenario.problems(settled=False).items() if v}
                assert not bad, bad

        def teardown(self) -> None:
            """After the run: faults end, everything is torn down; nothing may be left or unaccounted."""
            if hasattr(self, "scenario"):
                self.scenario.settle()
                bad = {k: v for k, v in self.scenario.problems(settled=True).items() if v}
                assert not bad, bad

    run_state_machine_as_test(Machine, settings=settings(
        max_examples=12, stateful_step_count=12, deadline=None, derandomize=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]))
