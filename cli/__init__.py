"""The `lc` command."""
