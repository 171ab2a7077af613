"""Adaptive eth_getLogs block ranges.

Two limits decide a range's size in blocks:
- the node's: halve on its too-many-results or timeout errors, grow back after a few calm successes;
- with a `log_budget`, the density of the chain: a range should hold about that many pipeline logs,
  estimated from the last range (at most doubling from one range to the next). Many smaller ranges
  instead of one huge one let range workers prepare several at once, keep one Kafka transaction to
  a bounded size, and put the first facts of a long backfill on Kafka early.
"""

from __future__ import annotations


class AdaptiveRange:
    def __init__(self, maximum: int, *, initial: int | None = None, calm_after: int = 3,
                 log_budget: int | None = None) -> None:
        if maximum < 1:
            raise ValueError("maximum range must be at least 1 block")
        if log_budget is not None and log_budget < 1:
            raise ValueError("log budget must be at least 1 log")
        self.maximum = maximum
        self.size = min(initial or maximum, maximum)  # the node's limit, as far as we know it
        self.calm_after = calm_after
        self.log_budget = log_budget
        self._by_density = maximum if log_budget is None else 1  # unknown density: start small, double
        self._calm = 0

    def span(self, start: int, safe_head: int) -> tuple[int, int] | None:
        """The next range [start, end] not beyond the safe head, or None when there is nothing to fetch."""
        if start > safe_head:
            return None
        return start, min(safe_head, start + min(self.size, self._by_density) - 1)

    def shrink(self) -> None:
        self.size = max(1, self.size // 2)
        self._calm = 0

    def succeeded(self, blocks_fetched: int, logs: int = 0) -> None:
        """A range came back. After `calm_after` full-sized successes in a row the node limit doubles;
        with a log budget the next range is sized to the density just seen."""
        if self.log_budget is not None:
            estimate = blocks_fetched * self.log_budget // logs if logs else self.maximum
            # the blocks ahead may be much denser: double while far below the budget, then creep up, so
            # that a jump in density makes one range a few times the budget (published in chunks), not many
            growth = 2 * blocks_fetched if 4 * logs <= self.log_budget else blocks_fetched + max(1, blocks_fetched // 4)
            self._by_density = max(1, min(self.maximum, estimate, growth))
        if blocks_fetched < self.size:
            return  # a short range (at the head, or cut by the density) says nothing about the node's limits
        self._calm += 1
        if self._calm >= self.calm_after and self.size < self.maximum:
            self.size = min(self.maximum, self.size * 2)
            self._calm = 0

    @property
    def at_minimum(self) -> bool:
        return self.size == 1
