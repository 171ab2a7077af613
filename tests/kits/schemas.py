"""Schema catalogues of a made-up event type, for schema evolution tests (no tests here)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from eventlog.serde import SCHEMAS_DIR, SchemaCatalogue


def widget_catalogue(folder: Path, versions: dict[int, list[dict]]) -> SchemaCatalogue:
    """A catalogue in `folder` of the event type `Widget`: one schema file per version with those fields."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(SCHEMAS_DIR / "Envelope.avsc", folder / "Envelope.avsc")
    for version, fields in versions.items():
        schema = {"type": "record", "name": "Widget", "namespace": "lc",
                  "fields": [{"name": "envelope", "type": "lc.Envelope"}, *fields]}
        (folder / f"Widget.v{version}.avsc").write_text(json.dumps(schema))
    return SchemaCatalogue(folder)
