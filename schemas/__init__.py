"""The Avro schemas: one `Name.vN.avsc` per event type and version, and the shared `Envelope.avsc`.

A package so the files ship as package data: an installed (non-editable) pipeline finds them here, next
to this module, wherever it runs from.
"""

from pathlib import Path

SCHEMAS_DIR = Path(__file__).resolve().parent
