"""Pure tests of the reorg window: parent check, walk back, cap, replay of the blocks topic."""

from __future__ import annotations

import pytest

from indexers.chain.model import BlockHeader, OutMessage
from indexers.chain.reorg import ReorgTooDeep, ReorgWindow


def h(number: int, fork: str = "a") -> str:
    return f"0x{fork}{number:063x}"


def header(number: int, fork: str = "a", parent_fork: str | None = None) -> BlockHeader:
    return BlockHeader(number, h(number, fork), h(number - 1, parent_fork or fork), 1000 + number)


def message(number: int, fork: str = "a") -> OutMessage:
    return OutMessage("lc.chain.events", "1", "ChainEvent", f"1:{h(number, fork)}:0x:0", 0, {"block_number": number})


def window_with(numbers: range, cap: int = 64) -> ReorgWindow:
    window = ReorgWindow(cap)
    for n in numbers:
        window.add(header(n), [message(n)])
    return window


def canonical_after_fork(window: ReorgWindow, fork_at: int) -> dict[int, str]:
    """The node's hashes after a reorg replaced every block from `fork_at` on."""
    return {n: h(n, "b") if n >= fork_at else h(n) for n in window.numbers()}


def test_parent_check_accepts_the_next_block_and_refuses_a_fork():
    window = window_with(range(10, 20))
    assert window.extends(header(20))
    assert not window.extends(header(20, "b"))
    assert window.extends(header(25, "b"))  # not adjacent: the range check does not apply


def test_shallow_reorg_walks_back_to_the_common_ancestor():
    window = window_with(range(10, 20))
    plan = window.plan_rollback(canonical_after_fork(window, 18))
    assert [e.number for e in plan.orphaned] == [19, 18]
    assert plan.ancestor.number == 17
    assert plan.resume_from == 18
    window.apply_rollback(plan)
    assert window.last.number == 17
    assert window.extends(header(18, "b", parent_fork="a"))


def test_reorg_deeper_than_the_confirmations_but_within_the_cap_rolls_back():
    window = window_with(range(100, 160), cap=64)
    plan = window.plan_rollback(canonical_after_fork(window, 120))  # 40 blocks deep, confirmations 12
    assert len(plan.orphaned) == 40
    assert plan.ancestor.number == 119
    assert [m.payload["block_number"] for e in plan.orphaned for m in e.messages] == list(range(159, 119, -1))


def test_blocks_that_vanished_count_as_orphaned():
    window = window_with(range(10, 20))
    canonical = {n: (None if n > 15 else h(n)) for n in window.numbers()}  # the node's chain got shorter
    plan = window.plan_rollback(canonical)
    assert plan.ancestor.number == 15


def test_reorg_deeper_than_the_cap_halts_without_changing_the_window():
    window = window_with(range(100, 200), cap=32)
    before = window.numbers()
    with pytest.raises(ReorgTooDeep):
        window.plan_rollback(canonical_after_fork(window, 150))
    with pytest.raises(ReorgTooDeep):
        window.plan_rollback({n: h(n, "b") for n in window.numbers()})  # even the anchor is orphaned
    assert window.numbers() == before


def test_window_keeps_the_cap_plus_one_anchor():
    window = window_with(range(0, 100), cap=10)
    assert window.numbers() == list(range(99, 88, -1))  # 90..99 within the cap, 89 as the anchor
    sparse = ReorgWindow(10)
    for n in (0, 50, 95, 99):
        sparse.add(header(n))
    assert sparse.numbers() == [99, 95, 50]


def test_reorg_below_every_published_block_restarts_from_the_beginning_while_nothing_was_pruned():
    window = window_with(range(5, 9))
    plan = window.plan_rollback({n: h(n, "b") for n in window.numbers()})
    assert plan.ancestor is None and plan.resume_from is None


def test_replaying_the_blocks_topic_rebuilds_the_window():
    window = window_with(range(10, 15))
    window.revert(14, h(14))
    window.revert(13, h(13))
    window.add(header(13, "b", parent_fork="a"))
    assert window.last.hash == h(13, "b")
    with pytest.raises(ValueError):
        window.revert(12, h(12))  # not the newest block
    with pytest.raises(ValueError):
        window.add(header(13, "c"))  # not after the newest block


def test_replaying_a_rollback_deeper_than_the_cap_anchors_the_window_at_its_ancestor():
    """`lc indexer rollback --max-depth` retracted 40 blocks; the indexer reads it back with a cap of 10."""
    window = ReorgWindow(10)
    for n in range(100, 150):
        window.add(header(n))
    for n in range(149, 109, -1):  # newest first, down to 110; the ancestor is 109
        window.revert(n, h(n), 109, h(109))
    assert window.numbers() == [109] and window.last.hash == h(109)
    window.add(header(110, "b", parent_fork="a"))
    assert window.numbers() == [110, 109]
    with pytest.raises(ValueError):
        ReorgWindow(10).revert(9, h(9), 8, h(8))  # nothing was pruned: reverting an unknown block is an error
