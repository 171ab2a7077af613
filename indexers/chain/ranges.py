"""Adaptive eth_getLogs block ranges: halve on the node's too-many-results or timeout errors, grow back when calm."""

from __future__ import annotations


class AdaptiveRange:
    def __init__(self, maximum: int, *, initial: int | None = None, calm_after: int = 3) -> None:
        if maximum < 1:
            raise ValueError("maximum range must be at least 1 block")
        self.maximum = maximum
        self.size = min(initial or maximum, maximum)
        self.calm_after = calm_after
        self._calm = 0

    def span(self, start: int, safe_head: int) -> tuple[int, int] | None:
        """The next range [start, end] not beyond the safe head, or None when there is nothing to fetch."""
        if start > safe_head:
            return None
        return start, min(safe_head, start + self.size - 1)

    def shrink(self) -> None:
        self.size = max(1, self.size // 2)
        self._calm = 0

    def succeeded(self, blocks_fetched: int) -> None:
        """A range came back; after `calm_after` full-sized successes in a row the size doubles."""
        if blocks_fetched < self.size:
            return  # a short range (at the head) says nothing about the node's limits
        self._calm += 1
        if self._calm >= self.calm_after and self.size < self.maximum:
            self.size = min(self.maximum, self.size * 2)
            self._calm = 0

    @property
    def at_minimum(self) -> bool:
        return self.size == 1
