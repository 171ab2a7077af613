"""Spikes: experiments whose evidence is kept reproducible but which no stage ships or imports."""
