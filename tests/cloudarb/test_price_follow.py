"""The price-event follower's id bookkeeping: late commits are delivered, holes expire."""

from __future__ import annotations

from typing import Any

from cloudarb.events.follow import Cursor
from cloudarb.ingest.events import GAP_WAIT_S


def ev(i: int) -> dict[str, Any]:
    return {"id": i}


def test_in_order_ids_leave_no_state_behind() -> None:
    cursor = Cursor(10)
    batch = cursor.fresh([ev(12), ev(11)])
    assert [e["id"] for e in batch] == [11, 12] and cursor.contiguous(batch)
    for e in batch:
        cursor.mark(e["id"], 0.0)
    assert (cursor.floor, cursor.top, cursor.seen, cursor.holes) == (12, 12, set(), {})
    assert cursor.fresh([ev(11), ev(12)]) == []


def test_a_late_commit_below_the_top_is_delivered_once() -> None:
    cursor = Cursor(4)
    assert not cursor.contiguous(cursor.fresh([ev(6)]))  # 5 is still committing
    cursor.mark(6, 0.0)
    assert cursor.holes == {5: 0.0} and cursor.floor == 4
    assert [e["id"] for e in cursor.fresh([ev(5), ev(6)])] == [5]  # the store re-read finds 5, not 6 again
    cursor.mark(5, 1.0)
    assert (cursor.floor, cursor.holes, cursor.seen) == (6, {}, set())
    assert cursor.fresh([ev(5), ev(6), ev(7)]) == [ev(7)]


def test_a_hole_that_never_fills_is_given_up() -> None:
    cursor = Cursor(0)
    cursor.mark(3, 100.0)
    assert set(cursor.holes) == {1, 2}
    cursor.expire(100.0 + GAP_WAIT_S / 2)
    assert cursor.floor == 0
    cursor.mark(2, 101.0)
    cursor.expire(100.0 + GAP_WAIT_S)
    assert (cursor.floor, cursor.holes, cursor.seen) == (3, {}, set())


def test_a_batch_is_not_contiguous_while_a_hole_is_open() -> None:
    cursor = Cursor(0)
    cursor.mark(2, 0.0)
    assert not cursor.contiguous(cursor.fresh([ev(3)]))
    assert not cursor.contiguous(cursor.fresh([ev(4), ev(6)]))
