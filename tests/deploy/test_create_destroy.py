"""Safety rules of create and destroy against the in-memory provider with injected faults."""

from __future__ import annotations

from dataclasses import replace

from sqlalchemy import select

from cloudarb.db.models_deploy import DeployAlert, DeployInstance
from cloudarb.deploy import keys
from cloudarb.deploy import states as st
from cloudarb.deploy.create import launch, wait_ready
from cloudarb.deploy.destroy import destroy
from cloudarb.deploy.errors import NoCapacity
from tests.deploy.conftest import World


def _state(world: World, instance_id: str) -> DeployInstance:
    with world.env.db.session() as session:
        row = session.get(DeployInstance, instance_id)
        assert row is not None
        return row


def test_the_intent_row_is_committed_before_the_provider_is_asked(world: World) -> None:
    seen: list[str] = []
    original = world.mem.create

    def create(spec):  # type: ignore[no-untyped-def]
        with world.env.db.session() as session:  # a separate session: only committed rows are visible
            row = session.scalars(select(DeployInstance).where(DeployInstance.key == spec.key)).one()
            seen.append(row.state)
        return original(spec)

    world.mem.create = create  # type: ignore[method-assign]
    [row] = world.intents(world.deployment())
    assert row.state == st.REQUESTED and row.key.startswith(world.env.prefix())
    outcome = launch(world.env, row.id)
    assert seen == [st.CREATING]
    assert outcome.state == st.CREATED and _state(world, row.id).provider_id == "m-1"
    world.assert_sound()


def test_an_instance_already_under_the_key_is_adopted_not_created_again(world: World) -> None:
    [row] = world.intents(world.deployment())
    pid = world.mem.leak(row.key)
    outcome = launch(world.env, row.id)
    assert outcome.state == st.CREATED
    assert _state(world, row.id).provider_id == pid
    assert not [c for c in world.mem.calls if c.startswith("create")]
    assert len(world.mem.live()) == 1


def test_a_500_after_create_is_resolved_by_looking_through_the_listing_lag(world: World) -> None:
    world.mem.faults.create_then_error = 1
    world.mem.faults.listing_lag_s = 7.0
    [row] = world.intents(world.deployment())
    outcome = launch(world.env, row.id)
    assert outcome.state == st.CREATED, outcome
    assert len(world.mem.ever) == 1
    world.assert_sound()


def test_an_unknown_outcome_with_nothing_created_fails_the_row_after_the_window(world: World) -> None:
    world.mem.faults.create_error_nothing = 1
    [row] = world.intents(world.deployment())
    start = world.clock()
    outcome = launch(world.env, row.id)
    assert outcome.state == st.FAILED and outcome.error is not None
    assert (world.clock() - start).total_seconds() >= world.mem.capabilities.listing_lag_s
    assert "not listed" in (_state(world, row.id).end_reason or "")
    assert world.mem.ever == {}


def test_unknown_outcome_while_the_provider_cannot_list_stays_unresolved(world: World) -> None:
    world.mem.capabilities = replace(world.mem.capabilities, idempotency_token=True)  # no look before create
    world.mem.faults.create_error_nothing = 1
    world.mem.faults.find_fail = 100
    [row] = world.intents(world.deployment())
    outcome = launch(world.env, row.id)
    assert outcome.state == st.CREATE_UNKNOWN  # absence unproven: never marked failed on a guess


def test_no_capacity_fails_the_attempt_with_a_failover_error(world: World) -> None:
    world.mem.faults.no_capacity.add("gpu_1x_a100")
    [row] = world.intents(world.deployment())
    outcome = launch(world.env, row.id)
    assert outcome.state == st.FAILED and isinstance(outcome.error, NoCapacity) and outcome.failover


def test_boot_then_reachable_then_running(world: World) -> None:
    world.mem.faults.boot_reads = 2
    [row] = world.intents(world.deployment())
    launch(world.env, row.id)
    assert wait_ready(world.env, row.id, timeout_s=60, poll_s=1) == st.RUNNING
    assert _state(world, row.id).running_at is not None


def test_destroy_is_verified_and_idempotent(world: World) -> None:
    [row] = world.intents(world.deployment())
    launch(world.env, row.id)
    world.mem.faults.linger_reads = 2
    assert destroy(world.env, row.id, reason="done") == st.TERMINATED
    done = _state(world, row.id)
    assert done.billing_stopped_at is not None and done.end_reason == "done"
    assert destroy(world.env, row.id, reason="again") == st.TERMINATED
    world.assert_sound()


def test_a_destroy_that_keeps_failing_is_leaked_alerted_and_retried_until_proven(world: World) -> None:
    [row] = world.intents(world.deployment())
    launch(world.env, row.id)
    world.mem.faults.destroy_fail = 1000
    for _ in range(world.env.settings.deploy_leaked_after):
        state = destroy(world.env, row.id, reason="done", rounds=1)
    assert state == st.LEAKED
    leaked = _state(world, row.id)
    assert leaked.destroy_attempts == world.env.settings.deploy_leaked_after
    assert leaked.next_action_at is not None and leaked.billing_stopped_at is None  # still billed
    with world.env.db.session() as session:
        assert session.scalars(select(DeployAlert.kind)).all() == ["leaked"]
    world.mem.faults.destroy_fail = 0
    assert destroy(world.env, row.id, reason="retry", rounds=1) == st.TERMINATED
    world.assert_sound()


def test_a_destroy_accepted_but_ignored_is_not_marked_terminated(world: World) -> None:
    [row] = world.intents(world.deployment())
    launch(world.env, row.id)
    world.mem.faults.destroy_ignored = 1
    assert destroy(world.env, row.id, reason="done", rounds=2) == st.TERMINATING
    assert destroy(world.env, row.id, reason="done", rounds=1) == st.TERMINATED


def test_destroying_an_unresolved_row_looks_for_its_key_first(world: World) -> None:
    world.mem.capabilities = replace(world.mem.capabilities, idempotency_token=True)
    world.mem.faults.create_then_error = 1
    world.mem.faults.find_fail = 100
    [row] = world.intents(world.deployment())
    assert launch(world.env, row.id).state == st.CREATE_UNKNOWN
    world.mem.faults.find_fail = 0
    assert destroy(world.env, row.id, reason="done") == st.TERMINATED
    assert world.mem.live() == []
    world.assert_sound()


def test_keys_fit_the_provider_and_parse_back() -> None:
    key = keys.make_key("abcd1234", "f" * 32, 3, 2, 1, max_length=40)
    assert len(key) <= 40 and key.startswith("cloudarb-abcd1234-")
    dep, line_, replica, attempt = keys.parse_key("abcd1234", key) or ("", 0, 0, 0)
    assert ("f" * 32).startswith(dep) and (line_, replica, attempt) == (3, 2, 1)
    assert keys.parse_key("other123", key) is None


def test_a_job_run_twice_never_creates_twice_for_one_key(world: World) -> None:
    """The reaper can start a job again while the first run is still alive (a starved heartbeat): the
    second run finds the row claimed and leaves it alone; only the claim's winner calls create."""
    [row] = world.intents(world.deployment())
    with world.env.db.session() as session:  # the first run claimed it and is calling the provider
        assert st.claim(session, row, to=st.CREATING, now=world.clock())
    assert launch(world.env, row.id).state == st.CREATING
    assert world.mem.calls == []
    with world.env.db.session() as session:  # a stale read cannot claim it either
        assert not st.claim(session, row, to=st.CREATING, now=world.clock())
