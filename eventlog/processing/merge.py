"""Timestamp-ordered merge of one partition's input topics with the chain's blocks (pure).

The dispatcher's decisions depend on the order of verdicts, lifecycle facts and chain time (a
competitive challenge is ranked on the verdicts seen when chain time reaches its end). Consumption
order across topics is arbitrary, so each partition's inputs and the blocks are merged by Kafka
timestamp, as Kafka Streams does: the next item is the smallest (timestamp, source, offset) among
the heads, taken only when every source has a head or has been read to its end. A replay therefore
sees the same order as the original run; only at the live edge (a source at its end) can an item
produced a few milliseconds earlier arrive after a later one.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Generic, NamedTuple, TypeVar

Item = TypeVar("Item")
BLOCKS = ""  # the blocks' source name sorts before every topic at equal timestamps


class Timed(NamedTuple, Generic[Item]):
    """One input (a NamedTuple: a stage builds one per message)."""

    timestamp: int  # Kafka timestamp, epoch ms
    source: str  # catalogue topic, or BLOCKS
    offset: int
    item: Item


@dataclass
class PartitionMerge(Generic[Item]):
    """One partition: a queue per input topic and how far into the (global) block list it is."""

    topics: tuple[str, ...]
    queues: dict[str, deque[Timed[Item]]] = field(default_factory=dict)
    at_end: dict[str, bool] = field(default_factory=dict)
    blocks_taken: int = 0

    def __post_init__(self) -> None:
        for topic in self.topics:
            self.queues.setdefault(topic, deque())
            self.at_end.setdefault(topic, False)

    def push(self, entry: Timed[Item]) -> None:
        self.queues[entry.source].append(entry)

    def mark_end(self, topic: str, at_end: bool) -> None:
        """Whether the topic has been read to its end: nothing will come beyond what is queued."""
        self.at_end[topic] = at_end

    def drain(self, blocks: Sequence[Timed[Item]], blocks_at_end: bool, *,
              stop_when_topics_empty: bool = False) -> Iterator[Timed[Item]]:
        """Yield items in merged order for as long as the order is certain.

        `stop_when_topics_empty`: a restore, which replays exactly the prefix processed before (every
        topic up to its committed offset), stops after the last input rather than running on into the
        blocks that follow it."""
        while True:
            if stop_when_topics_empty and not any(self.queues.values()):
                return
            if self.blocks_taken >= len(blocks) and blocks_at_end:
                only = self._only_open_queue()
                if only is not None:  # the common case: one topic has items, the others are at their end
                    while only:
                        yield only.popleft()
                    continue
            heads: list[Timed[Item]] = []
            for topic in self.topics:
                queue = self.queues[topic]
                if queue:
                    heads.append(queue[0])
                elif not self.at_end[topic]:
                    return  # this topic may still bring an earlier item
            if self.blocks_taken < len(blocks):
                heads.append(blocks[self.blocks_taken])
            elif not blocks_at_end:
                return
            if not heads:
                return
            first = min(heads, key=lambda h: (h.timestamp, h.source, h.offset))
            if first.source == BLOCKS:
                self.blocks_taken += 1
            else:
                self.queues[first.source].popleft()
            yield first

    def _only_open_queue(self) -> deque[Timed[Item]] | None:
        """The one non-empty queue when every other topic is empty and at its end, else None."""
        found = None
        for topic in self.topics:
            queue = self.queues[topic]
            if queue:
                if found is not None:
                    return None
                found = queue
            elif not self.at_end[topic]:
                return None
        return found
