"""Test kits: helpers the tests share, imported as `from kits.<name> import ...` (tests/ is on the path)."""
