"""The SQL migrations of the projection tables (`NNN_name.sql`), applied in order by `lc migrate`.

A package so the files ship as package data: an installed (non-editable) pipeline finds them here, next
to this module, wherever it runs from.
"""

from pathlib import Path

MIGRATIONS_DIR = Path(__file__).resolve().parent
