"""The processing kit every consuming stage shares: timed consumer loop, state restore, co-partitioned
merge, chain clock, the merged stage runner and the input readers."""
