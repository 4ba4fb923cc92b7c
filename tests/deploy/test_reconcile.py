"""The reconciler against the in-memory provider: orphans, ghosts, crashes healed, aborted passes."""

from __future__ import annotations

from sqlalchemy import select

from cloudarb.db.models_deploy import DeployAlert, DeployInstance
from cloudarb.deploy import states as st
from cloudarb.deploy.create import launch
from cloudarb.deploy.reconcile import reconcile
from tests.deploy.conftest import World


def _alerts(world: World) -> list[str]:
    with world.env.db.session() as session:
        return list(session.scalars(select(DeployAlert.kind).order_by(DeployAlert.id)))


def _row(world: World, instance_id: str) -> DeployInstance:
    with world.env.db.session() as session:
        row = session.get(DeployInstance, instance_id)
        assert row is not None
        return row


def test_an_orphan_is_destroyed_only_after_the_grace_window_and_alerted(world: World) -> None:
    pid = world.mem.leak(world.env.prefix() + "deadbeef-l0-r0-a0")
    foreign = world.mem.leak("someone-elses-instance")
    report = reconcile(world.env, "lambda")
    assert report.orphans_seen == 1 and report.orphans_destroyed == 0
    assert world.mem.ever[pid].ended_at is None
    world.clock.advance(world.env.settings.deploy_orphan_grace_s + 1)
    report = reconcile(world.env, "lambda")
    assert report.orphans_destroyed == 1
    assert world.mem.ever[pid].ended_at is not None
    assert world.mem.ever[foreign].ended_at is None  # not ours: never touched
    assert _alerts(world) == ["orphan"]
    world.assert_sound()


def test_a_listing_error_aborts_the_pass_without_acting(world: World) -> None:
    world.mem.leak(world.env.prefix() + "deadbeef-l0-r0-a0")
    world.clock.advance(world.env.settings.deploy_orphan_grace_s + 1)
    world.mem.faults.list_fail = 1
    report = reconcile(world.env, "lambda")
    assert report.aborted is not None and report.orphans_destroyed == 0
    assert len(world.mem.live()) == 1 and not _alerts(world)


def test_a_crash_after_the_provider_answered_is_healed_by_adoption(world: World) -> None:
    """The create happened but the row still says 'creating' (the process died in between)."""
    [row] = world.intents(world.deployment())
    with world.env.db.session() as session:
        st.move(session, row.id, to=st.CREATING, when=(st.REQUESTED,), now=world.clock())
    world.mem.leak(row.key)
    report = reconcile(world.env, "lambda")
    assert report.adopted == 1 and report.orphans_seen == 0
    assert _row(world, row.id).state == st.CREATED
    world.assert_sound()


def test_a_vanished_instance_is_ended_only_on_proof_after_the_ghost_window(world: World) -> None:
    [row] = world.intents(world.deployment())
    launch(world.env, row.id)
    pid = _row(world, row.id).provider_id
    assert pid is not None
    world.mem.ever[pid].ended_at = world.clock()  # the provider ended it on its own (spot reclaim)
    reconcile(world.env, "lambda")
    assert _row(world, row.id).state == st.CREATED  # within the window: nothing decided
    world.clock.advance(world.mem.capabilities.listing_lag_s + world.env.settings.deploy_ghost_grace_s + 1)
    report = reconcile(world.env, "lambda")
    assert report.ghosts == 1
    ended = _row(world, row.id)
    assert ended.state == st.TERMINATED and ended.end_reason == "vanished at the provider"
    assert _alerts(world) == ["ghost"]
    world.assert_sound()


def test_an_instance_missing_from_a_lagging_list_but_present_is_not_a_ghost(world: World) -> None:
    [row] = world.intents(world.deployment())
    launch(world.env, row.id)
    world.clock.advance(world.mem.capabilities.listing_lag_s + world.env.settings.deploy_ghost_grace_s + 1)
    world.mem.faults.listing_lag_s = 10 ** 9  # the list shows nothing, a read still finds it
    assert reconcile(world.env, "lambda").ghosts == 0
    assert _row(world, row.id).state == st.CREATED


def test_a_row_that_never_reached_the_provider_fails_when_no_job_works_on_it(world: World) -> None:
    [row] = world.intents(world.deployment())
    with world.env.db.session() as session:
        st.move(session, row.id, to=st.CREATING, when=(st.REQUESTED,), now=world.clock())
    world.clock.advance(world.mem.capabilities.listing_lag_s + world.env.settings.deploy_ghost_grace_s + 1)
    assert reconcile(world.env, "lambda").never_created == 1
    assert _row(world, row.id).state == st.FAILED


def test_an_instance_ended_after_the_listing_was_taken_is_not_an_orphan(world: World) -> None:
    """A teardown beside the pass proves an instance gone between the listing and the rows' read."""
    [row] = world.intents(world.deployment())
    launch(world.env, row.id)
    original = world.mem.list_owned

    def list_then_teardown(prefix: str):  # type: ignore[no-untyped-def]
        listed = original(prefix)
        world.clock.advance(1)
        from cloudarb.deploy.destroy import destroy

        assert destroy(world.env, row.id, reason="done") == st.TERMINATED
        return listed

    world.mem.list_owned = list_then_teardown  # type: ignore[method-assign]
    report = reconcile(world.env, "lambda")
    assert report.orphans_seen == 0 and _alerts(world) == []
