"""The timestamp merge of a partition's input topics with the blocks (pure)."""

from __future__ import annotations

import random

from eventlog.processing.merge import BLOCKS, PartitionMerge, Timed

TOPICS = ("a", "b")


def entry(source: str, ts: int, offset: int) -> Timed[str]:
    return Timed(ts, source, offset, f"{source}{ts}")


def names(entries: list[Timed[str]]) -> list[str]:
    return [e.item for e in entries]


def test_waits_for_a_topic_that_may_still_bring_an_earlier_item() -> None:
    merge: PartitionMerge[str] = PartitionMerge(TOPICS)
    merge.push(entry("a", 10, 0))
    assert names(list(merge.drain([], blocks_at_end=True))) == []
    merge.push(entry("b", 5, 0))
    assert names(list(merge.drain([], blocks_at_end=True))) == ["b5"]  # a10 waits for b again
    merge.mark_end("b", True)
    assert names(list(merge.drain([], blocks_at_end=True))) == ["a10"]


def test_blocks_interleave_by_timestamp_and_wait_for_the_clock() -> None:
    blocks = [entry(BLOCKS, 3, 0)]
    merge: PartitionMerge[str] = PartitionMerge(TOPICS)
    for e in (entry("a", 1, 0), entry("a", 9, 1), entry("b", 4, 0)):
        merge.push(e)
    merge.mark_end("a", True)
    merge.mark_end("b", True)
    got = names(list(merge.drain(blocks, blocks_at_end=False)))
    assert got == ["a1", "3"]  # b4 waits: the clock may still bring a block before it
    blocks.append(entry(BLOCKS, 12, 1))
    assert names(list(merge.drain(blocks, blocks_at_end=False))) == ["b4", "a9", "12"]


def test_any_split_into_batches_gives_the_same_order() -> None:
    rng = random.Random(7)
    items = {t: sorted(rng.sample(range(1000), 40)) for t in TOPICS}
    blocks = [entry(BLOCKS, ts, n) for n, ts in enumerate(sorted(rng.sample(range(1000), 30)))]

    def run(chunk: int) -> list[str]:
        merge: PartitionMerge[str] = PartitionMerge(TOPICS)
        queues = {t: [entry(t, ts, n) for n, ts in enumerate(items[t])] for t in TOPICS}
        out: list[str] = []
        while any(queues.values()):
            for t in TOPICS:
                for e in queues[t][:chunk]:
                    merge.push(e)
                queues[t] = queues[t][chunk:]
                merge.mark_end(t, not queues[t])
            out += names(list(merge.drain(blocks, blocks_at_end=True)))
        return out + names(list(merge.drain(blocks, blocks_at_end=True)))

    whole = run(1000)
    assert whole == names(sorted([entry(t, ts, n) for t in TOPICS for n, ts in enumerate(items[t])] + blocks,
                                 key=lambda e: (e.timestamp, e.source, e.offset)))
    assert run(1) == whole and run(7) == whole


def test_a_restore_stops_after_the_last_input() -> None:
    merge: PartitionMerge[str] = PartitionMerge(TOPICS)
    merge.push(entry("a", 5, 0))
    merge.mark_end("a", True)
    merge.mark_end("b", True)
    blocks = [entry(BLOCKS, 1, 0), entry(BLOCKS, 7, 1)]
    assert names(list(merge.drain(blocks, True, stop_when_topics_empty=True))) == ["1", "a5"]
    assert merge.blocks_taken == 1
