"""Reorg tracking: the window of published blocks, the parent-hash check, the walk back to the ancestor.

The window holds every block the indexer published something about (a header on lc.chain.blocks,
with the chain events of that block), newest last. Blocks in between had nothing to publish, so a
rollback never needs them. Entries older than `rollback_cap` blocks below the newest are pruned,
except the newest of them, kept as the anchor: if even the anchor is no longer canonical, the
divergence is deeper than the cap and the indexer halts instead of retracting history.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from eventlog.failures import OperatorError
from indexers.chain.model import BlockHeader, OutMessage


class ReorgTooDeep(OperatorError):
    """A published block deeper than the automatic rollback cap is no longer canonical. Operator action needed."""


@dataclass
class PublishedBlock:
    header: BlockHeader
    messages: list[OutMessage] = field(default_factory=list)  # chain events of this block, in log order

    @property
    def number(self) -> int:
        return self.header.number

    @property
    def hash(self) -> str:
        return self.header.hash


@dataclass(frozen=True)
class Rollback:
    """The outcome of a walk back: blocks to retract (newest first) and where indexing resumes."""

    orphaned: list[PublishedBlock]
    ancestor: BlockHeader | None  # newest published block still canonical; None = before the first one

    @property
    def resume_from(self) -> int | None:
        """First block to index again; None = the indexer's start block (everything it published is orphaned)."""
        return self.ancestor.number + 1 if self.ancestor else None


class ReorgWindow:
    def __init__(self, rollback_cap: int) -> None:
        if rollback_cap < 1:
            raise ValueError("rollback_cap must be at least 1")
        self.rollback_cap = rollback_cap
        self._entries: list[PublishedBlock] = []
        self._complete = True  # holds every block published since the start (nothing pruned yet)

    @classmethod
    def restored(cls, rollback_cap: int, headers: list[BlockHeader], *, complete: bool) -> ReorgWindow:
        """A window as a checkpoint stored it (headers oldest first; messages are attached later)."""
        window = cls(rollback_cap)
        window._entries = [PublishedBlock(header) for header in headers]
        window._complete = complete
        return window

    def copy(self) -> ReorgWindow:
        """The same entries (shared) in a window of its own: adding to one does not change the other."""
        window = ReorgWindow(self.rollback_cap)
        window._entries = list(self._entries)
        window._complete = self._complete
        return window

    @property
    def complete(self) -> bool:
        """Whether it holds every block published since the start (nothing was pruned yet)."""
        return self._complete

    @property
    def last(self) -> PublishedBlock | None:
        return self._entries[-1] if self._entries else None

    @property
    def entries(self) -> list[PublishedBlock]:
        return list(self._entries)

    def get(self, number: int) -> PublishedBlock | None:
        for entry in reversed(self._entries):
            if entry.number == number:
                return entry
            if entry.number < number:
                return None
        return None

    def add(self, header: BlockHeader, messages: list[OutMessage] | None = None) -> PublishedBlock:
        last = self.last
        if last is not None and header.number <= last.number:
            raise ValueError(f"block {header.number} published after block {last.number}")
        entry = PublishedBlock(header, list(messages or []))
        self._entries.append(entry)
        self._prune()
        return entry

    def extends(self, header: BlockHeader) -> bool:
        """Parent-hash check of the block right after the newest published one."""
        last = self.last
        if last is None or header.number != last.number + 1:
            return True
        return header.parent_hash == last.hash

    def numbers(self) -> list[int]:
        """Block numbers of the window, newest first: the walk back asks the node for these hashes."""
        return [entry.number for entry in reversed(self._entries)]

    def plan_rollback(self, canonical: Mapping[int, str | None]) -> Rollback:
        """Given the node's current hash at (some of) the window's heights, newest first, find the ancestor.

        Pure: nothing changes until `apply_rollback`. Raises ReorgTooDeep when the retraction would reach
        beyond the cap or no published block is canonical any more.
        """
        last = self.last
        if last is None:
            raise ValueError("nothing published, nothing to roll back")
        orphaned: list[PublishedBlock] = []
        ancestor: BlockHeader | None = None
        for entry in reversed(self._entries):
            if entry.number not in canonical:
                break
            if canonical[entry.number] == entry.hash:
                ancestor = entry.header
                break
            orphaned.append(entry)
        if ancestor is None and not (self._complete and len(orphaned) == len(self._entries)):
            raise ReorgTooDeep(
                f"no published block from {last.number} down to {self._entries[0].number} is canonical any more "
                f"(rollback cap {self.rollback_cap}); halting instead of retracting deeper"
            )
        if orphaned and last.number - orphaned[-1].number + 1 > self.rollback_cap:
            raise ReorgTooDeep(
                f"published blocks {orphaned[-1].number}..{last.number} are orphaned: deeper than the rollback cap "
                f"{self.rollback_cap}; halting instead of retracting them"
            )
        return Rollback(orphaned, ancestor)

    def apply_rollback(self, rollback: Rollback) -> None:
        for entry in rollback.orphaned:
            if self._entries and self._entries[-1] is entry:
                self._entries.pop()
            else:
                raise ValueError(f"rollback of block {entry.number} does not match the window")

    def revert(self, number: int, block_hash: str, ancestor_number: int | None = None,
               ancestor_hash: str | None = None) -> None:
        """Replay of a BlockReverted read back from the blocks topic.

        A rollback deeper than this window's cap (an operator's `lc indexer rollback --max-depth`) also
        reverts blocks this window has already pruned: those are accepted as gone, and once the window
        is empty it is anchored at the rollback's ancestor, where indexing resumes."""
        last = self.last
        if last is not None and last.number == number and last.hash == block_hash:
            self._entries.pop()
        elif self._complete or (last is not None and last.number >= number):
            raise ValueError(f"BlockReverted {number} {block_hash} does not revert the newest published block")
        if not self._entries and ancestor_number is not None and ancestor_hash is not None \
                and ancestor_number < number:
            self._entries.append(PublishedBlock(BlockHeader(ancestor_number, ancestor_hash, "", 0)))

    def _prune(self) -> None:
        floor = self._entries[-1].number - self.rollback_cap
        keep_from = 0
        # the newest entry at or below the floor stays as the anchor; only older ones go
        while keep_from + 1 < len(self._entries) and self._entries[keep_from + 1].header.number <= floor:
            keep_from += 1
        if keep_from:
            del self._entries[:keep_from]
            self._complete = False
