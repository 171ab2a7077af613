"""The faust-streaming spike (docs/decisions.md, "faust-streaming"). Install the `faust-spike` extra to run it."""
